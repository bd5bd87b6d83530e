"""Averaged Gradient Episodic Memory (Chaudhry et al. 2019, "Efficient Lifelong
Learning with A-GEM")."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from lifelong.consolidation._util import number, trainable
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.registry import CONSOLIDATORS

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


def projection(g: Tensor, g_ref: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`project`'s result and whether it projected (a 0-dim bool tensor;
    a NaN dot product counts as a conflict, as with a Python ``if dot >= 0``)."""
    dot = torch.dot(g, g_ref)
    hit = ~(dot >= 0)
    return torch.where(hit, g - (dot / torch.dot(g_ref, g_ref).clamp_min(1e-12)) * g_ref, g), hit


def project(g: Tensor, g_ref: Tensor) -> Tensor:
    """A-GEM's projection of the flat gradient ``g`` given the reference ``g_ref``:
    the values of ``g`` when g . g_ref >= 0, else g - (g . g_ref / g_ref . g_ref) g_ref,
    after which g . g_ref = 0 (the step no longer increases the memory loss,
    to first order).

    Chosen with ``torch.where`` on device, never a Python ``if`` on the dot
    product: that would copy it to the host and stall a GPU every step. The
    result is always a new tensor."""
    return projection(g, g_ref)[0]


@CONSOLIDATORS.register("agem")
class AGEM(Consolidator):
    """Projects the gradient when it would increase the loss on replayed memory.

    After the backward pass, the loss on ``sample_size`` rows drawn uniformly
    from the replay memory gives a reference gradient g_ref (computed with
    ``torch.autograd.grad``, leaving ``.grad`` untouched); if the batch
    gradient g has g . g_ref < 0 it is replaced by its projection (see
    :func:`project`). Only trainable parameters that received a gradient
    take part. Needs a replay memory; does nothing while it is empty.

    Nothing here reads a tensor value on the host: the (possibly unchanged)
    gradient is always written back, and ``projected``, the number of
    projected steps (a diagnostic), is kept as a device tensor and only
    turned into an ``int`` when read.
    """

    name: ClassVar[str] = "agem"
    title: ClassVar[str] = "A-GEM (Chaudhry et al. 2019): project gradients that would raise the memory's loss."
    state_attrs: ClassVar[tuple[str, ...]] = ("_projected",)
    needs_memory: ClassVar[bool] = True

    def __init__(self, sample_size: int = 64):
        self.sample_size = number(self.name, "sample_size", sample_size, 1, integer=True)
        self._projected: Tensor | int = 0  # steps whose gradient was projected, on device

    @property
    def projected(self) -> int:
        """How many steps had their gradient projected (reading it syncs with the device)."""
        return int(self._projected)

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
        new, hit = projection(g, g_ref)
        self._projected = self._projected + hit.long()
        start = 0
        for p in params:
            n = p.numel()
            p.grad.copy_(new[start:start + n].view_as(p.grad).to(p.grad.dtype))
            start += n
