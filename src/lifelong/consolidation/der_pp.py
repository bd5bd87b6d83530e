"""DER++ (Buzzega et al. 2020): Dark Experience Replay plus label replay."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

from torch import Tensor

from lifelong.consolidation._util import number
from lifelong.consolidation.der import DER
from lifelong.consolidation.registry import CONSOLIDATORS

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


@CONSOLIDATORS.register("der++")
class DERPlusPlus(DER):
    """DER's logit matching (weight alpha) plus the label loss (weight beta) on replayed rows.

    The label loss uses a second, independent draw from memory, as in the
    paper. Stores end-of-task logits, like :class:`~lifelong.consolidation.der.DER`."""

    name: ClassVar[str] = "der++"
    title: ClassVar[str] = "DER++ (Buzzega et al. 2020): stored-logit matching plus the label loss on replayed rows."

    def __init__(self, alpha: float = 0.2, beta: float = 0.5, batch_size: int = 0):
        super().__init__(alpha, batch_size)
        self.beta = number(self.name, "beta", beta)

    def penalty(self, ctx: "Context", batch, out: Tensor) -> Tensor | None:
        logit = self.logit_loss(ctx)
        if logit is None:
            return None
        mem = self._replay(ctx)
        label = ctx.objective.per_sample_loss(ctx.objective.forward(ctx.model, mem), mem).float().mean()
        return self.alpha * logit + self.beta * label
