"""Learning-progress teachers (the teacher-student curriculum family:
Matiisen et al., "Teacher-Student Curriculum Learning", 2017).

A group on which the learner's score changes fastest, up or down, is where
studying pays most; groups it already knows and groups it cannot learn
(random labels) both have a flat score and fade out. Learning progress (LP)
of a group is estimated from its score observations (see
:class:`~lifelong.curriculum.common.GroupScores`) by one of:

* ``window``: |slope| of a least-squares line through the group's last
  ``window`` (step, score) observations;
* ``online``: |fast - slow| of two exponential moving averages of the score
  (rates ``fast`` and ``slow``);

and turned into sampling probabilities by

* ``window`` / ``online``: proportional to LP, mixed with ``eps`` uniform;
* ``exp3``: the EXP3 bandit (rate ``gamma``), rewarded with the online LP
  of the groups observed, normalised by the largest LP;
* ``epsilon-greedy``: the group of highest online LP with probability
  1 - eps, uniform otherwise.

Groups not yet measured count as having the largest LP so each is tried.

Noise floor: an unlearnable group's score is flat but noisy, and |slope| or
|fast - slow| of pure noise is positive, largest for scores near chance
(Bernoulli variance). With ``noise_z`` > 0 each group's observation noise is
estimated from successive differences (var = E[(x_t - x_{t-1})^2] / 2, which a
slow trend barely affects) and LP is reduced by ``noise_z`` standard errors of
the estimator under no progress (the slope's standard error for ``window``;
the stationary spread of fast - slow for the moving averages), floored at 0.
Set ``noise_z: 0`` for the plain estimators of the paper.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import Feedback, PoolView
from lifelong.curriculum.common import (GroupSchedule, GroupScores, check_fraction, check_positive_int,
                                        fast_slow_spread, group_names, update_averages)
from lifelong.curriculum.registry import SCHEDULES
from lifelong.errors import ConfigError

VARIANTS = ("window", "online", "exp3", "epsilon-greedy")


def window_slope(steps: list[float], scores: list[float]) -> float:
    """Least-squares slope of score against step (0 with fewer than 2 distinct steps)."""
    n = len(steps)
    if n < 2:
        return 0.0
    mt, ms = sum(steps) / n, sum(scores) / n
    var = sum((t - mt) ** 2 for t in steps)
    if var == 0:
        return 0.0
    return sum((t - mt) * (s - ms) for t, s in zip(steps, scores)) / var


def proportional(lp: Tensor, present: Tensor, eps: float) -> Tensor:
    """eps-uniform mixture with probabilities proportional to ``lp`` over present groups."""
    n = int(present.sum())
    lp = torch.where(present, lp.double(), torch.zeros_like(lp, dtype=torch.float64))
    total = float(lp.sum())
    share = lp / total if total > 0 else present.double() / n
    return eps * present.double() / n + (1.0 - eps) * share


@SCHEDULES.register("learning-progress")
class LearningProgressTeacher(GroupSchedule):
    """Learning-progress teacher: sample groups by |slope| of their recent score (window/online/exp3/epsilon-greedy)."""

    name: ClassVar[str] = "learning-progress"
    needs_feedback: ClassVar[bool] = True
    state_attrs: ClassVar[tuple[str, ...]] = GroupSchedule.state_attrs + (
        "history", "fast_avg", "slow_avg", "log_w", "lp", "last", "noise_var")

    def __init__(self, variant: str = "online", window: int = 20, fast: float = 0.1, slow: float = 0.02,
                 eps: float = 0.1, gamma: float = 0.1, episode: int = 32, signal: str = "auto",
                 noise_z: float = 1.0) -> None:
        super().__init__()
        if variant not in VARIANTS:
            raise ConfigError(f"learning-progress variant '{variant}' is unknown; choose one of: {', '.join(VARIANTS)}.")
        self.variant = variant
        self.window = check_positive_int("window", window, 2)
        self.fast = check_fraction("fast", fast, 0.0, 1.0, low_open=True)
        self.slow = check_fraction("slow", slow, 0.0, 1.0, low_open=True)
        if self.slow >= self.fast:
            raise ConfigError(f"slow ({slow}) must be smaller than fast ({fast}): the slow average must lag.")
        self.eps = check_fraction("eps", eps)
        self.gamma = check_fraction("gamma", gamma, 0.0, 1.0, low_open=True)
        self.signal, self.episode = GroupScores.validate(signal, episode)
        self.noise_z = check_fraction("noise_z", noise_z, 0.0, 10.0)

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        n = pool.num_groups
        self._scores = GroupScores(n, self.episode, self.signal)
        self.history: list[list[tuple[float, float]]] = [[] for _ in range(n)]
        self.fast_avg = torch.full((n,), math.nan, dtype=torch.float64)
        self.slow_avg = torch.full((n,), math.nan, dtype=torch.float64)
        self.log_w = torch.zeros(n, dtype=torch.float64)
        self.lp = torch.full((n,), math.nan, dtype=torch.float64)
        self.last = torch.full((n,), math.nan, dtype=torch.float64)
        self.noise_var = torch.full((n,), math.nan, dtype=torch.float64)
        self.probs = self._compute_probs()

    def _track_noise(self, group: int, score: float) -> float:
        """Update and return the group's observation-noise variance (0 until two observations)."""
        prev = float(self.last[group])
        self.last[group] = score
        if math.isnan(prev):
            return 0.0
        half_sq = 0.5 * (score - prev) ** 2
        v = float(self.noise_var[group])
        v = half_sq if math.isnan(v) else v + self.slow * (half_sq - v)
        self.noise_var[group] = v
        return v

    # -- estimates -------------------------------------------------------
    def observe(self, group: int, step: float, score: float) -> None:
        """Record one score observation of ``group`` and refresh its LP."""
        var = self._track_noise(group, score)
        if self.variant == "window":
            h = self.history[group]
            h.append((float(step), float(score)))
            del h[:-self.window]
            if len(h) >= 2:
                ts = [t for t, _ in h]
                mt = sum(ts) / len(ts)
                spread = sum((t - mt) ** 2 for t in ts)
                se = math.sqrt(var / spread) if spread > 0 else 0.0
                self.lp[group] = max(0.0, abs(window_slope(ts, [s for _, s in h])) - self.noise_z * se)
            return
        if not update_averages(self.fast_avg, self.slow_avg, group, score, self.fast, self.slow):
            # a first observation says nothing about progress; keep the group "untried"
            self.lp[group] = math.nan
            return
        floor = self.noise_z * math.sqrt(max(0.0, var * fast_slow_spread(self.fast, self.slow)))
        self.lp[group] = max(0.0, abs(float(self.fast_avg[group] - self.slow_avg[group])) - floor)

    def _filled_lp(self) -> Tensor:
        """LP with untried groups set to the largest known LP (or 1 when none is known)."""
        known = ~torch.isnan(self.lp)
        top = float(self.lp[known].max()) if bool(known.any()) else 1.0
        return torch.where(known, self.lp, torch.full_like(self.lp, top if top > 0 else 1.0))

    def _compute_probs(self) -> Tensor:
        present = self.pool.group_sizes() > 0  # type: ignore[union-attr]
        n = int(present.sum())
        lp = self._filled_lp()
        if self.variant in ("window", "online"):
            return proportional(lp, present, self.eps)
        if self.variant == "epsilon-greedy":
            masked = torch.where(present, lp, torch.full_like(lp, -math.inf))
            best = (masked == masked.max()) & present
            return self.eps * present.double() / n + (1.0 - self.eps) * best.double() / float(best.sum())
        logits = torch.where(present, self.log_w, torch.full_like(self.log_w, -math.inf))
        soft = torch.softmax(logits - logits.max(), 0)
        return (1.0 - self.gamma) * soft + self.gamma * present.double() / n

    def update(self, feedback: Feedback) -> None:
        observed = self._scores.observe(feedback)
        if not observed:
            return
        for g, score in observed:
            self.observe(g, feedback.step, score)
        if self.variant == "exp3":
            lp = self._filled_lp()
            top = float(lp.max())
            n = int((self.pool.group_sizes() > 0).sum())  # type: ignore[union-attr]
            for g in sorted({g for g, _ in observed}):
                reward = float(lp[g]) / top if top > 0 else 0.0
                self.log_w[g] += self.gamma * reward / (n * max(float(self.probs[g]), 1e-6))
            self.log_w -= float(self.log_w.max())
        self.probs = self._compute_probs()

    def log(self) -> dict[str, float]:
        out = super().log()
        names = group_names(self.pool)  # type: ignore[arg-type]
        out.update({f"lp/{name}": float(v) for name, v in zip(names, self.lp.tolist()) if not math.isnan(v)})
        return out
