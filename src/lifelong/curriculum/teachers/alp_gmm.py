"""ALP-GMM teacher, after "Teacher algorithms for curriculum learning of Deep
RL in continuously parameterized environments" (Portelas et al., CoRL 2019).

Groups are described by continuous parameters (``pool.info["params"]``, one
vector per group; without them each group is its own one-hot point). Each
score observation of a group yields an absolute learning progress point.
The paper compares an episode's return with that of the nearest earlier
episode in parameter space; with discrete groups the nearest earlier episode
is the group's own previous one, and |score - previous score| measures
mostly observation noise (largest for near-chance scores, i.e. for
unlearnable groups). We therefore compare with the group's score history:
ALP = |fast - slow| of two moving averages of its scores, less ``noise_z``
standard deviations of that difference under no progress (noise estimated
from successive differences), floored at 0. ``noise_z: 0, fast: 1, slow``
close to 1 recovers the raw consecutive difference. A Gaussian mixture is fitted
every ``fit_every`` observations on the last ``history`` (parameters, ALP)
points, with 1..``max_components`` components chosen by AIC. Sampling picks a
component with probability proportional to its mean ALP and then a group by
the component's density at the group's parameters (the discrete counterpart of
sampling new parameters from that Gaussian); with probability ``eps`` a group
is drawn uniformly (the paper's random exploration). The code is ours; the
mixture fit is scikit-learn's ``GaussianMixture``.
"""

from __future__ import annotations

import math
import warnings
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from lifelong.curriculum.base import Feedback, PoolView
from lifelong.curriculum.common import (GroupSchedule, GroupScores, check_fraction, check_positive_int,
                                        fast_slow_spread, group_names, update_averages)
from lifelong.curriculum.registry import SCHEDULES
from lifelong.errors import ConfigError


def group_parameters(pool: PoolView) -> np.ndarray:
    """[num_groups, d] parameter matrix from ``pool.info["params"]`` (one-hot if absent)."""
    raw = pool.info.get("params") if pool.info else None
    if raw is None or (isinstance(raw, (list, tuple)) and all(r is None for r in raw)):
        return np.eye(pool.num_groups)
    rows = list(raw)
    if len(rows) != pool.num_groups or any(r is None for r in rows):
        raise ConfigError(f"alp-gmm needs task parameters for every group: pool.info['params'] has {len(rows)} "
                          f"entries (some may be None) for {pool.num_groups} groups; set info['params'] on every task.")
    try:
        x = np.asarray([np.asarray(r, dtype=np.float64).reshape(-1) for r in rows], dtype=np.float64)
    except ValueError:
        raise ConfigError("alp-gmm: every task's info['params'] must be a vector of the same length.") from None
    if not np.isfinite(x).all():
        raise ConfigError("alp-gmm: task parameters must be finite numbers.")
    return x


def component_group_probs(params: np.ndarray, means: np.ndarray, variances: np.ndarray,
                          comp_weights: np.ndarray) -> np.ndarray:
    """p(group) = sum_c w_c N(params_g | mean_c, diag var_c) / sum_g' N(params_g' | ...)."""
    out = np.zeros(len(params))
    for mu, var, w in zip(means, variances, comp_weights):
        if w <= 0:
            continue
        logd = -0.5 * (((params - mu) ** 2) / var + np.log(2 * math.pi * var)).sum(1)
        dens = np.exp(logd - logd.max())
        out += w * dens / dens.sum()
    total = out.sum()
    return out / total if total > 0 else np.full(len(params), 1.0 / len(params))


