"""Continual pre-training studies: the laws of :mod:`lifelong.assessment.laws` fitted to real runs.

One analysis serves the HTML report (:mod:`lifelong.runs.report`) and
``benchmarks/continual_pretraining.py``, so the two can never disagree:

1. :func:`run_curves` turns a run's schedule log (the rows a run with a
   general mixture writes: ``general/val_loss`` and ``domain/<j>/val_loss`` at
   step 0 and every evaluation, ``general/tokens`` / ``general/task_tokens``
   and ``lr`` every log step) and its config into :class:`RunCurves`: the
   validation steps, the training tokens seen by then, the general loss and
   the mean domain loss (over every domain of the stream), the per-step
   learning rate (rebuilt from ``train`` by the engine's own
   :func:`~lifelong.engine.optim.make_lr_scheduler`; else interpolated from the
   logged ``lr`` rows; else the constant ``train.lr``) and the step-0
   (pre-trained) losses.
2. :func:`fit_cpt` fits the CPT loss-curve law on the first ``fit_until``
   (default 30%) of each run's steps and predicts the rest, separately for the
   general and the domain curve. Runs with the same general ratio share one
   fit (different schedules and seeds pin the annealing term better); the law
   has no ratio in it, so runs of different ratios are fitted apart
   (:func:`cpt_study`). :func:`phase_study` fits the same law to each phase
   alone (one distribution shift, the paper's setting: the general loss and
   the loss of the domain being learned), on the first ``fit_until`` of the
   phase, predicting the phase's end.
3. :func:`fit_mixture` fits the mixture law (general and domain) on every
   validation point of some runs (``fit_on``; e.g. :func:`checkerboard`, half
   the grid) and predicts the final losses of the others (or of all, in
   sample, when nothing is held out).
4. :func:`critical_ratios`: the smallest general share keeping the general
   loss within ``tolerance`` nats of the pre-trained model's (the step-0 row),
   after the runs' mean token budget, from the mixture law fitted on all runs.

Too little to fit raises :class:`~lifelong.errors.DataError` naming what is
missing and how to log it; :func:`study` runs every part and keeps the
reason of each part it had to skip in :attr:`Study.skipped`, so a report says
why instead of failing.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

import numpy as np

from lifelong.assessment.laws import (CPTLaw, DomainLossLaw, GeneralLossLaw, critical_mixture_ratio,
                                      fit_cpt_law, fit_domain_loss, fit_general_loss, mean_relative_error)
from lifelong.errors import DataError
from lifelong.runs.compare import config_value

_DOMAIN = re.compile(r"^domain/(\d+)/val_loss$")
#: default tolerated general-loss increases (nats over the pre-trained model's) for the critical mixture ratio
TOLERANCES = (0.1, 0.5)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return v if math.isfinite(v) else None


# ----------------------------------------------------------------------------- curves of one run


@dataclass
class RunCurves:
    """The curves of one continual pre-training run (see the module docs)."""

    label: str
    #: general share of each batch's tokens (None when the config does not say)
    ratio: float | None
    #: the learning-rate schedule's name, e.g. ``cosine/task`` (``train.lr_scheduler`` / ``lr_scheduler_scope``)
    schedule: str
    #: global steps (>= 1) of the validation rows, ascending, one row per step
    steps: np.ndarray
    #: training tokens (general + task) seen by each of those steps (NaN when the log has no token counts)
    tokens: np.ndarray
    general: np.ndarray
    #: mean over the stream's domains of ``domain/<j>/val_loss``
    domain: np.ndarray
    #: the learning rate of every step 1..total (``lrs[i]``: step i + 1)
    lrs: np.ndarray
    #: where ``lrs`` came from: ``scheduler`` (rebuilt from the config), ``logged`` or ``constant``
    lr_source: str
    #: the step-0 losses (before continual training), when logged
    base_general: float | None = None
    base_domain: float | None = None
    seed: Any = None
    #: per domain j: ``domain/<j>/val_loss`` at each validation step
    domains: dict[int, np.ndarray] = field(default_factory=dict)
    #: optimiser steps of each phase (task), in order
    phase_steps: list[int] = field(default_factory=list)

    @property
    def total_steps(self) -> int:
        return len(self.lrs)

    @property
    def final_general(self) -> float:
        return float(self.general[-1])

    @property
    def final_domain(self) -> float:
        return float(self.domain[-1])

    @property
    def final_tokens(self) -> float:
        return float(self.tokens[-1])


def lr_from_config(train: dict[str, Any], phase_steps: Sequence[int]) -> np.ndarray:
    """The learning rate of every optimiser step of a run with ``train`` settings (a config's ``train``
    section or :class:`~lifelong.engine.config.TrainConfig` fields) and ``phase_steps`` steps per phase,
    rebuilt with the engine's own scheduler (per phase at ``lr_scheduler_scope: task``, one over the
    stream at ``stream``)."""
    import torch

    from lifelong.engine.config import TrainConfig
    from lifelong.engine.optim import make_lr_scheduler

    names = {f.name for f in dataclasses.fields(TrainConfig)}
    cfg = TrainConfig(**{k: v for k, v in train.items() if k in names})
    steps = [int(s) for s in phase_steps]
    total = sum(steps)
    if total <= 0:
        raise DataError("the run took no optimiser steps, so it has no learning-rate schedule to rebuild.")
    if not cfg.uses_lr_scheduler:
        return np.full(total, float(cfg.lr))
    out: list[float] = []

    def follow(n: int, horizon: int, done: int) -> None:
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=cfg.lr)
        sched = make_lr_scheduler(opt, cfg, horizon, done)
        for _ in range(n):
            out.append(float(opt.param_groups[0]["lr"]))
            opt.step()  # no gradient: nothing moves, but the scheduler sees the step order it expects
            sched.step()

    if cfg.lr_scheduler_scope == "stream":
        done = 0
        for n in steps:
            follow(n, total, done)
            done += n
    else:
        for n in steps:
            follow(n, n, 0)
    return np.asarray(out, float)


def _lr_from_log(log: Sequence[dict[str, Any]], total: int) -> np.ndarray | None:
    """The rate of steps 1..total from logged ``lr`` rows (a row at step s holds the rate of step s + 1,
    logged after the scheduler stepped), linearly interpolated between logged steps."""
    pts = sorted({int(r["step"]) + 1: v for r in log if (v := _num(r.get("lr"))) is not None}.items())
    if not pts:
        return None
    x, y = np.array([p[0] for p in pts], float), np.array([p[1] for p in pts], float)
    return np.interp(np.arange(1, total + 1, dtype=float), x, y)


def run_curves(schedule_log: Sequence[dict[str, Any]], config: dict[str, Any] | None = None,
               task_steps: Sequence[int] | None = None, label: str = "run",
               ratio: float | None = None) -> RunCurves:
    """The :class:`RunCurves` of a run from its ``schedule_log`` rows, resolved ``config`` (for the
    general ratio, ``benchmark.params.general.ratio``, and the ``train`` schedule) and ``task_steps``
    (optimiser steps per phase; else the last logged step)."""
    val: dict[int, dict[str, Any]] = {}
    for r in schedule_log:
        step = _num(r.get("step"))
        if step is not None and _num(r.get("general/val_loss")) is not None:
            val[int(step)] = r  # an evaluation and a task end at the same step: the later row
    if not val:
        raise DataError(f"run '{label}' logged no general/val_loss: a continual pre-training study needs a stream "
                        "with a general corpus (the text benchmark's general: {path: FILE, ratio: r}) and "
                        "validation rows (evaluation.eval_every > 0).")
    domains = sorted({int(m.group(1)) for r in val.values() for k in r if (m := _DOMAIN.match(str(k)))})
    if not domains:
        raise DataError(f"run '{label}' logged general/val_loss but no domain/<j>/val_loss; the study needs both.")

    def dom(r: dict[str, Any]) -> float:
        vals = [_num(r.get(f"domain/{j}/val_loss")) for j in domains]
        vals = [v for v in vals if v is not None]
        return float(np.mean(vals)) if vals else float("nan")

    base = val.pop(0, None)
    steps = np.array(sorted(val), int)
    if len(steps) == 0:
        raise DataError(f"run '{label}' has only its step-0 validation row; train it (and evaluate on the way).")
    general = np.array([float(val[s]["general/val_loss"]) for s in steps])
    domain = np.array([dom(val[s]) for s in steps])
    per_domain = {j: np.array([_num(val[s].get(f"domain/{j}/val_loss")) if _num(val[s].get(f"domain/{j}/val_loss"))
                               is not None else np.nan for s in steps]) for j in domains}
    if task_steps and sum(int(s) for s in task_steps) > 0:
        phase_steps = [int(s) for s in task_steps]
    else:
        phase_steps = [int(steps[-1])]
    total = max(sum(phase_steps), int(steps[-1]))
    if total != sum(phase_steps):
        phase_steps = [total]
    counts = sorted({int(r["step"]): g + t for r in schedule_log
                     if (g := _num(r.get("general/tokens"))) is not None
                     and (t := _num(r.get("general/task_tokens"))) is not None and _num(r.get("step")) is not None}
                    .items())
    if counts:
        x = np.array([0.0] + [c[0] for c in counts])
        y = np.array([0.0] + [c[1] for c in counts])
        tokens = np.interp(steps.astype(float), x, y)
    else:
        tokens = np.full(len(steps), np.nan)
    train = config_value(config, "train")
    lrs, source = None, "constant"
    if isinstance(train, dict):
        try:
            lrs, source = lr_from_config(train, phase_steps), "scheduler"
        except Exception:  # an old or foreign config: fall back on the log
            lrs = None
    if lrs is None:
        lrs = _lr_from_log(schedule_log, total)
        source = "logged"
    if lrs is None:
        lr = _num(config_value(config, "train.lr"))
        lrs, source = np.full(total, lr if lr is not None and lr > 0 else 1.0), "constant"
    if ratio is None:
        ratio = _num(config_value(config, "benchmark.params.general.ratio"))
    sched = config_value(config, "train.lr_scheduler") or "constant"
    scope = config_value(config, "train.lr_scheduler_scope") or "task"
    seed = config_value(config, "seed")
    if seed is None:
        seed = config_value(config, "train.seed")
    return RunCurves(label=label, ratio=ratio, schedule=f"{sched}/{scope}", steps=steps, tokens=tokens,
                     general=general, domain=domain, lrs=np.asarray(lrs, float), lr_source=source,
                     base_general=_num(base.get("general/val_loss")) if base else None,
                     base_domain=dom(base) if base else None, seed=seed, domains=per_domain,
                     phase_steps=phase_steps)


def curves_of_entry(entry: Any) -> RunCurves:
    """:func:`run_curves` of a loaded run (:class:`lifelong.runs.compare.RunEntry`)."""
    r = entry.result
    name = entry.path.name if getattr(entry, "path", None) is not None else entry.label
    return run_curves(r.schedule_log, entry.config, r.task_steps, label=name)


# ----------------------------------------------------------------------------- the CPT loss-curve law


@dataclass
class CPTFit:
    """The CPT law fitted to the early steps of some runs' general or domain curves, and its predictions."""

    which: str
    law: CPTLaw
    fit_until: float
    labels: list[str]
    #: per run: the predicted loss at each of its validation steps
    predicted: dict[str, np.ndarray]
    #: per run: |predicted - measured| / measured of the final loss
    final_errors: dict[str, float]
    #: mean relative error over the validation points after the fit boundary (all runs)
    error: float

    @property
    def final_error(self) -> float:
        return float(np.mean(list(self.final_errors.values())))


