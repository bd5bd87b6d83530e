"""Online EWC (Schwarz et al. 2018, "Progress & Compress: A scalable framework for
continual learning"): one running Fisher instead of one penalty per task."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from lifelong.consolidation._util import empirical_fisher, number, overlap, quadratic, task_sample, trainable
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.ewc import fisher_args
from lifelong.consolidation.registry import CONSOLIDATORS

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


@CONSOLIDATORS.register("online-ewc")
class OnlineEWC(Consolidator):
    """Penalty (lambda/2) * sum_i F~_i (theta_i - theta*_i)^2 with a running Fisher.

    After task t: F~ <- gamma * F~ + F_t and theta* <- the weights at the end
    of task t. ``gamma`` < 1 lets old importance fade (gamma = 1 keeps all of
    it, anchored at the latest weights). F_t is the empirical Fisher, as in
    :class:`~lifelong.consolidation.ewc.EWC`.
    """

    name: ClassVar[str] = "online-ewc"
    title: ClassVar[str] = "Online EWC (Schwarz et al. 2018): one running, decaying Fisher penalty."
    state_attrs: ClassVar[tuple[str, ...]] = ("importance", "anchor")

    def __init__(self, lambda_: float = 100.0, gamma: float = 0.9, samples: int = 256, fisher_batch: int = 1,
                 seed: int = 0):
        self.lambda_, self.samples, self.fisher_batch, self.seed = fisher_args(
            self.name, lambda_, samples, fisher_batch, seed)
        self.gamma = number(self.name, "gamma", gamma, 0.0, 1.0)
        self.importance: dict[str, Tensor] = {}
        self.anchor: dict[str, Tensor] = {}

    def expects_penalty(self, ctx: "Context") -> bool:
        return self.lambda_ > 0 and ctx.phase > 0

    def penalty(self, ctx: "Context", batch, out: Tensor) -> Tensor | None:
        q = quadratic(ctx.model, self.importance, self.anchor)
        return None if q is None else 0.5 * self.lambda_ * q

    def after_task(self, ctx: "Context") -> None:
        data = task_sample(ctx, self.samples, self.seed * 7919 + ctx.phase)
        fisher = empirical_fisher(ctx, data, self.fisher_batch)
        self.accumulate(fisher, {n: p.detach() for n, p in trainable(ctx.model).items()})

    @torch.no_grad()
    def accumulate(self, fisher: dict[str, Tensor], weights: dict[str, Tensor]) -> None:
        """F~ <- gamma * F~ + fisher; theta* <- weights."""
        for n, p in weights.items():
            f = fisher[n]
            old = self.importance.get(n)
            if old is not None:
                grown = torch.zeros_like(f)
                g, o = overlap(grown, old)
                g.copy_(o)
                f = self.gamma * grown + f
            self.importance[n] = f
            self.anchor[n] = p.detach().clone()
