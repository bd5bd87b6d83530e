"""Class-balanced memory: an equal share of the capacity per class seen so far."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from lifelong.data.examples import Examples
from lifelong.memory._balance import (assign_slots, balance_key, class_labels, padded, shuffle_by_group,
                                      water_fill)
from lifelong.memory.base import Memory
from lifelong.memory.registry import BUFFERS


@BUFFERS.register("class-balanced")
class ClassBalanced(Memory):
    """Each class seen so far gets an equal share of the capacity (GDumb's sampler).

    When a task arrives, the per-class targets are the equal shares capped by
    what each class has (classes with few examples keep them all, the others
    split the rest: see :func:`~lifelong.memory._balance.water_fill`).
    Classes above their target, the largest ones, give up randomly chosen
    slots, and a random subset of each new class takes them. A class that
    reappears (domain-incremental streams) keeps new and old examples in
    proportion to how many of each it was offered, like a per-class
    reservoir.

    Bookkeeping is the class of each slot and a per-class counter of
    examples offered, so a task costs a fixed number of tensor operations
    over the capacity, the new examples and the classes: flat as tasks
    accumulate, with no scan of the history and no Python loop over classes.

    ``key`` names the field to balance on: ``auto`` (default) is the class
    ``y``, or the ``task`` in a domain-incremental stream, whose tasks share
    their classes; rows without the field (language-model data) are balanced
    by their ``task`` field.
    """

    name: ClassVar[str] = "class-balanced"

    def __init__(self, capacity: int = 200, seed: int = 0, key: str = "auto"):
        super().__init__(capacity, seed)
        self.key = key
        self.slot_class = torch.full((self.capacity,), -1, dtype=torch.long)
        self.offered = torch.zeros(0, dtype=torch.long)  # examples offered per class

    def select(self, data: Examples, ctx: Any = None) -> tuple[Tensor, Tensor]:
        labels = class_labels(data, balance_key(self.key, ctx))
        held_cls = self.slot_class[: self.filled]
        k = max(int(labels.max()) + 1, int(held_cls.max()) + 1 if self.filled else 0, len(self.offered))
        held = torch.bincount(held_cls, minlength=k)
        incoming = torch.bincount(labels, minlength=k)
        offered = padded(self.offered, k)
        target = water_fill(held + incoming, self.capacity)
        # split each class's target between new and old examples
        lo = (target - held).clamp_min(0)
        hi = torch.minimum(incoming, target)
        share = torch.round(target * incoming / (offered + incoming).clamp_min(1)).long()
        n_new = torch.maximum(lo, torch.minimum(hi, share))
        n_old = target - n_new

        slots, cls, rank = shuffle_by_group(held_cls, k, self.generator)
        freed = slots[rank >= n_old[cls]]
        rows, rcls, rrank = shuffle_by_group(labels, k, self.generator)
        rows = rows[rrank < n_new[rcls]]
        new_slots = assign_slots(len(rows), freed, self.filled)
        self.slot_class[new_slots] = labels[rows]
        self.offered = offered + incoming
        return new_slots, rows

    def class_counts(self) -> dict[int, int]:
        """How many slots each class holds."""
        counts = torch.bincount(self.slot_class[: self.filled]) if self.filled else torch.zeros(0, dtype=torch.long)
        return {c: int(n) for c, n in enumerate(counts.tolist()) if n}

    def extra_state(self) -> dict[str, Any]:
        return {"slot_class": self.slot_class.clone(), "offered": self.offered.clone(), "key": self.key}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "slot_class" in state:
            self.slot_class = state["slot_class"].clone()
            self.offered = state["offered"].clone()
        self.key = state.get("key", self.key)
