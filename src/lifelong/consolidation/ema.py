"""``ema``: an exponential moving average of the weights during training, swapped in at each task end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import torch
from torch import Tensor, nn

from lifelong.consolidation._merge import WeightMerge, grown
from lifelong.consolidation._util import number
from lifelong.consolidation.registry import CONSOLIDATORS

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


@CONSOLIDATORS.register("ema")
class EMA(WeightMerge):
    """After every optimiser step ema = decay * ema + (1 - decay) * theta; at each task end the model becomes ema.

    The average starts at the weights before the first task and runs across
    task boundaries (it is never reset), so it is a slowly moving consolidated
    model over the whole stream. The assessed model (accuracy-matrix rows,
    the final model) is the EMA; learning curves taken during a task
    (``eval_every``) see the live weights. With ``train_from='live'``
    (default) the next task trains on from the live weights, with ``merged``
    from the EMA. The EMA weighs the last ~1/(1 - decay) steps: pick
    ``decay`` so that this is a fair share of a task's steps (0.99 = about
    100 steps). ``params``: see :mod:`lifelong.consolidation._merge`.
    """

    name: ClassVar[str] = "ema"
    title: ClassVar[str] = "EMA of the weights during training, swapped in at each task end."
    accumulators: ClassVar[tuple[str, ...]] = ("average",)

    def __init__(self, decay: float = 0.99, params: str | Sequence[str] | None = None, train_from: str = "live"):
        super().__init__(params, train_from)
        self.decay = number(self.name, "decay", decay, 0.0, 1.0, high_open=True)
        self.average: dict[str, Tensor] = {}
        self._pairs: tuple[list[Tensor], list[Tensor]] | None = None  # cached (ema, param) lists for one task

    def start_tracking(self, new: dict[str, nn.Parameter]) -> None:
        for n in new:
            self.average[n] = self.base[n].clone()

    def grow(self, name: str, p: Tensor) -> None:
        self.average[name] = grown(self.average[name], p)

    def before_task(self, ctx: "Context") -> None:
        super().before_task(ctx)
        self._pairs = None

    @torch.no_grad()
    def after_step(self, ctx: "Context") -> None:
        if self._pairs is None:
            params = self.tracked(ctx.model)
            for n, p in params.items():  # state loaded from a CPU checkpoint follows the model
                if self.average[n].device != p.device:
                    self.average[n] = self.average[n].to(p.device)
            self._pairs = ([self.average[n] for n in params], [p.detach() for p in params.values()])
        averages, live = self._pairs
        if averages:
            torch._foreach_lerp_(averages, live, 1.0 - self.decay)

    def merge(self, ends: dict[str, Tensor]) -> dict[str, Tensor]:
        self._pairs = None
        return {n: self.average[n].clone() for n in ends}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self._pairs = None
