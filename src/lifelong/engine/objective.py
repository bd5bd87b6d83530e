"""Objectives: how a model is run on a batch, scored and assessed.

The loop is the same for classifiers and language models; what differs lives
here. An objective knows which fields the model consumes (``model_fields``,
also what replay memory stores), how to compute per-sample losses (schedules
get them as feedback), and how to assess a task (the accuracy matrix entry).
:class:`ClassificationObjective` covers the three classic scenarios;
``lifelong.hf.objective.CausalLMObjective`` covers language models.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lifelong.data.examples import Examples
from lifelong.data.task import Stream, Task


@runtime_checkable
class Objective(Protocol):
    """Everything the loop, the Trainer integration, consolidators, scorers and
    buffers ask of an objective. :class:`ClassificationObjective` and
    ``lifelong.hf.objective.CausalLMObjective`` implement all of it; a new kind
    of model needs one class with these members and nothing else.

    ``out`` below is whatever :meth:`forward` returns (logits ``[batch,
    classes]`` for classifiers, ``[batch, length, vocab]`` for language models).
    """

    #: the data fields the model consumes (also what replay memory stores)
    model_fields: tuple[str, ...]
    #: ``class``, ``task`` or ``domain`` incremental (how outputs are masked)
    scenario: str
    #: the stream's number of classes; None when outputs are not a fixed class set (language models)
    num_classes: int | None

    def begin_task(self, stream: Stream, task: Task, seen_classes: Sequence[int]) -> None:
        """Called at each task start with the classes seen so far (masks follow them)."""
        ...

    def forward(self, model: nn.Module, data: Examples) -> Tensor:
        """Run ``model`` on ``data``; the result is masked with :meth:`mask_logits`."""
        ...

    def mask_logits(self, logits: Tensor, data: Examples) -> Tensor:
        """The scenario's mask over raw model outputs (classes not available get -inf; identity for LMs)."""
        ...

    def per_sample_loss(self, out: Tensor, data: Examples) -> Tensor:
        """One loss per row, float ``[batch]`` (schedules get them as feedback)."""
        ...

    def loss(self, out: Tensor, data: Examples) -> Tensor:
        """The mean of ``per_sample_loss`` (an objective may fuse it)."""
        ...

    def correct(self, out: Tensor, data: Examples) -> Tensor | None:
        """Per-row correctness, bool ``[batch]``, or None when the task has no notion of it."""
        ...

    def distillation(self, out_new: Tensor, out_old: Tensor, data: Examples, temperature: float = 2.0,
                     mask: Tensor | None = None) -> Tensor:
        """KL(old || new) of the softened output distributions, scaled by T^2 (LwF)."""
        ...

    def evaluate(self, model: nn.Module, task: Task, device: torch.device, batch_size: int,
                 baseline: bool = False) -> float:
        """The accuracy-matrix entry of ``task`` (``baseline``: an untrained model, every class active)."""
        ...

    def probes(self, model: nn.Module, stream: Stream, device: torch.device, batch_size: int) -> dict[str, float]:
        """Measurements beyond task accuracy, taken before training and after each
        task (the causal-LM objective reports perplexity on held-out general text);
        ``{}`` when there are none."""
        ...


class ClassificationObjective:
    """Cross-entropy classification under the task-, domain- or class-incremental scenario.

    * class-incremental: logits of classes not seen so far are masked, so the
      model chooses among all classes seen up to the current task;
    * task-incremental: each sample's logits are masked to its own task's
      classes (``task`` field), equivalent to one head per task;
    * domain-incremental: no masking.
    """

    model_fields = ("x", "y")

    def __init__(self, stream: Stream):
        self.scenario = stream.scenario
        n = max(stream.num_classes, 1 + max((max(t.classes) for t in stream.tasks if t.classes), default=0))
        self.num_classes = n
        masks = torch.zeros(len(stream.tasks), n, dtype=torch.bool)
        for t in stream.tasks:
            masks[t.index, list(t.classes)] = True
        self.task_masks = masks  # [tasks, classes]
        self.seen = torch.zeros(n, dtype=torch.bool)
        self._all_seen = False
        self._device_masks: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def begin_task(self, stream: Stream, task: Task, seen_classes: Sequence[int]) -> None:
        self.seen = torch.zeros(self.num_classes, dtype=torch.bool)
        self.seen[list(seen_classes)] = True
        self._all_seen = bool(self.seen.all())
        self._device_masks.clear()

    def _masks(self, device: torch.device) -> tuple[Tensor, Tensor]:
        m = self._device_masks.get(device)
        if m is None:
            m = (self.seen.to(device), self.task_masks.to(device))
            self._device_masks[device] = m
        return m

    def mask_logits(self, logits: Tensor, data: Examples, seen: Tensor | None = None) -> Tensor:
        if self.scenario == "domain":
            return logits
        seen_m, task_m = self._masks(logits.device)
        n = logits.shape[1]
        if self.scenario == "class":
            if seen is None:
                if self._all_seen:  # a Python bool: no device sync on the hot path
                    return logits
                seen = seen_m
            return logits.masked_fill(~seen[:n], float("-inf"))
        m = task_m[data["task"].long()][:, :n] if "task" in data else seen_m[:n]
        return logits.masked_fill(~m, float("-inf"))

    def forward(self, model: nn.Module, data: Examples) -> Tensor:
        return self.mask_logits(model(data["x"]), data)

    def per_sample_loss(self, out: Tensor, data: Examples) -> Tensor:
        return F.cross_entropy(out, data["y"].long(), reduction="none")

    def loss(self, out: Tensor, data: Examples) -> Tensor:
        return F.cross_entropy(out, data["y"].long())

    def correct(self, out: Tensor, data: Examples) -> Tensor:
        return out.argmax(1) == data["y"]

    def distillation(self, out_new: Tensor, out_old: Tensor, data: Examples, temperature: float = 2.0,
                     mask: Tensor | None = None) -> Tensor:
        """Knowledge-distillation loss (LwF): KL(old || new) of the softened
        distributions, scaled by T^2. ``mask`` (bool over classes) restricts it
        to the classes the old model knew; by default, the classes whose old
        logits are finite in the first row."""
        if mask is None:
            mask = torch.isfinite(out_old[0])
        mask = mask[: out_new.shape[1]].to(out_new.device)
        new, old = out_new[:, mask], out_old[:, mask]
        t = float(temperature)
        return F.kl_div(F.log_softmax(new / t, dim=1), F.log_softmax(old / t, dim=1),
                        reduction="batchmean", log_target=True) * (t * t)

    def probes(self, model: nn.Module, stream: Stream, device: torch.device, batch_size: int = 512) -> dict[str, float]:
        """No measurements beyond accuracy for classifiers."""
        return {}

    @torch.no_grad()
    def evaluate(self, model: nn.Module, task: Task, device: torch.device, batch_size: int = 512,
                 baseline: bool = False) -> float:
        """Accuracy on the task's test set. ``baseline`` assesses an untrained
        model, with every class of the stream active."""
        was_training = model.training
        model.eval()
        test = task.test
        seen = torch.ones(self.num_classes, dtype=torch.bool, device=device) if baseline else None
        hits = 0
        for start in range(0, test.size, batch_size):
            part = test.take(slice(start, start + batch_size))
            x = part["x"].to(device, non_blocking=True)
            data = Examples(x=x, y=part["y"].to(device), task=torch.full((part.size,), task.index, device=device))
            logits = self.mask_logits(model(x), data, seen)
            hits += int((logits.argmax(1) == data["y"]).sum())
        model.train(was_training)
        return hits / max(1, test.size)
