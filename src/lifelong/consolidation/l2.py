"""L2 regularisation towards the previous task's weights (the simplest
parameter-regularisation baseline; EWC with an identity Fisher)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from lifelong.consolidation._util import number, quadratic, trainable
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.registry import CONSOLIDATORS

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


@CONSOLIDATORS.register("l2")
class L2(Consolidator):
    """Penalty (lambda/2) * sum_i (theta_i - theta*_i)^2, theta* = weights at the end of the previous task."""

    name: ClassVar[str] = "l2"
    title: ClassVar[str] = "L2 pull towards the previous task's weights."
    state_attrs: ClassVar[tuple[str, ...]] = ("anchor", "ones")

    def __init__(self, lambda_: float = 1.0):
        self.lambda_ = number(self.name, "lambda", lambda_)
        self.anchor: dict[str, Tensor] = {}
        self.ones: dict[str, Tensor] = {}

    def expects_penalty(self, ctx: "Context") -> bool:
        return self.lambda_ > 0 and ctx.phase > 0

    def penalty(self, ctx: "Context", batch, out: Tensor) -> Tensor | None:
        q = quadratic(ctx.model, self.ones, self.anchor)
        return None if q is None else 0.5 * self.lambda_ * q

    @torch.no_grad()
    def after_task(self, ctx: "Context") -> None:
        self.anchor = {n: p.detach().clone() for n, p in trainable(ctx.model).items()}
        self.ones = {n: torch.ones((), dtype=p.dtype, device=p.device) for n, p in self.anchor.items()}
