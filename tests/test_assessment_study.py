"""Continual pre-training studies from schedule logs (lifelong.assessment.study): synthetic runs whose
losses follow laws with known parameters are recovered to a stated tolerance; too little data is a
DataError that says what to log."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("scipy")
pytest.importorskip("transformers")

from lifelong.assessment.laws import CPTLaw, DomainLossLaw, GeneralLossLaw  # noqa: E402
from lifelong.assessment.study import (RunCurves, checkerboard, critical_ratios, fit_cpt, fit_mixture,  # noqa: E402
                                       lr_from_config, phase_curves, run_curves, study)
from lifelong.errors import DataError  # noqa: E402

GENERAL = CPTLaw(L0=1.5, A=0.3, alpha=0.5, C=5.0, B=0.6, E=50.0, beta=0.8, s1_pt=0.3)
DOMAIN = CPTLaw(L0=1.0, A=0.2, alpha=0.6, C=4.0, B=-0.8, E=80.0, beta=0.7, s1_pt=0.2)
TRAIN = {"steps": 200, "lr": 3e-4, "warmup_ratio": 0.1, "lr_scheduler": "cosine"}


def synthetic_log(scope: str, phases=(200, 200), eval_every=5, ratio=0.1, tokens_per_step=100.0):
    """A schedule log as a run with a general mixture writes it, with losses from the known laws."""
    train = {**TRAIN, "lr_scheduler_scope": scope}
    lrs = lr_from_config(train, phases)
    g, d = GENERAL.predict(lrs), DOMAIN.predict(lrs)
    log = [{"step": 0, "task": 0, "general/val_loss": 1.9, "domain/0/val_loss": 3.1, "domain/1/val_loss": 2.9}]
    bounds = np.cumsum(phases)
    for s in range(1, len(lrs) + 1):
        task = int(np.searchsorted(bounds, s))
        log.append({"step": s, "task": task, "lr": float(lrs[s] if s < len(lrs) else lrs[-1]),
                    "general/tokens": ratio * tokens_per_step * s,
                    "general/task_tokens": (1 - ratio) * tokens_per_step * s})
        if s % eval_every == 0 or s in bounds:
            # the two domains straddle their mean, which is the law's domain curve
            log.append({"step": s, "task": task, "general/val_loss": float(g[s - 1]),
                        "domain/0/val_loss": float(d[s - 1]) + 0.1, "domain/1/val_loss": float(d[s - 1]) - 0.1})
    config = {"train": train, "seed": 0, "benchmark": {"params": {"general": {"ratio": ratio}}}}
    return log, config, list(phases), lrs


def test_run_curves_read_steps_tokens_losses_lr_and_the_step0_baseline():
    log, config, phases, lrs = synthetic_log("task")
    c = run_curves(log, config, phases, label="a")
    assert c.ratio == 0.1 and c.schedule == "cosine/task" and c.lr_source == "scheduler"
    assert c.steps[0] == 5 and c.steps[-1] == 400 and len(c.steps) == 80
    assert c.tokens[:2].tolist() == pytest.approx([500.0, 1000.0])
    assert c.base_general == 1.9 and c.base_domain == pytest.approx(3.0)
    assert c.domain == pytest.approx(DOMAIN.predict(lrs, c.steps))
    # re-warmed per task: the second phase starts from zero again (10% warm-up), one decay per phase
    assert c.lrs[0] == 0.0 and c.lrs[200] == 0.0 and c.lrs[20] == pytest.approx(3e-4)
    # without the config, the logged lr rows give the same schedule away from the phase switch
    back = run_curves(log, None, phases)
    assert back.lr_source == "logged"
    assert back.lrs[1:199] == pytest.approx(c.lrs[1:199], rel=1e-6)


def test_cpt_law_on_the_first_30_percent_of_two_schedules_predicts_final_losses_within_one_percent():
    """Curves from known CPT laws under a re-warmed and a stream-wide cosine: one fit per curve kind on
    the first 30% of the steps predicts both runs' final general and domain losses within 1%."""
    runs = [run_curves(*synthetic_log(scope)[:3], label=scope) for scope in ("task", "stream")]
    for which, truth in (("general", GENERAL), ("domain", DOMAIN)):
        fit = fit_cpt(runs, which, fit_until=0.3)
        assert sorted(fit.final_errors) == ["stream", "task"]
        assert fit.final_error < 0.01, which
        assert fit.error < 0.01, which
        for r in runs:
            assert fit.predicted[r.label][-1] == pytest.approx(float(truth.predict(r.lrs)[-1]), rel=0.01)


