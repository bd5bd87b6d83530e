"""Turn any schedule into a torch sampler: deterministic, DataLoader-ready, DDP-aware.

All ranks of a distributed job draw the *same* global batch (same seed, same
schedule state) and each keeps its own slice, so ranks see disjoint samples of
one draw. Feedback must then be gathered across ranks before ``update`` so the
schedules stay identical (see :func:`lifelong.engine.distributed.gather_feedback`).
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch import Tensor
from torch.utils.data import Sampler

from lifelong.curriculum.base import Schedule


def _dist_info() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def draw(weights: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """Draw ``n`` indices proportionally to ``weights``: without replacement when
    enough items have positive weight, with replacement otherwise."""
    w = weights.double().clamp_min(0)
    positive = int((w > 0).sum())
    if positive == 0:
        raise RuntimeError("the schedule gave every item zero weight; nothing can be drawn")
    return torch.multinomial(w, n, replacement=positive < n, generator=generator)


class ScheduleSampler:
    """Yields batches of pool indices following a schedule.

    ``step`` counts batches since the schedule started; it is what the schedule
    sees in ``weights(step)``. A uniform schedule is drawn as shuffled epochs
    (exactly like ``DataLoader(shuffle=True)``); any other schedule draws each
    batch from ``weights(step)``.
    """

    def __init__(self, schedule: Schedule, batch_size: int, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None, drop_last: bool = False):
        r, w = _dist_info()
        self.schedule = schedule
        self.batch_size = int(batch_size)
        self.rank = r if rank is None else rank
        self.world_size = w if world_size is None else world_size
        self.drop_last = drop_last
        self.generator = torch.Generator().manual_seed(int(seed))
        self.step = 0
        self._perm: Tensor | None = None
        self._pos = 0

    def next_batch(self, size: int | None = None) -> Tensor:
        """The next batch of indices for this rank (a LongTensor)."""
        b = self.batch_size if size is None else int(size)
        glob = b * self.world_size
        if self.schedule.uniform:
            idx = self._next_uniform(glob)
        else:
            idx = draw(self.schedule.weights(self.step), glob, self.generator)
        self.step += 1
        return idx[self.rank * b:(self.rank + 1) * b]

    def _next_uniform(self, n: int) -> Tensor:
        size = self.schedule.pool.size  # type: ignore[union-attr]
        out = []
        while n > 0:
            if self._perm is None or self._pos >= size:
                self._perm = torch.randperm(size, generator=self.generator)
                self._pos = 0
            take = min(n, size - self._pos)
            out.append(self._perm[self._pos:self._pos + take])
            self._pos += take
            n -= take
        return out[0] if len(out) == 1 else torch.cat(out)

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "step": self.step,
                "perm": self._perm, "pos": self._pos}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        self.step, self._perm, self._pos = state["step"], state["perm"], state["pos"]


class ScheduleBatchSampler(Sampler[list[int]]):
    """A ``batch_sampler`` for ``torch.utils.data.DataLoader`` that follows a schedule.

    ``num_batches`` bounds one pass (``len``); the schedule's ``start`` must have
    been called. Feedback goes to ``schedule.update`` as usual.
    """

    def __init__(self, schedule: Schedule, batch_size: int, num_batches: int, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None):
        self.inner = ScheduleSampler(schedule, batch_size, seed, rank, world_size)
        self.num_batches = int(num_batches)

    def __iter__(self) -> Iterator[list[int]]:
        for _ in range(self.num_batches):
            yield self.inner.next_batch().tolist()

    def __len__(self) -> int:
        return self.num_batches


class ScheduleItemSampler(Sampler[int]):
    """An item-level ``sampler`` (flattened batches), for APIs that take ``sampler=``
    such as ``transformers.Trainer``."""

    def __init__(self, schedule: Schedule, batch_size: int, num_batches: int, seed: int = 0,
                 rank: int | None = None, world_size: int | None = None):
        self.batches = ScheduleBatchSampler(schedule, batch_size, num_batches, seed, rank, world_size)

    def __iter__(self) -> Iterator[int]:
        for b in self.batches:
            yield from b

    def __len__(self) -> int:
        return self.batches.num_batches * self.batches.inner.batch_size
