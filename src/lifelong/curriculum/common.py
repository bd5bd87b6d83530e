"""Helpers shared by the schedules: parameter checks, step resolution, group
bookkeeping and the difficulty-refresh hook.

Kept apart from :mod:`lifelong.curriculum.base` (the contract) so that method
files can share small pieces of arithmetic without growing the contract.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import Feedback, PoolView, Schedule
from lifelong.errors import ConfigError


def check(cond: bool, message: str) -> None:
    """Raise a :class:`ConfigError` with ``message`` unless ``cond``."""
    if not cond:
        raise ConfigError(message)


def check_fraction(name: str, value: float, low: float = 0.0, high: float = 1.0,
                   low_open: bool = False, high_open: bool = False) -> float:
    """Validate that ``value`` lies in the interval and return it as a float."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} must be a number; got {value!r}.") from None
    lo_ok = v > low if low_open else v >= low
    hi_ok = v < high if high_open else v <= high
    if not (lo_ok and hi_ok and math.isfinite(v)):
        lb, hb = ("(" if low_open else "["), (")" if high_open else "]")
        raise ConfigError(f"{name} must lie in {lb}{low}, {high}{hb}; got {value!r}.")
    return v


def check_positive_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    return int(value)


def check_steps_or_fraction(name: str, value: Any) -> float:
    """A point in training given as a fraction of the task's steps (0 < v <= 1)
    or as a step count (an integer > 1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{name} must be a fraction of the task's steps in (0, 1] or a step count >= 2; got {value!r}.")
    if value > 1 and int(value) != value:
        raise ConfigError(f"{name} above 1 is a step count and must be an integer; got {value!r}.")
    return float(value)


def resolve_steps(value: float, total_steps: int) -> int:
    """Turn a fraction (<= 1) or a step count (> 1) into a step count >= 1."""
    if value <= 1.0:
        return max(1, int(round(value * total_steps)))
    return int(value)


def group_names(pool: PoolView) -> list[str]:
    """Display names of the pool's groups (``group<i>`` where none were given)."""
    names = list(pool.group_names)
    return names + [f"group{i}" for i in range(len(names), pool.num_groups)]


def items_from_groups(probs: Tensor, pool: PoolView) -> Tensor:
    """Item weights such that the total weight of group g is ``probs[g]``."""
    sizes = pool.group_sizes().double()
    per_item = torch.where(sizes > 0, probs.double() / sizes.clamp_min(1), torch.zeros_like(sizes))
    return per_item[pool.groups].float()


def prob_logs(probs: Tensor, pool: PoolView, prefix: str = "p") -> dict[str, float]:
    names = group_names(pool)
    return {f"{prefix}/{names[g]}": float(probs[g]) for g in range(pool.num_groups)}


def count_at_least_one(fraction: float, n: int) -> int:
    """``ceil(fraction * n)`` robust to float noise, at least 1 and at most n."""
    return max(1, min(n, math.ceil(round(fraction * n, 9))))


class DifficultyMixin:
    """Schedules that read ``pool.difficulty``: a clear error when it is missing,
    and the ``refresh_difficulty`` hook the loop calls when a model-based scorer
    recomputes the scores (every ``scorer.refresh_every`` steps)."""

    pool: PoolView | None

    def require_difficulty(self) -> Tensor:
        assert self.pool is not None, "call start() first"
        d = self.pool.difficulty
        if d is None:
            raise ConfigError(
                f"schedule '{getattr(self, 'name', type(self).__name__)}' orders data by difficulty but the pool has "
                "no difficulty scores; set a scorer (given, loss, confidence, transfer, ensemble, length, "
                "compression, diversity, readability) or give the tasks a 'difficulty' column.")
        if d.shape != (self.pool.size,):
            raise ConfigError(f"difficulty scores have shape {tuple(d.shape)}; expected ({self.pool.size},), one per pool item.")
        return d.float()

    def refresh_difficulty(self, difficulty: Tensor) -> None:
        """Replace the pool's difficulty scores and drop anything derived from them."""
        assert self.pool is not None, "call start() first"
        self.pool.difficulty = difficulty
        self.difficulty_changed()

    def difficulty_changed(self) -> None:  # noqa: B027 - optional hook
        """Override to recompute caches (orderings, base weights)."""


def update_averages(fast_avg: Any, slow_avg: Any, g: int, score: float, fast: float, slow: float) -> bool:
    """Move group ``g``'s fast and slow exponential moving averages towards
    ``score``. The first observation (averages still NaN) initialises both and
    returns False; later ones return True."""
    if math.isnan(float(fast_avg[g])):
        fast_avg[g] = slow_avg[g] = score
        return False
    fast_avg[g] += fast * (score - fast_avg[g])
    slow_avg[g] += slow * (score - slow_avg[g])
    return True


