"""Reservoir sampling (Vitter's algorithm R), vectorised over a whole task."""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor

from lifelong.data.examples import Examples
from lifelong.memory.base import Memory
from lifelong.memory.registry import BUFFERS


@BUFFERS.register("reservoir")
class Reservoir(Memory):
    """Every example offered so far is stored with equal probability capacity / seen.

    The n-th example offered (0-based) fills slot n while the memory is not
    full; afterwards it draws j uniformly in [0, n] and replaces slot j when
    j < capacity. A task's examples are processed in one vectorised pass,
    exactly as if offered one by one in order: when several of them draw the
    same slot, the last one wins. Cost: O(n + capacity) per task, O(1) per
    example, whatever the number of tasks so far.
    """

    name: ClassVar[str] = "reservoir"

    def select(self, data: Examples, ctx: Any = None) -> tuple[Tensor, Tensor]:
        n, cap = data.size, self.capacity
        pos = torch.arange(self.seen, self.seen + n, dtype=torch.long)
        fill = pos < cap
        # float64 keeps the draw exact for streams of up to ~2^52 examples
        draw = (torch.rand(n, generator=self.generator, dtype=torch.float64) * (pos + 1).double()).long()
        slots = torch.where(fill, pos, draw)
        keep = fill | (draw < cap)
        slots, rows = slots[keep], torch.nonzero(keep).squeeze(1)
        if len(rows) == 0:
            return slots, rows
        # later rows overwrite earlier ones in the same slot: keep the last writer
        last = torch.full((cap,), -1, dtype=torch.long)
        last.scatter_reduce_(0, slots, rows, reduce="amax")
        slots = torch.nonzero(last >= 0).squeeze(1)
        return slots, last[slots]