def fit_cpt(runs: Sequence[RunCurves], which: str = "general", fit_until: float = 0.3) -> CPTFit:
    """Fit one CPT law to the ``which`` (``general`` or ``domain``) curves of ``runs`` on the first
    ``fit_until`` of each run's steps; predict every validation point and the final loss."""
    if which not in ("general", "domain"):
        raise DataError(f"which must be 'general' or 'domain'; got {which!r}.")
    if not runs:
        raise DataError("fitting the CPT law needs at least one run.")
    if not 0.0 < fit_until < 1.0:
        raise DataError(f"fit_until must be a fraction of the steps in (0, 1); got {fit_until}.")
    curves = [(r.lrs, r.steps, getattr(r, which)) for r in runs]
    early = sum(int(np.sum(r.steps <= fit_until * r.total_steps)) for r in runs)
    if early < 8:
        every = max(1, int(fit_until * min(r.total_steps for r in runs) / 8))
        raise DataError(f"the CPT law fitted on the first {fit_until:.0%} of the steps has only {early} validation "
                        f"point(s) there ({', '.join(r.label for r in runs)}); it needs at least 8: evaluate more "
                        f"often (evaluation.eval_every: {every} or less), train longer, or add runs of other "
                        "schedules at this ratio.")
    law = fit_cpt_law(curves, fit_until=fit_until)
    predicted, finals, late_p, late_o = {}, {}, [], []
    for r in runs:
        p = law.predict(r.lrs, r.steps)
        y = getattr(r, which)
        predicted[r.label] = p
        finals[r.label] = float(abs(p[-1] - y[-1]) / abs(y[-1]))
        late = r.steps > fit_until * r.total_steps
        late_p.extend(p[late])
        late_o.extend(y[late])
    error = mean_relative_error(late_p, late_o) if late_p else float("nan")
    return CPTFit(which, law, fit_until, [r.label for r in runs], predicted, finals, error)


