"""Learning without Forgetting (Li & Hoiem 2016, "Learning without Forgetting")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from lifelong.consolidation._util import frozen_copy, number
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.registry import CONSOLIDATORS

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Batch, Context


@CONSOLIDATORS.register("lwf")
class LwF(Consolidator):
    """Penalty alpha * KL(previous model || current model) on the current batch, softened by ``temperature``.

    From the second task on, ``before_task`` freezes a copy of the model (the
    teacher). The distillation itself is the objective's
    (``objective.distillation``): for classifiers, the KL of the softened
    class distributions restricted to the classes the teacher knew (in the
    class-incremental scenario the new classes are excluded through
    ``mask``; in the task-incremental one, where each row only sees its own
    task's logits, both models are re-run over all classes seen so far); for
    causal language models, the token-level KL on completion positions.
    """

    name: ClassVar[str] = "lwf"
    title: ClassVar[str] = "Learning without Forgetting (Li & Hoiem 2016): distil the previous model on current data."

    def __init__(self, alpha: float = 1.0, temperature: float = 2.0):
        self.alpha = number(self.name, "alpha", alpha)
        self.temperature = number(self.name, "temperature", temperature, 0.0, low_open=True)
        self.teacher: nn.Module | None = None
        self.known: list[int] = []  # classes the teacher was trained on

    def before_task(self, ctx: "Context") -> None:
        self.teacher = None
        if ctx.phase >= 1:
            self.teacher = frozen_copy(ctx.model)

    def _class_mask(self, ctx: "Context") -> Tensor | None:
        n = getattr(ctx.objective, "num_classes", None)
        if n is None or getattr(ctx.objective, "scenario", "domain") == "domain" or not self.known:
            return None
        mask = torch.zeros(int(n), dtype=torch.bool)
        mask[self.known] = True
        return mask

    def expects_penalty(self, ctx: "Context") -> bool:
        return self.alpha > 0 and ctx.phase > 0

    def penalty(self, ctx: "Context", batch: "Batch", out: Tensor) -> Tensor | None:
        if self.teacher is None or self.alpha == 0:
            return None
        objective, data = ctx.objective, batch.data
        if getattr(objective, "scenario", None) == "task" and "task" in data:
            data = data.without("task")  # score every class seen so far, not only the row's task
            out = objective.forward(ctx.model, data)
        with torch.no_grad():
            old = objective.forward(self.teacher, data)
        loss = objective.distillation(out, old, data, temperature=self.temperature, mask=self._class_mask(ctx))
        return self.alpha * loss

    def after_task(self, ctx: "Context") -> None:
        self.known = sorted(set(self.known) | set(ctx.seen_classes))
        self.teacher = None  # the next before_task copies the model as it is then

    def state_dict(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "temperature": self.temperature, "known": list(self.known),
                "teacher": dict(self.teacher.state_dict()) if self.teacher is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.alpha, self.temperature = float(state["alpha"]), float(state["temperature"])
        self.known = list(state["known"])
        if state.get("teacher") is not None and self.teacher is not None:
            self.teacher.load_state_dict(state["teacher"])
