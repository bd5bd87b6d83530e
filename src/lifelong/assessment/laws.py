"""Fitted laws of continual pre-training: what a general-data mixture and a learning-rate
schedule will cost, predicted from a few small runs (fits with ``scipy.optimize``).

Two laws, each a small dataclass with ``predict`` and a ``fit_*`` function:

**Mixture law** (after "CMR Scaling Law: Predicting Critical Mixture Ratios for
Continual Pre-training of Language Models", Gu et al. 2024). The paper finds
power laws linking loss, mixture ratio and training tokens and defines the
critical mixture ratio (CMR): the largest share of domain data whose general
loss stays within a tolerance of the original. The abstract does not give the
functional form; the form fitted here is ours, chosen to be a power law in
both variables with a closed-form CMR. With ``r`` the share of *general*
data in each batch (the replay ratio of ``lifelong``'s general-data mixture;
the domain share is ``1 - r``) and ``D`` the tokens trained on::

    general loss  L_g(r, D) = E + A * (1 - r)^a * D^b          (A, a > 0; b free)
    domain loss   L_d(r, D) = E + B * ((1 - r) * D)^(-c)       (B, c > 0)

The general-loss *increase* over the floor E is a product of powers of the
domain share and the tokens (the forgetting grows with both and vanishes at
``r = 1``); the domain loss follows the usual data scaling law in the domain
tokens actually seen, ``(1 - r) * D``. Both are linear in log space, so
small grids determine them, and the constraint ``L_g(r, D) <= L_g0 + eps``
solves to ``r* = 1 - ((L_g0 + eps - E) / (A D^b))^(1/a)``:
:func:`critical_mixture_ratio` returns that smallest general share (the CMR
in the paper's terms is the domain share ``1 - r*``).

**CPT loss-curve law** (after "Learning Dynamics in Continual Pre-Training for
Large Language Models", Wang et al. 2025, which builds on the annealing
scaling law of Tissue et al. 2024). The CPT curve is a transition from the
pre-training curve to a hidden domain curve, decoupled into a learning-rate
annealing part and a distribution-shift part. We follow::

    L(t) = L0 + A * (S1_pt + S1(t))^(-alpha) - C * S2(t) + B * (1 - (1 + E * S1(t))^(-beta))

with ``S1(t) = sum_{i<=t} lr_i`` the forward area of the CPT schedule so far,
``S2(t) = sum_{i<=t} m_i``, ``m_i = decay * m_{i-1} + (lr_{i-1} - lr_i)`` the
annealing area (momentum ``decay``, 0.999 in the annealing law; the first
step has no predecessor, so ``lr_0 = lr_1``), and ``S1_pt`` the forward area
the model already had (fitted unless given). The last term is the
distribution shift: zero at the switch, saturating as the model moves to the
new distribution; ``B`` is signed (positive for the general loss, which rises,
negative for the domain loss, which falls). Where the paper's fuller form
carries pre-training annealing or extra terms, we drop them: ``L0`` absorbs
constants. :func:`fit_cpt_law` fits one parameter set to one or several curves
(different schedules of the same model and data), optionally on their early
steps only, and :meth:`CPTLaw.predict` gives the loss at every step of any
schedule -- the later steps of a run, or a schedule not yet run.

Fits minimise relative residuals with ``scipy.optimize.least_squares``
(positive parameters in log space, several starts, the best kept).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import asdict, dataclass
from typing import Sequence

import numpy as np

from lifelong.errors import DataError

# ----------------------------------------------------------------------------- helpers


def _array(name: str, values, positive: bool = False) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{name} must be a sequence of numbers; got {values!r}.") from None
    if not np.all(np.isfinite(a)):
        raise DataError(f"{name} must be finite numbers; got {_short(a)}.")
    if positive and np.any(a <= 0):
        raise DataError(f"{name} must be > 0; got {_short(a)}.")
    return a


def _short(a: np.ndarray) -> str:
    return str(a.tolist()) if len(a) <= 8 else f"[{', '.join(f'{v:g}' for v in a[:8])}, ...] ({len(a)} values)"


def _best_fit(residuals, starts: Sequence[np.ndarray], lower: np.ndarray, upper: np.ndarray,
              jac=None, keep: int = 3) -> np.ndarray:
    """The least-squares optimum over several starts: a short run from each start, then the
    ``keep`` best refined to convergence."""
    from scipy.optimize import least_squares

    def solve(x0, budget):
        x0 = np.clip(np.asarray(x0, dtype=float), lower + 1e-9, upper - 1e-9)
        with np.errstate(all="ignore"):
            try:
                res = least_squares(residuals, x0, jac=jac if jac is not None else "2-point", bounds=(lower, upper),
                                    method="trf", x_scale="jac", xtol=1e-12, ftol=1e-12, gtol=1e-12,
                                    max_nfev=budget)
            except ValueError:  # a start whose residuals are not finite
                return None
        return res if np.all(np.isfinite(res.fun)) else None

    rough = [r for r in (solve(x0, 60) for x0 in starts) if r is not None]
    rough.sort(key=lambda r: r.cost)
    fine = [r for r in (solve(r.x, 3000) for r in rough[:keep]) if r is not None]
    if not fine:
        raise DataError("the law could not be fitted to these points (every start failed); check that the "
                        "losses are positive and vary with the inputs.")
    return min(fine, key=lambda r: r.cost).x


def mean_relative_error(predicted, observed) -> float:
    """mean(|predicted - observed| / |observed|)."""
    p, o = np.asarray(predicted, float), np.asarray(observed, float)
    return float(np.mean(np.abs(p - o) / np.abs(o)))


# ----------------------------------------------------------------------------- mixture (CMR) law


@dataclass(frozen=True)
class GeneralLossLaw:
    """L_g(r, D) = E + A (1 - r)^a D^b (see the module docs); r = general share, D = tokens."""

    E: float
    A: float
    a: float
    b: float

    def predict(self, ratio, tokens) -> np.ndarray:
        r, d = np.asarray(ratio, float), np.asarray(tokens, float)
        return self.E + self.A * np.power(np.clip(1.0 - r, 0.0, None), self.a) * np.power(d, self.b)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class DomainLossLaw:
    """L_d(r, D) = E + B ((1 - r) D)^(-c) (see the module docs)."""

    E: float
    B: float
    c: float

    def predict(self, ratio, tokens) -> np.ndarray:
        seen = np.clip(1.0 - np.asarray(ratio, float), 1e-12, None) * np.asarray(tokens, float)
        return self.E + self.B * np.power(seen, -self.c)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _grid(ratio, tokens, loss) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r, d, y = _array("ratio", ratio), _array("tokens", tokens, positive=True), _array("loss", loss, positive=True)
    if not (len(r) == len(d) == len(y)):
        raise DataError(f"ratio, tokens and loss must have one value per run; got {len(r)}, {len(d)}, {len(y)}.")
    if np.any((r < 0) | (r > 1)):
        raise DataError(f"ratio must lie in [0, 1] (the share of general data); got {_short(r)}.")
    return r, d, y


def fit_general_loss(ratio, tokens, loss) -> GeneralLossLaw:
    """Fit L_g(r, D) = E + A (1 - r)^a D^b to runs at general shares ``ratio`` (< 1 for at least
    four distinct points), token counts ``tokens`` and final general losses ``loss``."""
    r, d, y = _grid(ratio, tokens, loss)
    keep = r < 1.0
    if keep.sum() < 4:
        raise DataError("fitting the general-loss law needs at least 4 runs with a domain share > 0 (ratio < 1).")
    lr, ld = np.log(1.0 - r), np.log(d)

    def residuals(x):
        E, log_a_coef, a, b = x
        pred = E + np.exp(log_a_coef + a * lr[keep] + b * ld[keep])
        return (pred - y[keep]) / y[keep]

    starts = []
    for frac in (0.0, 0.5, 0.8, 0.95, 0.99):
        E0 = frac * y.min()
        gap = np.log(np.clip(y[keep] - E0, 1e-9, None))
        X = np.column_stack([np.ones(keep.sum()), lr[keep], ld[keep]])
        coef, *_ = np.linalg.lstsq(X, gap, rcond=None)
        starts.append(np.array([E0, coef[0], max(coef[1], 1e-3), coef[2]]))
    lower = np.array([0.0, -50.0, 1e-6, -5.0])
    upper = np.array([y.min(), 50.0, 20.0, 5.0])
    E, log_a_coef, a, b = _best_fit(residuals, starts, lower, upper)
    return GeneralLossLaw(float(E), float(math.exp(log_a_coef)), float(a), float(b))


def fit_domain_loss(ratio, tokens, loss) -> DomainLossLaw:
    """Fit L_d(r, D) = E + B ((1 - r) D)^(-c) to runs (ratio < 1) and their final domain losses."""
    r, d, y = _grid(ratio, tokens, loss)
    keep = r < 1.0
    if keep.sum() < 3:
        raise DataError("fitting the domain-loss law needs at least 3 runs with a domain share > 0 (ratio < 1).")
    ls = np.log((1.0 - r[keep]) * d[keep])

    def residuals(x):
        E, log_b, c = x
        return (E + np.exp(log_b - c * ls) - y[keep]) / y[keep]

    starts = []
    for frac in (0.0, 0.5, 0.8, 0.95, 0.99):
        E0 = frac * y.min()
        coef, *_ = np.linalg.lstsq(np.column_stack([np.ones(len(ls)), -ls]),
                                   np.log(np.clip(y[keep] - E0, 1e-9, None)), rcond=None)
        starts.append(np.array([E0, coef[0], max(coef[1], 1e-3)]))
    E, log_b, c = _best_fit(residuals, starts, np.array([0.0, -50.0, 1e-6]), np.array([y.min(), 50.0, 10.0]))
    return DomainLossLaw(float(E), float(math.exp(log_b)), float(c))


def critical_mixture_ratio(law: GeneralLossLaw, base_loss: float, tolerance: float, tokens: float) -> float:
    """The smallest general share r in [0, 1] whose predicted general loss after ``tokens``
    stays within ``base_loss + tolerance`` (``base_loss``: the general loss before continual
    pre-training). 0 when even pure domain data stays within it; 1 when only general data
    does (the law's floor E is above the allowed loss). The paper's critical mixture ratio,
    the largest domain share, is ``1 - r``."""
    if not (math.isfinite(base_loss) and math.isfinite(tolerance) and tolerance >= 0 and tokens > 0):
        raise DataError(f"critical_mixture_ratio needs a finite base_loss, tolerance >= 0 and tokens > 0; got "
                        f"{base_loss}, {tolerance}, {tokens}.")
    room = base_loss + tolerance - law.E
    if room <= 0:
        return 1.0
    share = (room / (law.A * tokens ** law.b)) ** (1.0 / law.a)  # the largest domain share allowed
    return float(min(1.0, max(0.0, 1.0 - share)))


# ----------------------------------------------------------------------------- CPT loss-curve law


def lr_areas(lrs, decay: float = 0.999) -> tuple[np.ndarray, np.ndarray]:
    """Per step t (1-based, the loss after step t): the forward area S1(t) = sum_{i<=t} lr_i and the
    annealing area S2(t) = sum_{i<=t} m_i, m_i = decay * m_{i-1} + (lr_{i-1} - lr_i), lr_0 = lr_1."""
    eta = _array("lrs", lrs)
    if len(eta) == 0 or np.any(eta < 0):
        raise DataError("lrs must be a non-empty schedule of learning rates >= 0.")
    if not 0.0 <= decay < 1.0:
        raise DataError(f"decay must be in [0, 1); got {decay}.")
    s1 = np.cumsum(eta)
    drops = np.diff(eta, prepend=eta[0]) * -1.0
    m = np.empty_like(eta)
    acc = 0.0
    for i, d in enumerate(drops):
        acc = decay * acc + d
        m[i] = acc
    return s1, np.cumsum(m)


@dataclass(frozen=True)
class CPTLaw:
    """L(t) = L0 + A (S1_pt + S1)^(-alpha) - C S2 + B (1 - (1 + E S1)^(-beta)) (see the module docs)."""

    L0: float
    A: float
    alpha: float
    C: float
    B: float
    E: float
    beta: float
    s1_pt: float
    decay: float = 0.999

    def predict(self, lrs, steps=None) -> np.ndarray:
        """The loss after each step of schedule ``lrs`` (or after the 1-based ``steps`` given)."""
        s1, s2 = lr_areas(lrs, self.decay)
        if steps is not None:
            idx = np.asarray(steps, int) - 1
            s1, s2 = s1[idx], s2[idx]
        return _cpt(np.array([self.L0, self.A, self.alpha, self.C, self.B, self.E, self.beta, self.s1_pt]), s1, s2)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _cpt(x: np.ndarray, s1: np.ndarray, s2: np.ndarray) -> np.ndarray:
    L0, A, alpha, C, B, E, beta, s1_pt = x
    return L0 + A * np.power(s1_pt + s1, -alpha) - C * s2 + B * (1.0 - np.power(1.0 + E * s1, -beta))


Curve = tuple  # (lrs: the whole schedule, steps: 1-based steps with a measured loss, losses)


def fit_cpt_law(curves: Sequence[Curve], fit_until: float | int | None = None, decay: float = 0.999,
                s1_pt: float | None = None) -> CPTLaw:
    """Fit one :class:`CPTLaw` to loss curves of continual pre-training runs.

    ``curves``: ``(lrs, steps, losses)`` per run: the run's whole learning-rate
    schedule (one rate per step), the 1-based steps at which a loss was
    measured, and those losses. ``fit_until`` uses only the early points: a
    fraction in (0, 1) of each schedule's steps, or a step count; the rest is
    left for prediction. ``s1_pt``: the forward area of the model's earlier
    training, if known (else fitted). Several runs with different schedules
    pin the annealing coefficient C far better than one.
    """
    prepared = []
    for k, curve in enumerate(curves):
        if len(curve) != 3:
            raise DataError(f"curve {k} must be (lrs, steps, losses); got {len(curve)} items.")
        lrs, steps, losses = curve
        s1, s2 = lr_areas(lrs, decay)
        st = _array(f"curve {k} steps", steps).astype(int)
        y = _array(f"curve {k} losses", losses, positive=True)
        if len(st) != len(y) or np.any(st < 1) or np.any(st > len(s1)):
            raise DataError(f"curve {k}: steps must be 1-based steps of its schedule (1..{len(s1)}), one per loss.")
        if fit_until is not None:
            limit = fit_until * len(s1) if isinstance(fit_until, float) and fit_until < 1 else fit_until
            mask = st <= limit
            st, y = st[mask], y[mask]
        prepared.append((s1[st - 1], s2[st - 1], y))
    s1_all = np.concatenate([p[0] for p in prepared]) if prepared else np.array([])
    s2_all = np.concatenate([p[1] for p in prepared]) if prepared else np.array([])
    y_all = np.concatenate([p[2] for p in prepared]) if prepared else np.array([])
    if len(y_all) < 8:
        raise DataError(f"fitting the CPT law needs at least 8 measured losses in the fitted range; got {len(y_all)}.")
    fixed_pt = s1_pt is not None
    if fixed_pt and not (math.isfinite(s1_pt) and s1_pt >= 0):
        raise DataError(f"s1_pt must be a number >= 0; got {s1_pt}.")

    def unpack(z):
        L0, log_a, alpha, C, B, log_e, beta = z[:7]
        pt = s1_pt if fixed_pt else math.exp(z[7])
        return np.array([L0, math.exp(log_a), alpha, C, B, math.exp(log_e), beta, pt])

    def residuals(z):
        return (_cpt(unpack(z), s1_all, s2_all) - y_all) / y_all

    def jacobian(z):
        L0, A, alpha, C, B, E, beta, pt = unpack(z)
        u, v = pt + s1_all, 1.0 + E * s1_all
        power_u, power_v = A * np.power(u, -alpha), np.power(v, -beta)
        cols = [np.ones_like(u), power_u, -power_u * np.log(u), -s2_all, 1.0 - power_v,
                B * beta * power_v / v * s1_all * E, B * power_v * np.log(v)]
        if not fixed_pt:
            cols.append(-alpha * power_u / u * pt)
        return np.column_stack(cols) / y_all[:, None]

    span = float(s1_all.max())
    y_min, y_rng = float(y_all.min()), float(y_all.max() - y_all.min()) or 1.0
    starts = []
    for alpha0, log_e0, b_sign, pt_frac in itertools.product((0.3, 1.0), (math.log(10 / span), math.log(1 / span)),
                                                              (1.0, -1.0), (0.1, 1.0)):
        z = [y_min - y_rng, math.log(y_rng * (pt_frac * span) ** alpha0 + 1e-12), alpha0, 0.0, b_sign * y_rng,
             log_e0, 1.0]
        if not fixed_pt:
            z.append(math.log(pt_frac * span))
        starts.append(np.array(z))
    big = 10.0 * (abs(y_min) + y_rng) + 10.0
    lower = [-big, -60.0, 1e-4, -big * 100, -big, -40.0, 1e-3]
    upper = [big, 60.0, 5.0, big * 100, big, 40.0, 10.0]
    if not fixed_pt:
        lower.append(math.log(span * 1e-6))
        upper.append(math.log(span * 1e6))
    z = _best_fit(residuals, starts, np.array(lower), np.array(upper), jac=jacobian)
    x = unpack(z)
    return CPTLaw(*(float(v) for v in x), decay=float(decay))