def phase_curves(run: RunCurves) -> list[RunCurves]:
    """One single-shift curve per phase of ``run``, the setting the CPT law describes: phase k's steps
    (counted from its start), its slice of the learning-rate schedule, the general loss and the loss of
    the domain learned in it (domain k) as its ``domain``; labels ``<run>#k``."""
    out = []
    start = 0
    for k, n in enumerate(run.phase_steps):
        inside = (run.steps > start) & (run.steps <= start + n)
        if k in run.domains and inside.any():
            out.append(RunCurves(label=f"{run.label}#{k}", ratio=run.ratio, schedule=run.schedule,
                                 steps=run.steps[inside] - start, tokens=run.tokens[inside],
                                 general=run.general[inside], domain=run.domains[k][inside],
                                 lrs=run.lrs[start:start + n], lr_source=run.lr_source, seed=run.seed,
                                 phase_steps=[n]))
        start += n
    return out


def phase_study(runs: Sequence[RunCurves], fit_until: float = 0.3
                ) -> tuple[dict[Any, dict[str, CPTFit]], list[str]]:
    """:func:`fit_cpt` per (general ratio, phase) on :func:`phase_curves`: each domain's own transition,
    fitted on the first ``fit_until`` of the phase and predicting its end. Keys ``(ratio, phase)``."""
    groups: dict[Any, list[RunCurves]] = {}
    for r in runs:
        for k, c in enumerate(phase_curves(r)):
            groups.setdefault((_group_key(r), k), []).append(c)
    return _fit_groups(groups, fit_until, lambda key: f"per phase, {{which}} loss, ratio {key[0]} phase {key[1]}")


