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

from typing import Any, Sequence

import torch

from lifelong.data.examples import Examples
from lifelong.errors import ConfigError, DataError

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


def encode_pairs(tokenizer: Any, prompts: Sequence[str], completions: Sequence[str],
                 max_length: int | None = None, length: int | None = None, source: str = "data") -> Examples:
    """Tokenise prompt/completion pairs into ``input_ids``, ``attention_mask``,
    ``labels`` and ``prompt_len``.

    ``length`` pads every row to exactly that many tokens (a stream-wide value);
    otherwise rows are padded to the longest one. Rows longer than
    ``max_length`` lose the end of their completion (the EOS is kept) and rows
    whose prompt alone does not fit raise a :class:`DataError` naming ``source``.
    """
    if len(prompts) != len(completions):
        raise DataError(f"{source}: {len(prompts)} prompts but {len(completions)} completions.")
    bos, eos, pad = special_ids(tokenizer)
    head = [bos] if bos is not None else []
    rows: list[tuple[list[int], int]] = []
    limit = max_length if max_length is not None else length
    for i, (p, c) in enumerate(zip(prompts, completions)):
        pi = head + token_ids(tokenizer, p)
        ci = token_ids(tokenizer, c) + [eos]
        if limit is not None and len(pi) + len(ci) > limit:
            if len(pi) >= limit:
                raise DataError(f"{source}: row {i} has a prompt of {len(pi)} tokens, which does not fit "
                                f"max_length={limit}; raise max_length or shorten the prompt.")
            ci = ci[: limit - len(pi) - 1] + [eos]
        rows.append((pi + ci, len(pi)))
    n = len(rows)
    width = length if length is not None else max((len(r) for r, _ in rows), default=1)
    ids = torch.full((n, width), pad, dtype=torch.long)
    labels = torch.full((n, width), IGNORE, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    plen = torch.zeros(n, dtype=torch.long)
    for i, (seq, k) in enumerate(rows):
        s = torch.tensor(seq, dtype=torch.long)
        ids[i, : len(seq)] = s
        mask[i, : len(seq)] = 1
        labels[i, k: len(seq)] = s[k:]
        plen[i] = k
    return Examples(input_ids=ids, attention_mask=mask, labels=labels, prompt_len=plen)


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
