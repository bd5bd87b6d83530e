"""Dark Experience Replay (Buzzega et al. 2020, "Dark Experience for General
Continual Learning: a Strong, Simple Baseline")."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from lifelong.consolidation._util import number
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.registry import CONSOLIDATORS
from lifelong.data.examples import Examples

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


def outputs(ctx: "Context", data: Examples) -> Tensor:
    """The model's outputs on ``data``, unmasked: a classifier's logits for
    every output unit (the objective would mask classes not seen yet), so
    replaying them also holds down future classes' logits on old examples, as
    in the paper; a language model's logits through the objective."""
    if hasattr(ctx.objective, "mask_logits") and "x" in data:
        return ctx.model(data["x"])
    return ctx.objective.forward(ctx.model, data)


def masked_mse(current: Tensor, stored: Tensor) -> Tensor:
    """Mean squared difference over the entries both tensors have and where
    both are finite (stored logits are NaN where the storing model had no
    active output, e.g. classes not seen yet; shapes are cut to the common
    part, e.g. sequence lengths)."""
    idx = tuple(slice(0, min(a, b)) for a, b in zip(current.shape, stored.shape))
    cur, old = current[idx].float(), stored[idx].to(current.device).float()
    valid = torch.isfinite(cur) & torch.isfinite(old)
    # no host-side test of ``valid``: with no valid entry the sum is 0 and the count clamps to 1
    diff = torch.where(valid, cur - torch.nan_to_num(old), torch.zeros_like(cur))
    return (diff ** 2).sum() / valid.sum().clamp_min(1)


@CONSOLIDATORS.register("der")
class DER(Consolidator):
    """Penalty alpha * MSE(current logits, stored logits) on rows replayed from memory.

    Each step draws ``batch_size`` rows uniformly from the replay memory
    (0 = the training batch size), runs the model on them through the
    model on them and matches the logits stored with them (all output units
    of a classifier, see :func:`outputs`).

    Difference from the paper: Buzzega et al. store each example's logits
    when it enters the reservoir, during training; here memory is filled at
    the end of each task, so the stored logits are the *end-of-task* model's
    (``memory_extras``). Stored logits are padded with NaN to the stream's
    number of classes (class-incremental heads grow) or, for language models,
    to the row's full length; padded entries are NaN and ignored by the MSE.
    """

    name: ClassVar[str] = "der"
    title: ClassVar[str] = "Dark Experience Replay (Buzzega et al. 2020): match stored logits on replayed rows."
    memory_fields: ClassVar[tuple[str, ...]] = ("logits",)
    needs_memory: ClassVar[bool] = True

    def __init__(self, alpha: float = 0.3, batch_size: int = 0):
        self.alpha = number(self.name, "alpha", alpha)
        self.batch_size = number(self.name, "batch_size", batch_size, integer=True, note="0 = the training batch size")

    def _replay(self, ctx: "Context") -> Examples | None:
        n = self.batch_size or ctx.config.batch_size
        mem = ctx.memory_sample(n)
        return None if mem is None else mem.to(ctx.device)

    def logit_loss(self, ctx: "Context") -> Tensor | None:
        mem = self._replay(ctx)
        if mem is None or "logits" not in mem:
            return None
        return masked_mse(outputs(ctx, mem), mem["logits"])

    def expects_penalty(self, ctx: "Context") -> bool:
        return self.alpha > 0 and ctx.memory is not None and len(ctx.memory) > 0

    def penalty(self, ctx: "Context", batch, out: Tensor) -> Tensor | None:
        loss = self.logit_loss(ctx)
        return None if loss is None else self.alpha * loss

    @torch.no_grad()
    def memory_extras(self, ctx: "Context", examples: Examples) -> dict[str, Tensor]:
        model = ctx.model
        was = model.training
        model.eval()
        parts = []
        try:
            step = max(1, int(getattr(ctx.config, "eval_batch_size", 512)))
            for start in range(0, examples.size, step):
                part = examples.take(slice(start, start + step)).to(ctx.device)
                parts.append(outputs(ctx, part).float().cpu())
        finally:
            model.train(was)
        logits = torch.cat(parts)
        logits = torch.where(torch.isfinite(logits), logits, torch.full_like(logits, float("nan")))
        return {"logits": _pad(logits, ctx, examples)}


def _pad(logits: Tensor, ctx: "Context", examples: Examples) -> Tensor:
    """Pad with NaN to a width that does not change between tasks."""
    shape = list(logits.shape)
    n_classes = getattr(ctx.objective, "num_classes", None)
    if logits.dim() == 2 and n_classes is not None:
        shape[1] = max(shape[1], int(n_classes))
    elif logits.dim() == 3 and "input_ids" in examples:
        shape[1] = max(shape[1], int(examples["input_ids"].shape[1]))
    if shape == list(logits.shape):
        return logits
    out = torch.full(shape, float("nan"), dtype=logits.dtype)
    out[tuple(slice(0, s) for s in logits.shape)] = logits
    return out
