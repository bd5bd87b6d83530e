"""Language-model measures beyond exact match, per task: token accuracy and loss, and pass@k.

Exact match (the accuracy-matrix entry of :class:`~lifelong.hf.objective.CausalLMObjective`)
is all or nothing: an answer that lost one digit counts as fully forgotten,
and forgetting that exact match hides (answers drifting but still greedy-
correct) is invisible. :func:`token_measures` reports, from the same
teacher-forced pass, the token-level accuracy (share of completion tokens
whose argmax is the reference token) and the mean token loss next to exact
match (:class:`TokenMeasures` records them for every task at each task end of a run).
:func:`pass_at_k_task` samples ``n`` completions per test prompt and
reports the unbiased pass@k (:func:`lifelong.assessment.generation.pass_at_k`):
what a user who samples sees, rather than the greedy answer alone.

All functions take ``(model, task, device)``; the objective defaults to a
plain :class:`CausalLMObjective`.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from lifelong.assessment.generation import pass_at_k
from lifelong.data.task import Stream, Task
from lifelong.engine.callbacks import Callback
from lifelong.errors import DataError
from lifelong.hf.encoding import IGNORE, prompts_left_padded
from lifelong.hf.objective import CausalLMObjective, _lm_fields, shifted


def token_measures(model: nn.Module, task: Task, device: torch.device | str = "cpu",
                   objective: CausalLMObjective | None = None, batch_size: int = 256) -> dict[str, float]:
    """``exact_match``, ``token_accuracy`` and ``token_loss`` on ``task.test`` (one teacher-forced pass)."""
    objective = objective or CausalLMObjective()
    device = torch.device(device)
    data = task.test
    hits = tokens = right = 0
    loss_sum = 0.0
    for part, out in objective._scan(model, _lm_fields(data, task.name), device, batch_size):
        logits, target = shifted(out, part["labels"].to(out.device))
        scored = target != IGNORE
        right += int(((logits.argmax(-1) == target) & scored).sum())
        tokens += int(scored.sum())
        hits += int(objective.correct(out, part).sum())
        loss, _ = objective.token_losses(out, part)
        loss_sum += float(loss.sum())
    return {"exact_match": hits / max(1, data.size), "token_accuracy": right / max(1, tokens),
            "token_loss": loss_sum / max(1, tokens)}


def stream_token_measures(model: nn.Module, stream: Stream, device: torch.device | str = "cpu",
                          objective: CausalLMObjective | None = None, batch_size: int = 256) -> list[dict[str, float]]:
    """:func:`token_measures` for every task of ``stream``, in order."""
    return [token_measures(model, t, device, objective, batch_size) for t in stream.tasks]


class TokenMeasures(Callback):
    """At every task end, :func:`token_measures` of every task of the stream (the run's own
    objective); :attr:`records` holds one dict per (task end, task): ``after_task``, ``task``,
    ``exact_match``, ``token_accuracy``, ``token_loss`` -- the accuracy matrix's neighbours."""

    def __init__(self, batch_size: int = 256):
        self.batch_size = int(batch_size)
        self.records: list[dict[str, float]] = []

    def on_task_end(self, ctx, row) -> None:
        for j, task in enumerate(ctx.stream.tasks):
            m = token_measures(ctx.model, task, ctx.device, ctx.objective, self.batch_size)
            self.records.append({"after_task": ctx.task.index, "task": j, **m})


@torch.no_grad()
def sample_correct_counts(model: nn.Module, task: Task, device: torch.device | str = "cpu", n: int = 10,
                          temperature: float = 1.0, top_k: int = 0, limit: int | None = None, seed: int = 0,
                          eos_id: int | None = None, pad_id: int | None = None, batch_size: int = 64) -> list[int]:
    """For each of the first ``limit`` test prompts of ``task``, how many of ``n`` sampled completions
    equal the reference completion exactly (up to and including its end-of-sequence token).

    Sampling is seeded (``seed``) and leaves the global random state as it was. ``eos_id`` and
    ``pad_id`` default to the model's generation config."""
    if int(n) < 1 or not temperature > 0:
        raise DataError(f"sampling needs n >= 1 and temperature > 0; got n={n}, temperature={temperature}.")
    data = task.test
    if "prompt_len" not in data:
        raise DataError(f"task '{task.name}': sampling needs test rows encoded with prompt_len "
                        "(lifelong.hf.encoding.encode_pairs).")
    rows = data.take(slice(0, int(limit))) if limit else data
    gen_cfg = getattr(model, "generation_config", None)
    eos = int(eos_id if eos_id is not None else _first(getattr(gen_cfg, "eos_token_id", None)))
    pad = int(pad_id if pad_id is not None else (getattr(gen_cfg, "pad_token_id", None) or eos))
    device = torch.device(device)
    refs = [row_ids[row_labels != IGNORE] for row_ids, row_labels in zip(rows["input_ids"], rows["labels"])]
    counts: list[int] = []
    was = model.training
    model.eval()
    devices = [device] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(int(seed))
            for start in range(0, rows.size, int(batch_size)):
                part = rows.take(slice(start, start + int(batch_size)))
                ids, mask = prompts_left_padded(part, pad)
                width = max(len(r) for r in refs[start:start + part.size])
                out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=True,
                                     temperature=float(temperature), top_k=int(top_k), top_p=1.0,
                                     num_return_sequences=int(n), max_new_tokens=width, eos_token_id=eos,
                                     pad_token_id=pad)
                gen = out[:, ids.shape[1]:].cpu().view(part.size, int(n), -1)
                for i in range(part.size):
                    ref = refs[start + i]
                    k = len(ref)
                    counts.append(int(sum(1 for s in gen[i] if s.shape[0] >= k and torch.equal(s[:k], ref))))
    finally:
        model.train(was)
    return counts


def pass_at_k_task(model: nn.Module, task: Task, device: torch.device | str = "cpu", n: int = 10,
                   ks: Sequence[int] = (1, 5), temperature: float = 1.0, **sampling: Any) -> dict[str, float]:
    """``{'pass@k': ...}`` for each k in ``ks`` (k <= n): the unbiased estimator over ``n``
    samples per test prompt, averaged over prompts (see :func:`sample_correct_counts`)."""
    bad = [k for k in ks if not 1 <= int(k) <= int(n)]
    if bad:
        raise DataError(f"pass@k needs 1 <= k <= n={n}; got k={bad}.")
    counts = sample_correct_counts(model, task, device, n=n, temperature=temperature, **sampling)
    return {f"pass@{int(k)}": sum(pass_at_k(int(n), c, int(k)) for c in counts) / max(1, len(counts)) for k in ks}


def _first(value: Any) -> int:
    if isinstance(value, (list, tuple)):
        value = value[0] if value else None
    if value is None:
        raise DataError("the model's generation config names no eos_token_id; pass eos_id=.")
    return int(value)

