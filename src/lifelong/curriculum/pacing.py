"""Pacing functions and the paced schedules built on them.

A pacing function gives the fraction of the data, easiest first, available at
a point of training (Bengio et al.'s curriculum; the functions follow the
"competence" and "pacing function" literature: Platanios et al. 2019, Hacohen
& Weinshall 2019, Wu et al. 2021). Each takes the progress ``s`` in [0, 1]
(step / the step at which all data is in) and the starting fraction:

* ``linear``:    g = start + (1 - start) s
* ``root``:      g = (start^p + (1 - start^p) s)^(1/p)       (p = 2: square root)
* ``geometric``: g = start^(1 - s)                          (doubling-like growth)
* ``step``:      baby steps; K equal buckets by difficulty, the first at s = 0,
                 one more each 1/(K-1) of the way: g = max(start, (floor(s (K-1)) + 1) / K)

The available items at fraction g are the ceil(g N) first items of an order:
easiest first (curriculum), hardest first (``anti``) or a seeded random order
(``random-order``, the control that separates "less data early" from
"easy data early"). Available items are equally likely.
"""

from __future__ import annotations

import math
from typing import Callable, ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import PoolView, Schedule
from lifelong.curriculum.common import (DifficultyMixin, check_fraction, check_positive_int,
                                        check_steps_or_fraction, count_at_least_one, resolve_steps)
from lifelong.curriculum.registry import SCHEDULES
from lifelong.errors import ConfigError


def pace_linear(s: float, start: float) -> float:
    return start + (1.0 - start) * s


def pace_root(s: float, start: float, p: float = 2.0) -> float:
    return min(1.0, (start ** p + (1.0 - start ** p) * s) ** (1.0 / p))


def pace_geometric(s: float, start: float) -> float:
    return start ** (1.0 - s)


def pace_step(s: float, start: float, buckets: int = 5) -> float:
    return max(start, min(1.0, (math.floor(s * (buckets - 1) + 1e-9) + 1) / buckets))


PACINGS: dict[str, Callable[..., float]] = {
    "linear": pace_linear, "root": pace_root, "geometric": pace_geometric, "step": pace_step,
}


def pacing_fraction(pacing: str, s: float, start: float, p: float = 2.0, buckets: int = 5) -> float:
    """The available fraction under ``pacing`` at progress ``s`` (clamped to [0, 1])."""
    s = min(1.0, max(0.0, s))
    if pacing == "root":
        return pace_root(s, start, p)
    if pacing == "step":
        return pace_step(s, start, buckets)
    return PACINGS[pacing](s, start)


def difficulty_order(difficulty: Tensor, seed: int, descending: bool = False) -> Tensor:
    """Item indices sorted by difficulty; ties are broken by a seeded shuffle."""
    g = torch.Generator().manual_seed(int(seed))
    perm = torch.randperm(len(difficulty), generator=g)
    d = difficulty[perm].double()
    order = torch.argsort(-d if descending else d, stable=True)
    return perm[order]