def fast_slow_spread(fast: float, slow: float) -> float:
    """Var(fast average - slow average) / Var(score) when the score is flat
    white noise: the scale of the noise floor subtracted from learning progress."""
    a, b = fast, slow
    return a / (2 - a) + b / (2 - b) - 2 * a * b / (a + b - a * b)


class GroupScores:
    """Turns per-step feedback into per-group score observations.

    Item results of one group are pooled until ``episode`` items have been
    seen, then reported as one observation (their mean): single batches hold
    only a few items per group, and learning-progress estimates built on such
    tiny samples are dominated by noise. ``signal``: ``auto`` (accuracy when
    the feedback has correctness, otherwise minus the loss), ``accuracy``,
    ``loss`` (minus the mean loss, so higher is better) or ``eval`` (only the
    per-group ``scores`` of evaluations and quizzes, one observation each).
    """

    SIGNALS = ("auto", "accuracy", "loss", "eval")

    def __init__(self, num_groups: int, episode: int, signal: str):
        self.num_groups = num_groups
        self.episode = episode
        self.signal = signal
        self.sums = [0.0] * num_groups
        self.counts = [0] * num_groups

    def state_dict(self) -> dict[str, Any]:
        return {"sums": list(self.sums), "counts": list(self.counts)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.sums, self.counts = list(state["sums"]), list(state["counts"])

    @staticmethod
    def validate(signal: str, episode: Any) -> tuple[str, int]:
        if signal not in GroupScores.SIGNALS:
            raise ConfigError(f"signal '{signal}' is unknown; choose one of: {', '.join(GroupScores.SIGNALS)}.")
        return signal, check_positive_int("episode", episode)

    def observe(self, fb: Feedback) -> list[tuple[int, float]]:
        """Feed one feedback; return the (group, score) observations it completes."""
        if self.signal == "eval":
            if fb.scores is None:
                return []
            return [(int(g), float(s)) for g, s in sorted(fb.scores.items()) if 0 <= int(g) < self.num_groups]
        if fb.scores is not None and fb.losses is None:  # an evaluation, not a training step
            return []
        if fb.groups is None:
            return []
        if self.signal == "loss" or (self.signal == "auto" and fb.correct is None):
            if fb.losses is None:
                return []
            values = -fb.losses.double()
        else:
            if fb.correct is None:
                raise ConfigError("signal 'accuracy' needs per-sample correctness, which this task does not give; "
                                  "use signal 'loss'.")
            values = fb.correct.double()
        groups = fb.groups.long()
        sums = torch.zeros(self.num_groups, dtype=torch.float64).index_add_(0, groups, values)
        counts = torch.bincount(groups, minlength=self.num_groups)
        out = []
        for g in torch.nonzero(counts).flatten().tolist():
            self.sums[g] += float(sums[g])
            self.counts[g] += int(counts[g])
            if self.counts[g] >= self.episode:
                out.append((g, self.sums[g] / self.counts[g]))
                self.sums[g], self.counts[g] = 0.0, 0
        return out


class GroupSchedule(Schedule):
    """A schedule that chooses among groups: subclasses keep ``self.probs``
    (a distribution over groups); items of a group share its mass equally.
    A teacher's :class:`GroupScores` (``self._scores``) is saved with its state."""

    state_attrs: ClassVar[tuple[str, ...]] = Schedule.state_attrs + ("probs", "_last_step")

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        if hasattr(self, "_scores"):
            state["scores"] = self._scores.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "scores" in state and hasattr(self, "_scores"):
            self._scores.load_state_dict(state["scores"])

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        present = (pool.group_sizes() > 0).double()
        self.probs = present / present.sum().clamp_min(1)

    def group_probs(self, step: int) -> Tensor:
        return self.probs

    def weights(self, step: int) -> Tensor:
        assert self.pool is not None, "call start() first"
        self._last_step = step
        p = self.group_probs(step).double()
        present = self.pool.group_sizes() > 0
        p = torch.where(present, p, torch.zeros_like(p))
        if float(p.sum()) <= 0:
            p = present.double()
        return items_from_groups(p / p.sum(), self.pool)

    def group_probabilities(self, step: int) -> Tensor:
        w = self.weights(step).double()
        per = torch.zeros(self.pool.num_groups, dtype=torch.float64).index_add_(0, self.pool.groups, w)  # type: ignore[union-attr]
        return (per / per.sum()).float()

    def log(self) -> dict[str, float]:
        if self.pool is None:
            return {}
        return prob_logs(self.group_probabilities(getattr(self, "_last_step", 0)), self.pool)
