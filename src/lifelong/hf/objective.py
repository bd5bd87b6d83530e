"""``CausalLMObjective``: how the training loop runs, scores and assesses a causal LM.

The loop is objective-agnostic (see :mod:`lifelong.engine.objective`): for
text streams (``stream.kind == 'lm'``) it uses this class. Data rows carry
``input_ids``, ``attention_mask`` and ``labels`` (``-100`` on the prompt and on
padding, see :mod:`lifelong.hf.encoding`).

* per-sample loss: mean cross-entropy over the row's completion tokens
  (including the closing EOS), so long and short answers weigh alike in the
  schedule's feedback;
* ``correct``: every completion token is the argmax of the model's prediction
  under teacher forcing. For greedy decoding this *is* exact match of the
  generated completion: greedy generation emits the argmax at each position;
  if the first k completion tokens are argmaxes given the true prefix, the
  generated prefix equals the true prefix, so by induction greedy decoding
  reproduces the whole completion and then stops at the EOS exactly when every
  teacher-forced argmax matches; and at the first mismatch it emits a wrong
  token, so the generated completion differs. One forward pass thus replaces
  an autoregressive ``generate`` loop (tests check the equivalence against
  ``model.generate`` on a tiny model). Exact ties in the argmax are the only
  case where the two could disagree.
* ``evaluate``: exact-match accuracy on a task's test set (the accuracy
  matrix entry); :meth:`token_loss` gives the mean per-token loss instead, and
  :meth:`perplexity` measures general ability on held-out text.
* ``distillation``: token-level KL to a previous model on completion positions
  (LwF for language models).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lifelong.data.examples import Examples
from lifelong.data.task import Stream, Task
from lifelong.errors import DataError
from lifelong.hf.encoding import IGNORE, encode_pairs

LM_FIELDS = ("input_ids", "attention_mask", "labels")


def lm_logits(model: nn.Module, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Logits ``[batch, length, vocab]`` of a transformers causal LM (or any module returning them)."""
    out = model(input_ids=input_ids, attention_mask=attention_mask)
    if isinstance(out, Tensor):
        return out
    return out.logits if hasattr(out, "logits") else out[0]