class PacedSchedule(DifficultyMixin, Schedule):
    """Base of the paced schedules: a pacing function over an item order.

    ``start`` is the fraction available at step 0; ``full_at`` the point where
    all data is in (a fraction of the task's steps, or a step count).
    ``warmup`` (same units) makes the curriculum a warm-up only: pacing reaches
    all data at ``warmup`` and training is then vanilla (shuffled epochs),
    the setting "Beyond Random Sampling" found to give lasting gains.
    """

    name: ClassVar[str] = "paced"
    needs_difficulty: ClassVar[bool] = True
    order_kind: ClassVar[str] = "easy"  # easy | hard | random
    state_attrs: ClassVar[tuple[str, ...]] = Schedule.state_attrs + (
        "_full_steps", "_order", "_after_warmup", "_fraction")

    def __init__(self, pacing: str = "linear", start: float = 0.2, full_at: float = 0.8,
                 warmup: float | None = None, p: float = 2.0, buckets: int = 5) -> None:
        super().__init__()
        if pacing not in PACINGS:
            raise ConfigError(f"pacing '{pacing}' is unknown; choose one of: {', '.join(PACINGS)}.")
        self.pacing = pacing
        self.start_fraction = check_fraction("start", start, 0.0, 1.0, low_open=pacing == "geometric")
        self.full_at = check_steps_or_fraction("full_at", full_at)
        self.warmup = None if warmup is None else check_steps_or_fraction("warmup", warmup)
        self.p = check_fraction("p", p, 0.0, 1e6, low_open=True)
        self.buckets = check_positive_int("buckets", buckets, 2)
        self._order: Tensor | None = None
        self._cached: tuple[int, Tensor] | None = None
        self._after_warmup = False

    @property
    def uniform(self) -> bool:  # type: ignore[override]
        """True once a warm-up curriculum is over: the sampler then draws shuffled epochs."""
        return self._after_warmup

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        end = self.warmup if self.warmup is not None else self.full_at
        self._full_steps = resolve_steps(end, self.total_steps)
        self._order = None
        self._cached = None
        self._after_warmup = False
        self._fraction = self.fraction(0)

    def difficulty_changed(self) -> None:
        self._order = None
        self._cached = None

    def item_order(self) -> Tensor:
        """Pool indices in the order they become available."""
        if self._order is None:
            assert self.pool is not None
            if self.order_kind == "random":
                g = torch.Generator().manual_seed(self.seed)
                self._order = torch.randperm(self.pool.size, generator=g)
            else:
                self._order = difficulty_order(self.require_difficulty(), self.seed, self.order_kind == "hard")
        return self._order

    def fraction(self, step: int) -> float:
        """Share of the pool available at ``step``."""
        return pacing_fraction(self.pacing, step / self._full_steps, self.start_fraction, self.p, self.buckets)

    def weights(self, step: int) -> Tensor:
        assert self.pool is not None, "call start() first"
        self._fraction = frac = self.fraction(step)
        if self.warmup is not None and step >= self._full_steps:
            self._after_warmup = True
        k = count_at_least_one(frac, self.pool.size)
        if self._cached is not None and self._cached[0] == k:
            return self._cached[1]
        w = torch.zeros(self.pool.size)
        w[self.item_order()[:k]] = 1.0
        self._cached = (k, w)
        return w

    def log(self) -> dict[str, float]:
        return {"available_fraction": float(getattr(self, "_fraction", 1.0))}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self._cached = None


@SCHEDULES.register("linear")
class LinearPacing(PacedSchedule):
    """Easy-to-hard curriculum, available data growing linearly from `start` to all at `full_at`."""

    name: ClassVar[str] = "linear"

    def __init__(self, start: float = 0.2, full_at: float = 0.8, warmup: float | None = None) -> None:
        super().__init__("linear", start, full_at, warmup)


@SCHEDULES.register("root")
class RootPacing(PacedSchedule):
    """Easy-to-hard curriculum with root pacing (exponent `p`): fast early growth, slow later."""

    name: ClassVar[str] = "root"

    def __init__(self, start: float = 0.2, full_at: float = 0.8, p: float = 2.0, warmup: float | None = None) -> None:
        super().__init__("root", start, full_at, warmup, p=p)


@SCHEDULES.register("geometric")
class GeometricPacing(PacedSchedule):
    """Easy-to-hard curriculum with geometric (exponential) growth of the available data."""

    name: ClassVar[str] = "geometric"

    def __init__(self, start: float = 0.2, full_at: float = 0.8, warmup: float | None = None) -> None:
        super().__init__("geometric", start, full_at, warmup)


@SCHEDULES.register("step")
class StepPacing(PacedSchedule):
    """Baby steps: `buckets` equal difficulty buckets, added one at a time until `full_at`."""

    name: ClassVar[str] = "step"

    def __init__(self, buckets: int = 5, start: float = 0.0, full_at: float = 0.8,
                 warmup: float | None = None) -> None:
        super().__init__("step", start, full_at, warmup, buckets=buckets)


@SCHEDULES.register("anti")
class AntiCurriculum(PacedSchedule):
    """Anti-curriculum control: the same pacing, hardest data first."""

    name: ClassVar[str] = "anti"
    order_kind: ClassVar[str] = "hard"


@SCHEDULES.register("random-order")
class RandomOrderPacing(PacedSchedule):
    """Control: the same pacing over a seeded random order instead of difficulty."""

    name: ClassVar[str] = "random-order"
    needs_difficulty: ClassVar[bool] = False
    order_kind: ClassVar[str] = "random"


__all__ = ["PACINGS", "pacing_fraction", "pace_linear", "pace_root", "pace_geometric", "pace_step",
           "difficulty_order", "PacedSchedule", "LinearPacing", "RootPacing", "GeometricPacing",
           "StepPacing", "AntiCurriculum", "RandomOrderPacing"]