def test_too_few_early_points_is_a_data_error_naming_eval_every():
    runs = [run_curves(*synthetic_log("task", eval_every=50)[:3])]
    with pytest.raises(DataError, match="eval_every"):
        fit_cpt(runs, "general", fit_until=0.3)
    out = study(runs)
    assert out.cpt == {} or all(not f for f in out.cpt.values())
    assert any("CPT law" in s and "eval_every" in s for s in out.skipped)
    assert any("mixture law" in s and "2 or more general ratios" in s for s in out.skipped)


def test_a_log_without_general_validation_is_a_data_error():
    with pytest.raises(DataError, match="general corpus"):
        run_curves([{"step": 1, "task": 0, "loss": 2.0}], label="plain")


def mixture_runs(truth_g: GeneralLossLaw, truth_d: DomainLossLaw, ratios, schedules=("a", "b")):
    runs = []
    for sched in schedules:
        for r in ratios:
            steps = np.arange(1, 11) * 10
            tokens = steps * 1e5
            runs.append(RunCurves(label=f"{r}-{sched}", ratio=r, schedule=sched, steps=steps, tokens=tokens,
                                  general=truth_g.predict(r, tokens), domain=truth_d.predict(r, tokens),
                                  lrs=np.full(100, 1e-3), lr_source="constant", base_general=2.05))
    return runs


def test_mixture_law_on_half_the_grid_predicts_the_rest_and_gives_the_critical_ratio():
    """Exact points of known mixture laws at 5 ratios x 2 schedules: the checkerboard half recovers the
    general law's parameters within 1% and predicts the held-out final losses within 1%; the critical
    ratio solves the law at the tolerance."""
    tg, td = GeneralLossLaw(E=2.0, A=0.002, a=1.5, b=0.4), DomainLossLaw(E=1.2, B=40.0, c=0.3)
    runs = mixture_runs(tg, td, [0.0, 0.05, 0.1, 0.25, 0.5])
    side = checkerboard(runs)
    assert sum(side) == 5 and {r.ratio for r, k in zip(runs, side) if k} == {0.0, 0.05, 0.1, 0.25, 0.5}
    fit = fit_mixture(runs, side)
    assert fit.held_out and sum(row[7] for row in fit.rows) == 5
    for k, v in tg.to_dict().items():
        assert getattr(fit.general, k) == pytest.approx(v, rel=0.01), k
    assert fit.general_error < 0.01 and fit.domain_error < 0.01
    out = study(runs, tolerances=(0.1, 0.5))
    assert out.base_general == 2.05 and out.tokens == pytest.approx(1e7)
    (t1, r1), (t2, r2) = out.cmr
    assert (t1, t2) == (0.1, 0.5) and 0 <= r2 < r1 < 1
    assert float(tg.predict(r1, 1e7)) == pytest.approx(2.05 + 0.1, rel=1e-3)
    assert critical_ratios(tg, 2.05, [0.1], 1e7)[0][1] == pytest.approx(r1, abs=1e-3)


def test_mixture_law_needs_two_ratios_and_token_counts():
    tg, td = GeneralLossLaw(E=2.0, A=0.002, a=1.5, b=0.4), DomainLossLaw(E=1.2, B=40.0, c=0.3)
    with pytest.raises(DataError, match="2 or more general ratios"):
        fit_mixture(mixture_runs(tg, td, [0.1]))
    runs = mixture_runs(tg, td, [0.0, 0.5])
    runs[0].tokens = np.full(len(runs[0].steps), np.nan)
    with pytest.raises(DataError, match="general/tokens"):
        fit_mixture(runs)


def test_phase_curves_cut_a_run_into_single_shift_curves_of_the_domain_being_learned():
    log, config, phases, lrs = synthetic_log("stream", phases=(100, 100))
    run = run_curves(log, config, phases, label="a")
    first, second = curves = phase_curves(run)
    assert [c.label for c in curves] == ["a#0", "a#1"]
    assert first.steps[0] == 5 and first.steps[-1] == 100 and second.steps[0] == 5 and second.steps[-1] == 100
    assert second.lrs == pytest.approx(lrs[100:200])
    # the phase's domain is the loss of the domain learned in it (here domain/1 = law - 0.1)
    assert second.domain == pytest.approx(DOMAIN.predict(lrs, np.arange(105, 201, 5)) - 0.1)
    assert first.domain == pytest.approx(DOMAIN.predict(lrs, np.arange(5, 101, 5)) + 0.1)