def shifted(out: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Predictions at positions 0..L-2 and the tokens they predict (labels 1..L-1)."""
    n = out.shape[1]
    return out[:, : n - 1], labels[:, 1:n]


def token_nll(out: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """``-log p(labels[t] | tokens < t)`` per position ``[batch, L-1]`` (0 where a position has no
    label) and the mask of labelled positions; ``out`` ``[batch, L', vocab]`` with ``L' <= L``."""
    logits, target = shifted(out, labels.to(out.device))
    scored = target != IGNORE
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), target.reshape(-1).clamp_min(0),
                           reduction="none").view_as(target)
    return loss * scored, scored


class CausalLMObjective:
    """Next-token prediction on completion tokens, assessed by exact match (see module docs)."""

    model_fields = LM_FIELDS

    def __init__(self, stream: Stream | None = None, tokenizer: Any = None, trim: bool = True):
        """``tokenizer`` defaults to ``stream.info['tokenizer']`` (needed only for
        :meth:`perplexity` on raw texts and for generation). ``trim`` cuts each
        batch to its longest row (padding is right-aligned), saving compute."""
        self.stream = stream
        self.tokenizer = tokenizer if tokenizer is not None else (stream.info.get("tokenizer") if stream else None)
        self.trim = bool(trim)
        self.scenario = stream.scenario if stream is not None else "domain"
        self.num_classes = None  # outputs are a vocabulary, not a fixed class set

    def begin_task(self, stream: Stream, task: Task, seen_classes: Sequence[int]) -> None:
        pass

    # training -----------------------------------------------------------------
    def _trimmed(self, data: Examples) -> tuple[Tensor, Tensor]:
        ids, mask = data["input_ids"], data["attention_mask"]
        if self.trim and ids.shape[1] > 1:
            # the longest row's length; one small device->host sync per batch
            width = int(mask.sum(1).max())
            width = max(width, 2)
            if width < ids.shape[1]:
                ids, mask = ids[:, :width], mask[:, :width]
        return ids, mask

    def forward(self, model: nn.Module, data: Examples) -> Tensor:
        ids, mask = self._trimmed(data)
        return lm_logits(model, ids, mask)

    def mask_logits(self, logits: Tensor, data: Examples) -> Tensor:
        """No masking: every token of the vocabulary stays available."""
        return logits

    def token_losses(self, out: Tensor, data: Examples) -> tuple[Tensor, Tensor]:
        """Per-token losses ``[batch, L-1]`` and the mask of scored (completion) tokens."""
        return token_nll(out, data["labels"])

    def per_sample_loss(self, out: Tensor, data: Examples) -> Tensor:
        loss, scored = self.token_losses(out, data)
        return loss.sum(1) / scored.sum(1).clamp_min(1)

    def loss(self, out: Tensor, data: Examples) -> Tensor:
        """The mean of :meth:`per_sample_loss` (every row weighs alike)."""
        return self.per_sample_loss(out, data).mean()

    def correct(self, out: Tensor, data: Examples) -> Tensor:
        logits, target = shifted(out, data["labels"].to(out.device))
        scored = target != IGNORE
        hit = (logits.argmax(-1) == target) | ~scored
        return hit.all(1) & scored.any(1)

    def distillation(self, out_new: Tensor, out_old: Tensor, data: Examples, temperature: float = 2.0,
                     mask: Tensor | None = None) -> Tensor:
        """LwF for LMs: KL(old || new) of the softened next-token distributions,
        averaged over completion positions and scaled by T^2. ``mask`` (bool
        ``[batch, L]`` over label positions) overrides the completion positions."""
        n = min(out_new.shape[1], out_old.shape[1])
        new, old = out_new[:, : n - 1], out_old[:, : n - 1]
        if mask is None:
            pos = data["labels"][:, 1:n].to(out_new.device) != IGNORE
        else:
            pos = mask[:, 1:n].to(out_new.device).bool()
        t = float(temperature)
        lp_new = F.log_softmax(new.float() / t, dim=-1)
        lp_old = F.log_softmax(old.float() / t, dim=-1)
        kl = (lp_old.exp() * (lp_old - lp_new)).sum(-1)  # [batch, L-1]
        return (kl * pos).sum() / pos.sum().clamp_min(1) * (t * t)

    # assessment ---------------------------------------------------------------
    @torch.no_grad()
    def _scan(self, model: nn.Module, data: Examples, device: torch.device, batch_size: int):
        was_training = model.training
        model.eval()
        try:
            for start in range(0, data.size, batch_size):
                part = data.take(slice(start, start + batch_size)).to(device)
                yield part, self.forward(model, part)
        finally:
            model.train(was_training)

    def evaluate(self, model: nn.Module, task: Task, device: torch.device, batch_size: int = 256,
                 baseline: bool = False) -> float:
        """Exact-match accuracy of greedy completions on ``task.test`` (one forward pass per batch)."""
        hits = 0
        for part, out in self._scan(model, _lm_fields(task.test, task.name), device, batch_size):
            hits += int(self.correct(out, part).sum())
        return hits / max(1, task.test.size)

    def token_loss(self, model: nn.Module, data: Task | Examples, device: torch.device | str = "cpu",
                   batch_size: int = 256) -> float:
        """Mean per-token loss over the completion tokens of a task's test set (or any Examples)."""
        ex = data.test if isinstance(data, Task) else data
        total, count = 0.0, 0
        for part, out in self._scan(model, _lm_fields(ex, "data"), torch.device(device), batch_size):
            loss, scored = self.token_losses(out, part)
            total += float(loss.sum())
            count += int(scored.sum())
        return total / max(1, count)

    def perplexity(self, model: nn.Module, texts_or_examples: Sequence[str] | Examples,
                   device: torch.device | str = "cpu", batch_size: int = 64, max_length: int | None = None) -> float:
        """Perplexity (exp of the mean token loss) on held-out general text.

        ``texts_or_examples`` is a list of strings (tokenised with this
        objective's tokenizer; every token after BOS is scored) or Examples
        with ``labels``. A measure of general ability: fine-tuning that
        damages it shows up here even when task accuracy looks fine."""
        if not isinstance(texts_or_examples, (list, tuple)) and hasattr(texts_or_examples, "take"):
            ex = texts_or_examples
        else:
            texts = list(texts_or_examples)
            if not texts:
                raise DataError("perplexity needs at least one text.")
            if self.tokenizer is None:
                raise DataError("perplexity on raw texts needs a tokenizer; pass tokenizer= to CausalLMObjective.")
            ex = encode_pairs(self.tokenizer, [""] * len(texts), texts, max_length=max_length, source="perplexity texts")
        return math.exp(self.token_loss(model, ex, device, batch_size))

    def probes(self, model: nn.Module, stream: Stream, device: torch.device | str = "cpu",
               batch_size: int = 64) -> dict[str, float]:
        """Measurements beyond task accuracy, taken before training and after
        each task: ``general_perplexity`` on the stream's held-out general
        material, when it has some: ``stream.info["general_texts"]`` (plain
        text, every token scored: the usual measure for pretrained models) or
        ``stream.info["general_pairs"]`` (prompts, completions: only the
        completions scored, e.g. held-out problems of every arithmetic skill)."""
        texts = stream.info.get("general_texts") or []
        prompts, answers = stream.info.get("general_pairs") or ([], [])
        if not texts and not answers:
            return {}
        # general lines longer than the model's position table are cut to it (scored on what fits)
        limit = position_limit(model)
        key = (id(texts), id(answers), limit)
        if getattr(self, "_general_key", None) != key:  # encode once per stream
            if texts:
                self._general = encode_pairs(self.tokenizer, [""] * len(texts), list(texts), max_length=limit,
                                             source="general text")
            else:
                self._general = encode_pairs(self.tokenizer, list(prompts), list(answers), max_length=limit,
                                             source="general problems")
            self._general_key = key
        return {"general_perplexity": self.perplexity(model, self._general, device, batch_size)}

    @torch.no_grad()
    def generate(self, model: nn.Module, prompts: Sequence[str], max_new_tokens: int = 16,
                 device: torch.device | str = "cpu") -> list[str]:
        """Greedy completions of ``prompts`` with ``model.generate`` (for inspection and tests)."""
        from lifelong.hf.encoding import prompts_left_padded, special_ids

        if self.tokenizer is None:
            raise DataError("generate needs a tokenizer; pass tokenizer= to CausalLMObjective.")
        ex = encode_pairs(self.tokenizer, list(prompts), [""] * len(prompts), source="prompts")
        _, eos, pad = special_ids(self.tokenizer)
        ids, mask = prompts_left_padded(ex, pad)
        was_training = model.training
        model.eval()
        out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=max_new_tokens,
                             do_sample=False, eos_token_id=eos, pad_token_id=pad)
        model.train(was_training)
        gen = out[:, ids.shape[1]:].cpu()
        return [_decode(self.tokenizer, row, eos) for row in gen]


def position_limit(model: nn.Module) -> int | None:
    """The longest sequence ``model`` can take (its position table), when its config says so."""
    config = getattr(model, "config", None)
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _decode(tokenizer: Any, ids: Tensor, eos: int) -> str:
    row = ids.tolist()
    if eos in row:
        row = row[: row.index(eos)]
    if hasattr(tokenizer, "alphabet"):
        return tokenizer.decode(row)
    return tokenizer.decode(row, skip_special_tokens=True)


def _lm_fields(ex: Examples, name: str) -> Examples:
    missing = [f for f in LM_FIELDS if f not in ex]
    if missing:
        raise DataError(f"{name}: language-model data needs fields {list(LM_FIELDS)}; missing {missing}, "
                        f"found {sorted(ex)}.")
    return ex.select(*LM_FIELDS)  # lazy for store-backed text: batches are gathered by _scan