def _fit_groups(groups: dict[Any, list[RunCurves]], fit_until: float, where: Any
                ) -> tuple[dict[Any, dict[str, CPTFit]], list[str]]:
    """:func:`fit_cpt` of the general and the domain curve of every group; the reasons of the fits that
    failed, each named by ``where(key)`` (a template with ``{which}``)."""
    fits: dict[Any, dict[str, CPTFit]] = {}
    skipped: list[str] = []
    for key, members in groups.items():
        for which in ("general", "domain"):
            try:
                fits.setdefault(key, {})[which] = fit_cpt(members, which, fit_until)
            except DataError as exc:
                skipped.append(f"CPT law {where(key).format(which=which)}: {exc}")
    return fits, skipped


def _group_key(r: RunCurves) -> float | None:
    return None if r.ratio is None else round(float(r.ratio), 9)


def cpt_study(runs: Sequence[RunCurves], fit_until: float = 0.3
              ) -> tuple[dict[Any, dict[str, CPTFit]], list[str]]:
    """:func:`fit_cpt` per general ratio (runs of one ratio share a fit), general and domain apart.
    Returns ``{ratio: {"general": fit, "domain": fit}}`` and the reasons of the fits that failed."""
    groups: dict[Any, list[RunCurves]] = {}
    for r in runs:
        groups.setdefault(_group_key(r), []).append(r)
    return _fit_groups(groups, fit_until, lambda key: f", {{which}} loss, ratio {key}")