@SCHEDULES.register("alp-gmm")
class ALPGMMTeacher(GroupSchedule):
    """ALP-GMM: Gaussian mixture over (task parameters, absolute learning progress); sample high-ALP regions."""

    name: ClassVar[str] = "alp-gmm"
    needs_feedback: ClassVar[bool] = True
    #: the group parameters (``params``, ``_x``) are not saved: ``start`` derives them from the pool
    state_attrs: ClassVar[tuple[str, ...]] = GroupSchedule.state_attrs + (
        "last_score", "fast_avg", "slow_avg", "noise_var", "points", "new_since_fit", "fits", "gmm_probs",
        "comp_alp")

    def __init__(self, eps: float = 0.2, max_components: int = 4, fit_every: int = 16, history: int = 200,
                 episode: int = 32, signal: str = "auto", fast: float = 0.1, slow: float = 0.02,
                 noise_z: float = 1.0) -> None:
        super().__init__()
        self.eps = check_fraction("eps", eps)
        self.fast = check_fraction("fast", fast, 0.0, 1.0, low_open=True)
        self.slow = check_fraction("slow", slow, 0.0, 1.0, low_open=True)
        if self.slow > self.fast:
            raise ConfigError(f"slow ({slow}) must not exceed fast ({fast}).")
        self.noise_z = check_fraction("noise_z", noise_z, 0.0, 10.0)
        self.max_components = check_positive_int("max_components", max_components)
        self.fit_every = check_positive_int("fit_every", fit_every)
        self.history = check_positive_int("history", history, 2)
        self.signal, self.episode = GroupScores.validate(signal, episode)

    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        super().start(pool, total_steps, seed)
        self.params = group_parameters(pool)
        # standardise each parameter dimension so no unit dominates the mixture
        scale = self.params.std(0)
        self._x = (self.params - self.params.mean(0)) / np.where(scale > 0, scale, 1.0)
        self._scores = GroupScores(pool.num_groups, self.episode, self.signal)
        self.last_score = [math.nan] * pool.num_groups
        self.fast_avg = [math.nan] * pool.num_groups
        self.slow_avg = [math.nan] * pool.num_groups
        self.noise_var = [math.nan] * pool.num_groups
        self.points: list[tuple[int, float]] = []  # (group, alp)
        self.new_since_fit = 0
        self.fits = 0
        present = (pool.group_sizes() > 0).double()
        self.gmm_probs = present / present.sum()  # a tensor: checkpoints hold no numpy arrays
        self.probs = self._mix()

    def _mix(self) -> Tensor:
        present = (self.pool.group_sizes() > 0).double()  # type: ignore[union-attr]
        g = torch.as_tensor(self.gmm_probs, dtype=torch.float64) * present
        g = g / g.sum() if float(g.sum()) > 0 else present / present.sum()
        return self.eps * present / present.sum() + (1.0 - self.eps) * g

    def fit(self) -> None:
        """Fit the mixture on the recent (parameters, ALP) points and refresh the group distribution."""
        from sklearn.mixture import GaussianMixture

        groups = np.array([g for g, _ in self.points])
        alp = np.array([a for _, a in self.points])
        data = np.concatenate([self._x[groups], alp[:, None]], 1)
        best, best_aic = None, math.inf
        distinct = len(np.unique(np.round(data, 12), axis=0))
        for k in range(1, min(self.max_components, len(data) // 2, distinct) + 1):
            gmm = GaussianMixture(k, covariance_type="diag", reg_covar=1e-4,
                                  random_state=(self.seed * 7919 + self.fits) % (2 ** 31))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # sklearn warns when fewer distinct clusters than k exist
                gmm.fit(data)
            aic = gmm.aic(data)
            if aic < best_aic:
                best, best_aic = gmm, aic
        self.fits += 1
        if best is None:
            return
        comp_alp = np.clip(best.means_[:, -1], 0.0, None)
        if comp_alp.sum() <= 0:
            return
        probs = component_group_probs(self._x, best.means_[:, :-1], best.covariances_[:, :-1], comp_alp / comp_alp.sum())
        self.gmm_probs = torch.as_tensor(probs, dtype=torch.float64)
        self.comp_alp = torch.as_tensor(comp_alp, dtype=torch.float64)

    def progress(self, g: int, score: float) -> float | None:
        """Record a score of group ``g``; return its noise-corrected ALP (None on its first score)."""
        prev = self.last_score[g]
        self.last_score[g] = score
        if math.isnan(prev):
            self.fast_avg[g] = self.slow_avg[g] = score
            return None
        half_sq = 0.5 * (score - prev) ** 2
        v = self.noise_var[g]
        self.noise_var[g] = v = half_sq if math.isnan(v) else v + self.slow * (half_sq - v)
        update_averages(self.fast_avg, self.slow_avg, g, score, self.fast, self.slow)
        spread = fast_slow_spread(self.fast, self.slow)
        return max(0.0, abs(self.fast_avg[g] - self.slow_avg[g]) - self.noise_z * math.sqrt(max(0.0, v * spread)))

    def update(self, feedback: Feedback) -> None:
        for g, score in self._scores.observe(feedback):
            alp = self.progress(g, score)
            if alp is not None:
                self.points.append((g, alp))
                del self.points[:-self.history]
                self.new_since_fit += 1
        if self.new_since_fit >= self.fit_every and len(self.points) >= 4:
            self.new_since_fit = 0
            self.fit()
            self.probs = self._mix()

    def log(self) -> dict[str, float]:
        out = super().log()
        if self.points:
            names = group_names(self.pool)  # type: ignore[arg-type]
            recent: dict[int, list[float]] = {}
            for g, a in self.points[-self.history:]:
                recent.setdefault(g, []).append(a)
            out.update({f"alp/{names[g]}": float(np.mean(v)) for g, v in sorted(recent.items())})
        return out
