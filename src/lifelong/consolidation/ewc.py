"""Elastic Weight Consolidation (Kirkpatrick et al. 2017, "Overcoming catastrophic
forgetting in neural networks")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor

from lifelong.consolidation._util import empirical_fisher, number, overlap, quadratic, task_sample, trainable
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.registry import CONSOLIDATORS

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


def fisher_args(name: str, lambda_: Any, samples: Any, fisher_batch: Any, seed: Any) -> tuple[float, int, int, int]:
    """The checked (lambda, samples, fisher_batch, seed) shared by the EWC family."""
    return (number(name, "lambda", lambda_),
            number(name, "samples", samples, integer=True, note="0 = the whole task"),
            number(name, "fisher_batch", fisher_batch, 1, integer=True),
            number(name, "seed", seed, None, integer=True))


@CONSOLIDATORS.register("ewc")
class EWC(Consolidator):
    """Penalty (lambda/2) * sum_t sum_i F_t,i (theta_i - theta*_t,i)^2 over past tasks t.

    After each task, the diagonal empirical Fisher F_t is estimated from up to
    ``samples`` of the task's training rows (per-example squared gradients
    when ``fisher_batch=1``) and the weights theta*_t are recorded.

    The per-task quadratics are merged exactly into one (a sum of quadratics
    in theta is a quadratic): A = sum_t F_t, anchor m = sum_t F_t theta*_t / A,
    plus a constant, so memory and cost per step stay flat as tasks accumulate
    while the penalty and its gradient equal the sum over tasks.

    ``lambda_`` is the paper's lambda (configs may write ``lambda``).
    """

    name: ClassVar[str] = "ewc"
    title: ClassVar[str] = "EWC (Kirkpatrick et al. 2017): Fisher-weighted pull towards each past task's weights."
    state_attrs: ClassVar[tuple[str, ...]] = ("importance", "anchor", "constant")

    def __init__(self, lambda_: float = 100.0, samples: int = 256, fisher_batch: int = 1, seed: int = 0):
        self.lambda_, self.samples, self.fisher_batch, self.seed = fisher_args(
            self.name, lambda_, samples, fisher_batch, seed)
        self.importance: dict[str, Tensor] = {}  # A = sum_t F_t
        self.anchor: dict[str, Tensor] = {}      # m = sum_t F_t theta*_t / A
        self.constant = 0.0                      # sum_t F_t (theta*_t - m)^2, summed over parameters

    def fisher(self, ctx: "Context") -> dict[str, Tensor]:
        data = task_sample(ctx, self.samples, self.seed * 7919 + ctx.phase)
        return empirical_fisher(ctx, data, self.fisher_batch)

    def expects_penalty(self, ctx: "Context") -> bool:
        return self.lambda_ > 0 and bool(self.importance)

    def penalty(self, ctx: "Context", batch, out: Tensor) -> Tensor | None:
        q = quadratic(ctx.model, self.importance, self.anchor)
        return None if q is None else 0.5 * self.lambda_ * (q + self.constant)

    @torch.no_grad()
    def consolidate(self, fisher: dict[str, Tensor], weights: dict[str, Tensor]) -> None:
        """Add the quadratic F (theta - weights)^2 to the accumulated one.

        a1 (x - m1)^2 + a2 (x - m2)^2 = (a1 + a2)(x - m)^2 + a1 a2 / (a1 + a2) (m1 - m2)^2
        with m = (a1 m1 + a2 m2) / (a1 + a2).
        """
        for n, f in fisher.items():
            w = weights[n].detach().clone()
            if n not in self.importance:
                self.importance[n], self.anchor[n] = f.clone(), w
                continue
            a1, m1 = self.importance[n], self.anchor[n]
            if a1.shape != f.shape:  # a grown head: widen the old terms with zeros
                a1, m1 = _grow(a1, f.shape), _grow(m1, f.shape)
            a = a1 + f
            safe = torch.where(a > 0, a, torch.ones_like(a))
            m = torch.where(a > 0, (a1 * m1 + f * w) / safe, w)
            self.constant += float((torch.where(a > 0, a1 * f / safe, torch.zeros_like(a)) * (m1 - w) ** 2).sum())
            self.importance[n], self.anchor[n] = a, m

    def after_task(self, ctx: "Context") -> None:
        self.consolidate(self.fisher(ctx), {n: p for n, p in trainable(ctx.model).items()})


def _grow(t: Tensor, shape: torch.Size) -> Tensor:
    out = torch.zeros(shape, dtype=t.dtype, device=t.device)
    dst, src = overlap(out, t)
    dst.copy_(src)
    return out