# ----------------------------------------------------------------------------- the mixture law


@dataclass
class MixtureFit:
    """The mixture law fitted on some runs' validation points; predictions of every run's final losses."""

    general: GeneralLossLaw
    domain: DomainLossLaw
    #: per run: (label, ratio, tokens, general measured, predicted, domain measured, predicted, held out)
    rows: list[tuple[str, float, float, float, float, float, float, bool]]
    #: whether the errors are on held-out runs (else in sample)
    held_out: bool
    general_error: float
    domain_error: float


def _mixture_points(runs: Iterable[RunCurves]) -> tuple[np.ndarray, ...]:
    pts = [(r.ratio, d, g, m) for r in runs for d, g, m in zip(r.tokens, r.general, r.domain)
           if math.isfinite(d) and d > 0]
    if not pts:
        return tuple(np.array([]) for _ in range(4))
    return tuple(np.array(v, float) for v in zip(*pts))


def fit_mixture(runs: Sequence[RunCurves], fit_on: Sequence[bool] | None = None) -> MixtureFit:
    """Fit the general- and domain-loss mixture laws on every validation point of the runs with
    ``fit_on`` true (default: all) and predict each run's final losses; the errors are over the runs
    left out (in sample when none is)."""
    missing = [r.label for r in runs if r.ratio is None]
    if missing:
        raise DataError(f"the mixture law needs each run's general ratio; {', '.join(missing)} have none in their "
                        "config (benchmark.params.general.ratio).")
    no_tokens = [r.label for r in runs if not np.all(np.isfinite(r.tokens))]
    if no_tokens:
        raise DataError(f"the mixture law needs the tokens trained so far; {', '.join(no_tokens)} logged no "
                        "general/tokens rows (set train.log_every > 0).")
    chosen = [True] * len(runs) if fit_on is None else [bool(k) for k in fit_on]
    if len(chosen) != len(runs):
        raise DataError(f"fit_on must have one flag per run ({len(runs)}); got {len(chosen)}.")
    fit_runs = [r for r, k in zip(runs, chosen) if k]
    ratios = sorted({_group_key(r) for r in fit_runs})
    if len(ratios) < 2:
        raise DataError(f"the mixture law needs runs at 2 or more general ratios to fit on; got {ratios or 'none'}"
                        " (grid over benchmark.params.general.ratio).")
    r_, d_, g_, m_ = _mixture_points(fit_runs)
    g_law, d_law = fit_general_loss(r_, d_, g_), fit_domain_loss(r_, d_, m_)
    held_out = not all(chosen)
    rows = []
    for r, k in zip(runs, chosen):
        pg = float(g_law.predict(r.ratio, r.final_tokens))
        pd = float(d_law.predict(r.ratio, r.final_tokens))
        rows.append((r.label, float(r.ratio), r.final_tokens, r.final_general, pg, r.final_domain, pd, not k))
    scored = [row for row in rows if row[7]] if held_out else rows
    return MixtureFit(g_law, d_law, rows, held_out,
                      mean_relative_error([x[4] for x in scored], [x[3] for x in scored]),
                      mean_relative_error([x[6] for x in scored], [x[5] for x in scored]))


def checkerboard(runs: Sequence[RunCurves]) -> list[bool]:
    """Half the grid to fit on: a run is fitted on when (rank of its ratio + rank of its schedule) is
    even, so every ratio and every schedule appears on both sides (all seeds of a cell on one side)."""
    ratios = sorted({_group_key(r) for r in runs}, key=lambda v: (v is None, v or 0.0))
    scheds = sorted({r.schedule for r in runs})
    if len(scheds) == 1:  # one schedule: alternate ratios
        return [ratios.index(_group_key(r)) % 2 == 0 for r in runs]
    return [(ratios.index(_group_key(r)) + scheds.index(r.schedule)) % 2 == 0 for r in runs]


