"""Averaged Gradient Episodic Memory (Chaudhry et al. 2019, "Efficient Lifelong
Learning with A-GEM")."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from lifelong.consolidation._util import trainable
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.registry import CONSOLIDATORS
from lifelong.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


def project(g: Tensor, g_ref: Tensor) -> Tensor:
    """A-GEM's projection of the flat gradient ``g`` given the reference ``g_ref``:
    ``g`` itself when g . g_ref >= 0, else g - (g . g_ref / g_ref . g_ref) g_ref,
    after which g . g_ref = 0 (the step no longer increases the memory loss,
    to first order)."""
    dot = torch.dot(g, g_ref)
    if dot >= 0:
        return g
    return g - (dot / torch.dot(g_ref, g_ref).clamp_min(1e-12)) * g_ref


@CONSOLIDATORS.register("agem")
class AGEM(Consolidator):
    """Projects the gradient when it would increase the loss on replayed memory.

    After the backward pass, the loss on ``sample_size`` rows drawn uniformly
    from the replay memory gives a reference gradient g_ref (computed with
    ``torch.autograd.grad``, leaving ``.grad`` untouched); if the batch
    gradient g has g . g_ref < 0 it is replaced by its projection (see
    :func:`project`). Only trainable parameters that received a gradient
    take part. Needs a replay memory; does nothing while it is empty.
    """

    name: ClassVar[str] = "agem"
    needs_memory: ClassVar[bool] = True

    def __init__(self, sample_size: int = 64):
        if int(sample_size) < 1:
            raise ConfigError(f"agem.sample_size must be >= 1; got {sample_size}.")
        self.sample_size = int(sample_size)
        self.projected = 0  # steps whose gradient was projected (a diagnostic)

    def after_backward(self, ctx: "Context", batch) -> None:
        mem = ctx.memory_sample(self.sample_size)
        if mem is None:
            return
        params = [p for p in trainable(ctx.model).values() if p.grad is not None]
        if not params:
            return
        mem = mem.to(ctx.device)
        out = ctx.objective.forward(ctx.model, mem)
        ref_loss = ctx.objective.per_sample_loss(out, mem).float().mean()
        refs = torch.autograd.grad(ref_loss, params, allow_unused=True)
        g = torch.cat([p.grad.reshape(-1).float() for p in params])
        g_ref = torch.cat([(r if r is not None else torch.zeros_like(p)).reshape(-1).float()
                           for p, r in zip(params, refs)])
        new = project(g, g_ref)
        if new is g:
            return
        self.projected += 1
        start = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(new[start:start + n].view_as(p.grad).to(p.grad.dtype))
            start += n
