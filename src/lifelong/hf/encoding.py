"""Turn prompt/completion texts into the tensor fields language-model tasks use.

Layout of one row (right-padded to a stream-wide length, so replay memory and
pools of several tasks share one shape)::

    input_ids       [bos] p p p c c c [eos] [pad] [pad]
    attention_mask    1   1 1 1 1 1 1   1     0     0
    labels          -100 -100.. c c c [eos] -100  -100
    prompt_len      number of tokens before the first completion token (bos + prompt)

``labels`` hold the token each position *is*; the objective shifts them by one
so position ``t`` predicts token ``t + 1``. Only completion tokens (and the
closing EOS) are learned and scored; for plain text the whole text is the
completion. Works with :class:`~lifelong.hf.tokenizer.CharTokenizer` and with
any ``transformers`` tokenizer; needs only torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import torch

from lifelong.errors import ConfigError, DataError

if TYPE_CHECKING:  # importing lifelong.data here would be circular (it registers the text benchmarks)
    from lifelong.data.examples import Examples

IGNORE = -100


def token_ids(tokenizer: Any, text: str) -> list[int]:
    """Ids of ``text`` without special tokens, for our tokenizer or a transformers one."""
    if hasattr(tokenizer, "alphabet"):  # CharTokenizer
        return tokenizer.encode(text)
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def special_ids(tokenizer: Any) -> tuple[int | None, int, int]:
    """(bos, eos, pad) ids; pad falls back to eos (masked anyway), bos may be None."""
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ConfigError(f"tokenizer {type(tokenizer).__name__} has no EOS token; language-model tasks need one "
                          "to mark the end of a completion.")
    pad = getattr(tokenizer, "pad_token_id", None)
    bos = getattr(tokenizer, "bos_token_id", None)
    return bos, int(eos), int(eos if pad is None else pad)


def batch_token_ids(tokenizer: Any, texts: Sequence[str]) -> list[list[int]]:
    """Ids of each text without special tokens; one batched call for a fast tokenizer."""
    if hasattr(tokenizer, "alphabet"):  # CharTokenizer
        return [tokenizer.encode(t) for t in texts]
    if not texts:
        return []
    return [list(r) for r in tokenizer(list(texts), add_special_tokens=False)["input_ids"]]


Row = tuple[list[int], list[int], int]  # input_ids, labels, prompt_len


def encode_pair_rows(tokenizer: Any, prompts: Sequence[str], completions: Sequence[str],
                     max_length: int | None = None, source: str = "data", first_row: int = 1) -> list[Row]:
    """Unpadded rows ``(input_ids, labels, prompt_len)`` of prompt/completion pairs
    (the layout of the module docs, without padding). Rows longer than
    ``max_length`` lose the end of their completion (the EOS is kept); a row
    whose prompt alone does not fit raises a :class:`DataError` naming
    ``source`` and the record (numbered from ``first_row``)."""
    if len(prompts) != len(completions):
        raise DataError(f"{source}: {len(prompts)} prompts but {len(completions)} completions.")
    bos, eos, _ = special_ids(tokenizer)
    head = [bos] if bos is not None else []
    rows: list[Row] = []
    for i, (p, c) in enumerate(zip(batch_token_ids(tokenizer, prompts), batch_token_ids(tokenizer, completions))):
        pi = head + p
        ci = c + [eos]
        if max_length is not None and len(pi) + len(ci) > max_length:
            if len(pi) >= max_length:
                raise DataError(f"{source}: record {first_row + i} has a prompt of {len(pi)} tokens, which does not "
                                f"fit max_length={max_length}; raise max_length or shorten the prompt.")
            ci = ci[: max_length - len(pi) - 1] + [eos]
        rows.append((pi + ci, [IGNORE] * len(pi) + ci, len(pi)))
    return rows


def pad_rows(rows: Sequence[Row], pad: int, width: int | None = None) -> Examples:
    """``input_ids``/``attention_mask``/``labels``/``prompt_len`` tensors of rows,
    right-padded to ``width`` (default: the longest row)."""
    from lifelong.data.examples import Examples

    n = len(rows)
    width = width if width is not None else max((len(r[0]) for r in rows), default=1)
    ids = torch.full((n, width), pad, dtype=torch.long)
    labels = torch.full((n, width), IGNORE, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    plen = torch.zeros(n, dtype=torch.long)
    for i, (seq, lab, k) in enumerate(rows):
        m = min(len(seq), width)
        ids[i, :m] = torch.tensor(seq[:m], dtype=torch.long)
        labels[i, :m] = torch.tensor(lab[:m], dtype=torch.long)
        mask[i, :m] = 1
        plen[i] = k
    return Examples(input_ids=ids, attention_mask=mask, labels=labels, prompt_len=plen)


def encode_pairs(tokenizer: Any, prompts: Sequence[str], completions: Sequence[str],
                 max_length: int | None = None, length: int | None = None, source: str = "data") -> Examples:
    """Tokenise prompt/completion pairs into ``input_ids``, ``attention_mask``,
    ``labels`` and ``prompt_len``.

    ``length`` pads every row to exactly that many tokens (a stream-wide value);
    otherwise rows are padded to the longest one. Rows longer than
    ``max_length`` lose the end of their completion (the EOS is kept) and rows
    whose prompt alone does not fit raise a :class:`DataError` naming ``source``.
    """
    limit = max_length if max_length is not None else length
    rows = encode_pair_rows(tokenizer, prompts, completions, limit, source)
    return pad_rows(rows, special_ids(tokenizer)[2], length)


# -- chat / instruction data ----------------------------------------------------------------

ROLES = ("system", "user", "assistant", "tool")


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None)) and hasattr(tokenizer, "apply_chat_template")


def render_chat(tokenizer: Any, messages: Sequence[dict[str, str]], add_generation_prompt: bool = False) -> str:
    """The conversation as text: the tokenizer's chat template when it has one,
    else ``role: content`` lines (a plain format any tokenizer can encode)."""
    if has_chat_template(tokenizer):
        return tokenizer.apply_chat_template(list(messages), tokenize=False,
                                             add_generation_prompt=add_generation_prompt)
    text = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
    return text + ("assistant: " if add_generation_prompt else "")


def chat_segments(tokenizer: Any, messages: Sequence[dict[str, str]], where: str) -> list[tuple[str, bool]]:
    """The rendered conversation cut into ``(text, learned)`` pieces: each
    assistant turn (its content and the template's end-of-turn text) is
    learned, everything else (system, user, the assistant header) is not.

    Found by rendering growing prefixes of the conversation: the text that
    the assistant turn ``i`` adds after the generation prompt of turns
    ``< i``. Needs a template whose renderings of prefixes are prefixes of
    the whole (true of the usual ones); others are refused."""
    full = render_chat(tokenizer, messages)
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = render_chat(tokenizer, messages[:i], add_generation_prompt=True)
        after = render_chat(tokenizer, messages[: i + 1])
        if not (after.startswith(before) and full.startswith(after) and len(before) >= pos):
            raise DataError(f"{where}: the chat template does not render the conversation's turns as prefixes of "
                            "the whole conversation, so the assistant turns cannot be located; use prompt/"
                            "completion fields or a standard chat template.")
        pieces.append((full[pos:len(before)], False))
        pieces.append((full[len(before):len(after)], True))
        pos = len(after)
    pieces.append((full[pos:], False))
    return [(t, learn) for t, learn in pieces if t]


def encode_chat_rows(tokenizer: Any, conversations: Sequence[Sequence[dict[str, str]]],
                     max_length: int | None = None, source: str = "data", first_row: int = 1) -> list[Row]:
    """Unpadded rows of chat conversations in which only assistant turns are
    learned (labels -100 elsewhere). With the tokenizer's chat template the
    template supplies BOS and end-of-turn tokens; without one, BOS is added
    and each assistant turn ends with a learned EOS. Rows longer than
    ``max_length`` are cut; a row with nothing left to learn is refused."""
    bos, eos, _ = special_ids(tokenizer)
    templated = has_chat_template(tokenizer)
    segs = [chat_segments(tokenizer, conv, f"{source} row {first_row + i}") for i, conv in enumerate(conversations)]
    flat = [t for row in segs for t, _ in row]
    ids_flat = iter(batch_token_ids(tokenizer, flat))
    rows: list[Row] = []
    for i, row in enumerate(segs):
        ids = [] if templated or bos is None else [bos]
        labels = [IGNORE] * len(ids)
        for _, learn in row:
            piece = next(ids_flat)
            if learn and not templated:
                piece = piece + [eos]
            ids += piece
            labels += piece if learn else [IGNORE] * len(piece)
        if max_length is not None and len(ids) > max_length:
            ids, labels = ids[:max_length], labels[:max_length]
        first = next((k for k, v in enumerate(labels) if v != IGNORE), None)
        if first is None:
            raise DataError(f"{source}: record {first_row + i} has no assistant tokens within max_length="
                            f"{max_length}; raise max_length or shorten the conversation.")
        rows.append((ids, labels, first))
    return rows


def check_messages(value: Any, where: str, field: str) -> list[dict[str, str]]:
    """A chat ``messages`` value as a list of ``{role, content}`` dicts, with clear errors."""
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            raise DataError(f"{where}: field '{field}' is a string that is not a JSON list of messages.") from None
    if not isinstance(value, list) or not value:
        raise DataError(f"{where}: field '{field}' must be a non-empty list of {{role, content}} messages.")
    out = []
    for j, m in enumerate(value):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DataError(f"{where}: field '{field}' message {j + 1} must be an object with 'role' and 'content'.")
        if m["role"] not in ROLES:
            raise DataError(f"{where}: field '{field}' message {j + 1} has role {m['role']!r}; use one of: "
                            f"{', '.join(ROLES)}.")
        out.append({"role": str(m["role"]), "content": "" if m["content"] is None else str(m["content"])})
    if not any(m["role"] == "assistant" and m["content"].strip() for m in out):
        raise DataError(f"{where}: field '{field}' has no non-empty assistant message, so there is nothing to learn.")
    return out


# -- continual pre-training: packed blocks -------------------------------------------------------

class Packer:
    """Packs plain-text documents of each task into blocks of ``block_size``
    tokens (``[bos] doc [eos] [bos] doc ...``), every token learned. A task's
    last, shorter block is kept (dynamic padding handles it), so no text is
    dropped."""

    def __init__(self, tokenizer: Any, block_size: int):
        self.block = int(block_size)
        self.bos, self.eos, _ = special_ids(tokenizer)
        self.tokenizer = tokenizer
        self.buffers: dict[str, list[int]] = {}

    def add(self, texts: Sequence[str], tasks: Sequence[str]) -> list[tuple[str, list[int]]]:
        """Documents in; the full blocks they complete out, as ``(task, ids)``."""
        head = [self.bos] if self.bos is not None else []
        out = []
        for task, ids in zip(tasks, batch_token_ids(self.tokenizer, texts)):
            buf = self.buffers.setdefault(task, [])
            buf += head + ids + [self.eos]
            while len(buf) >= self.block:
                out.append((task, buf[: self.block]))
                del buf[: self.block]
        return out

    def finish(self) -> list[tuple[str, list[int]]]:
        """The remaining partial block of each task."""
        out = [(t, b) for t, b in self.buffers.items() if b]
        self.buffers = {}
        return out


def pair_lengths(tokenizer: Any, prompts: Sequence[str], completions: Sequence[str]) -> list[int]:
    """Token counts of each encoded row (bos + prompt + completion + eos)."""
    bos, _, _ = special_ids(tokenizer)
    extra = 1 + (1 if bos is not None else 0)
    return [len(token_ids(tokenizer, p)) + len(token_ids(tokenizer, c)) + extra for p, c in zip(prompts, completions)]


def prompts_left_padded(data: Examples, pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The prompt part of each row, left-padded for ``generate`` (ids, attention mask)."""
    plen = data["prompt_len"]
    width = int(plen.max())
    n = data.size
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i in range(n):
        k = int(plen[i])
        ids[i, width - k:] = data["input_ids"][i, :k]
        mask[i, width - k:] = 1
    return ids, mask
