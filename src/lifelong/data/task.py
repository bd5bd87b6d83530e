"""``Task`` and ``Stream``: what is taught, in what order, under which scenario."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Sequence

import torch

from lifelong.data.examples import Examples
from lifelong.errors import DataError

Scenario = Literal["task", "domain", "class"]
SCENARIOS: tuple[str, ...] = ("task", "domain", "class")
Kind = Literal["classification", "lm"]


@dataclass
class Task:
    """One lesson: its training and test examples and the labels it uses.

    ``train`` and ``test`` are :class:`Examples`. For classification they have
    fields ``x`` and ``y``; extra per-sample columns (``difficulty``,
    ``group``...) ride along as further fields of ``train``. ``classes`` lists
    the label values of the task (empty for language-model tasks). ``info``
    holds task-level metadata (a skill name, continuous task parameters for
    ALP-GMM, a source file...).
    """

    name: str
    train: Examples
    test: Examples
    classes: tuple[int, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    index: int = -1  # position in its stream, set by Stream

    @property
    def num_train(self) -> int:
        return self.train.size

    @property
    def num_test(self) -> int:
        return self.test.size


@dataclass
class Stream:
    """Tasks in the order they are taught, plus the scenario that says how they relate.

    * ``task``: the task identity is known at train and test time (per-task
      heads, or logits masked to the task's classes);
    * ``domain``: same label space, input distribution shifts (one shared head);
    * ``class``: new classes arrive; at test time the model must choose among
      all classes seen so far (growing output layer).
    """

    name: str
    tasks: list[Task]
    scenario: Scenario = "class"
    num_classes: int = 0
    input_shape: tuple[int, ...] = ()
    kind: Kind = "classification"
    info: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for i, t in enumerate(self.tasks):
            t.index = i
        if self.scenario not in SCENARIOS:
            raise DataError(f"unknown scenario '{self.scenario}'; choose one of: {', '.join(SCENARIOS)}.")

    def __len__(self) -> int:
        return len(self.tasks)

    def __iter__(self):
        return iter(self.tasks)

    def __getitem__(self, i: int) -> Task:
        return self.tasks[i]

    @property
    def task_names(self) -> list[str]:
        return [t.name for t in self.tasks]

    def subset(self, tasks: Sequence[int]) -> "Stream":
        """A stream of some of the tasks (in the given order)."""
        return Stream(self.name, [self.tasks[i] for i in tasks], self.scenario, self.num_classes,
                      self.input_shape, self.kind, dict(self.info))

    def validate(self) -> "Stream":
        """Check the stream before training; raise one clear DataError per problem."""
        if not self.tasks:
            raise DataError(f"stream '{self.name}' has no tasks; give at least one task.")
        for t in self.tasks:
            for split, ex in (("train", t.train), ("test", t.test)):
                if ex.size == 0:
                    raise DataError(
                        f"task '{t.name}' (#{t.index}) has an empty {split} set; "
                        f"every task needs at least one {split} example."
                    )
            if self.kind != "classification":
                continue
            for split, ex in (("train", t.train), ("test", t.test)):
                for f in ("x", "y"):
                    if f not in ex:
                        raise DataError(f"task '{t.name}' {split} data has no field '{f}'; classification tasks need 'x' and 'y'.")
                y = ex["y"]
                if y.dtype not in (torch.int64, torch.int32, torch.int16, torch.uint8):
                    raise DataError(f"task '{t.name}' {split} labels have dtype {y.dtype}; labels must be integers.")
                allowed = torch.as_tensor(t.classes, dtype=y.dtype)
                bad = ~torch.isin(y, allowed)
                if bad.any():
                    vals = sorted(set(y[bad].tolist()))[:5]
                    raise DataError(
                        f"task '{t.name}' {split} set has labels {vals} outside its declared classes "
                        f"{list(t.classes)}; fix the labels or the task's classes."
                    )
                if self.num_classes and (y.min() < 0 or y.max() >= self.num_classes):
                    raise DataError(
                        f"task '{t.name}' {split} labels must lie in [0, {self.num_classes}); "
                        f"found {int(y.min())}..{int(y.max())}."
                    )
                shape = tuple(ex["x"].shape[1:])
                if self.input_shape and shape != tuple(self.input_shape):
                    raise DataError(
                        f"task '{t.name}' {split} inputs have shape {shape} but the stream expects "
                        f"{tuple(self.input_shape)}; all tasks must share one input shape."
                    )
        return self