# ----------------------------------------------------------------------------- critical mixture ratio


def base_general_loss(runs: Sequence[RunCurves]) -> float:
    """The pre-trained model's general validation loss: the mean step-0 row over ``runs``."""
    vals = [r.base_general for r in runs if r.base_general is not None]
    if not vals:
        raise DataError("no run logged a step-0 general validation row (the model before continual training), "
                        "so the tolerated increase has no reference; rerun with this version of lifelong.")
    return float(np.mean(vals))


def critical_ratios(law: GeneralLossLaw, base_loss: float, tolerances: Sequence[float], tokens: float
                    ) -> list[tuple[float, float]]:
    """``(tolerance, r*)`` per tolerance: the smallest general share whose predicted general loss after
    ``tokens`` stays within ``base_loss + tolerance`` (:func:`~lifelong.assessment.laws.critical_mixture_ratio`)."""
    return [(float(t), critical_mixture_ratio(law, base_loss, float(t), tokens)) for t in tolerances]


# ----------------------------------------------------------------------------- everything


@dataclass
class Study:
    runs: list[RunCurves]
    cpt: dict[Any, dict[str, CPTFit]] = field(default_factory=dict)
    mixture: MixtureFit | None = None
    #: the mixture law fitted on every run (for the critical mixture ratio)
    mixture_all: MixtureFit | None = None
    base_general: float | None = None
    tokens: float | None = None
    #: (tolerance, smallest general share) pairs
    cmr: list[tuple[float, float]] = field(default_factory=list)
    #: why a part was not fitted
    skipped: list[str] = field(default_factory=list)

    def cpt_final_errors(self) -> list[float]:
        """Relative errors of the CPT law's predicted final losses: one per run and curve (general, domain)."""
        return [e for fits in self.cpt.values() for f in fits.values() for e in f.final_errors.values()]

    @property
    def cpt_prediction_error(self) -> float:
        errs = self.cpt_final_errors()
        return float(np.mean(errs)) if errs else float("nan")


def study(runs: Sequence[RunCurves], fit_until: float = 0.3, tolerances: Sequence[float] = TOLERANCES,
          holdout: str = "half") -> Study:
    """Every fit of the module over ``runs``; parts without enough data are skipped with their reason.
    ``holdout``: ``half`` fits the mixture law on :func:`checkerboard` half and scores the other half
    (``none``: fit on all, errors in sample)."""
    if holdout not in ("half", "none"):
        raise DataError(f"holdout must be 'half' or 'none'; got {holdout!r}.")
    out = Study(list(runs))
    out.cpt, out.skipped = cpt_study(runs, fit_until)
    try:
        out.mixture_all = fit_mixture(runs)
        out.mixture = out.mixture_all
        if holdout == "half":
            try:
                out.mixture = fit_mixture(runs, checkerboard(runs))
            except DataError as exc:
                out.skipped.append(f"mixture law on half the runs: {exc} The errors shown are in sample.")
    except DataError as exc:
        out.skipped.append(f"mixture law: {exc}")
    try:
        out.base_general = base_general_loss(runs)
    except DataError as exc:
        out.skipped.append(f"critical mixture ratio: {exc}")
    if out.mixture_all is not None and out.base_general is not None:
        out.tokens = float(np.mean([r.final_tokens for r in runs]))
        try:
            out.cmr = critical_ratios(out.mixture_all.general, out.base_general, tolerances, out.tokens)
        except DataError as exc:
            out.skipped.append(f"critical mixture ratio: {exc}")
    return out


__all__ = ["RunCurves", "run_curves", "curves_of_entry", "lr_from_config", "CPTFit", "fit_cpt", "cpt_study",
           "phase_curves", "phase_study", "MixtureFit", "fit_mixture", "checkerboard", "base_general_loss", "critical_ratios", "Study", "study",
           "TOLERANCES"]
