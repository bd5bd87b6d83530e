"""Vectorised runs (lifelong.vectorized): the same numbers as train_stream, run by run."""

import copy

import pytest
import torch

from lifelong.config import validate
from lifelong.engine.loop import train_stream
from lifelong.errors import ConfigError
from lifelong.experiment import build_experiment
from lifelong.vectorized import RunSpec, run_vectorized, train_stacked, train_vectorized, vectorizable
from lifelong.vectorized.trainer import capture_rng


def config(strategy="naive", seed=0, params=None, train=None, benchmark=None, **extra):
    d = {"benchmark": benchmark or {"name": "split-digits", "params": {"n_tasks": 5, "classes_per_task": 2}},
         "model": {"name": "mlp", "params": {"hidden": [32, 32]}},
         "train": {"steps": 8, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "log_every": 2, **(train or {})},
         "strategy": {"name": strategy, "params": params or {}}, "seed": seed, "device": "cpu", **extra}
    return validate(d)


def sequential(cfg):
    built = build_experiment(cfg)
    result = train_stream(built.stream, built.model, built.recipe, built.train)
    return result, built.model


def stacked(cfgs, checkpointers=None):
    specs = []
    for i, cfg in enumerate(cfgs):
        b = build_experiment(cfg)
        specs.append(RunSpec(b.stream, b.model, b.recipe, b.train, rng=capture_rng(),
                             checkpointer=checkpointers[i] if checkpointers else None))
    return train_stacked(specs), [s.model for s in specs]


def assert_same(a, b, model_a=None, model_b=None):
    assert len(a.accuracy) == len(b.accuracy)
    for ra, rb in zip(a.accuracy, b.accuracy):
        assert max(abs(x - y) for x, y in zip(ra, rb)) <= 1e-4
    assert a.task_steps == b.task_steps and a.row_tasks == b.row_tasks and a.schedule_log == b.schedule_log
    assert [(r["step"], r["task"]) for r in a.losses] == [(r["step"], r["task"]) for r in b.losses]
    assert all(abs(x["loss"] - y["loss"]) <= 1e-5 * max(1.0, abs(x["loss"])) for x, y in zip(a.losses, b.losses))
    assert a.baseline == pytest.approx(b.baseline, abs=1e-4)
    if model_a is not None:
        for (n, p), q in zip(model_a.named_parameters(), model_b.parameters()):
            assert torch.allclose(p, q, atol=1e-6, rtol=0), n


STRATEGIES = [("naive", {}), ("er", {"memory_size": 40}), ("ewc", {"lambda": 50.0, "samples": 16}), ("si", {"c": 0.5}),
              ("lwf", {"alpha": 0.7}), ("l2", {"lambda": 2.0}), ("online-ewc", {"samples": 16}),
              ("der++", {"memory_size": 40})]


@pytest.mark.parametrize("strategy,params", STRATEGIES)
def test_each_run_matches_train_stream(strategy, params):
    cfgs = [config(strategy, seed, params) for seed in (0, 1)]
    results, models = stacked(cfgs)
    for cfg, res, model in zip(cfgs, results, models):
        ref, ref_model = sequential(cfg)
        assert res.complete and any(res.accuracy[-1])
        assert_same(ref, res, ref_model, model)


def test_small_stacks_train_on_one_thread_and_restore_the_count(monkeypatch):
    from lifelong.vectorized import trainer

    cfgs = [config("naive", seed) for seed in (0, 1)]
    seen = []
    real = trainer._train_stacked
    monkeypatch.setattr(trainer, "_train_stacked",
                        lambda specs, device, threads: seen.append((threads, torch.get_num_threads())) or
                        real(specs, device, threads))
    before = torch.get_num_threads()
    results, _ = stacked(cfgs)
    assert seen == [(1, 1)] and torch.get_num_threads() == before  # MLP 64-32-32-10, batch 16: a small stack
    assert "on 1 torch thread(s)" in results[0].notes[0]
    specs = [RunSpec(*(lambda b: (b.stream, b.model, b.recipe, b.train))(build_experiment(c))) for c in cfgs]
    monkeypatch.setattr(trainer, "SMALL_STACK_MACS", 10)  # a big stack keeps the process's threads
    assert trainer.stack_threads(specs) == before


def test_runs_with_different_hyper_parameters_share_a_stack():
    cfgs = [config("ewc", 0, {"lambda": 10.0, "samples": 16}, train={"lr": 0.02, "momentum": 0.0}),
            config("ewc", 1, {"lambda": 100.0, "samples": 16}, train={"lr": 0.03, "weight_decay": 0.001})]
    groups, reasons = vectorizable(cfgs)
    assert groups == [[0, 1]] and reasons == {}
    for cfg, res in zip(cfgs, train_vectorized(cfgs)):
        assert_same(sequential(cfg)[0], res)


def test_a_diverging_run_stops_alone_with_the_sequential_error():
    from lifelong.errors import TrainingError

    bad = config("ewc", 1, {"lambda": 500.0, "samples": 16}, train={"lr": 0.1, "weight_decay": 0.01})
    good = config("ewc", 0, {"lambda": 10.0, "samples": 16})
    with pytest.raises(TrainingError) as seq_err:
        sequential(bad)
    with pytest.raises(TrainingError) as vec_err:
        train_vectorized([bad, good])
    assert str(vec_err.value) == str(seq_err.value)
    partial, complete = vec_err.value.results
    assert not partial.complete and complete.complete
    assert_same(seq_err.value.result, partial)
    assert_same(sequential(good)[0], complete)


@pytest.mark.parametrize("scenario,strategy", [("task", "er"), ("domain", "naive"), ("class", "cumulative"),
                                               ("domain", "lwf"), ("task", "si"), ("domain", "joint")])
def test_scenarios_and_pools(scenario, strategy):
    bench = {"name": "split-digits", "params": {"scenario": scenario}}
    cfgs = [config(strategy, seed, {"memory_size": 30} if strategy == "er" else {}, benchmark=bench,
                   train={"steps": 0, "epochs": 1, "batch_size": 64}) for seed in (3, 4)]
    for cfg, res in zip(cfgs, train_vectorized(cfgs)):
        assert_same(sequential(cfg)[0], res)


def test_unsupported_configs_are_listed_with_reasons():
    cfgs = [config("naive"), config("agem"), config("naive", train={"optimizer": "adam"}),
            config("naive", model={"name": "mlp", "params": {"dropout": 0.2}}),
            config("naive", train={"grad_clip": 1.0}), config("er", seed=1)]
    groups, reasons = vectorizable(cfgs)
    assert sorted(reasons) == [1, 2, 3, 4]
    assert "agem" in reasons[1] and "adam" in reasons[2] and "dropout" in reasons[3] and "grad_clip" in reasons[4]
    assert sorted(map(sorted, groups)) == [[0], [5]]
    with pytest.raises(ConfigError, match="cannot train vectorised"):
        train_vectorized(cfgs[:2])


def test_task_end_checkpoints_resume_exactly_with_the_sequential_loop():
    cfg = config("der++", 5, {"memory_size": 40})
    states = []
    (res,), _ = stacked([cfg], [lambda s: states.append(copy.deepcopy(s))])
    assert [(s["phase"], s["step"]) for s in states] == [(p, 0) for p in range(1, 6)]
    built = build_experiment(cfg)  # a fresh process would build the run from its config
    resumed = train_stream(built.stream, built.model, built.recipe, built.train, resume=states[0])
    assert_same(res, resumed)


def test_run_folders_are_written_like_lifelong_run(tmp_path):
    from lifelong.experiment import run_experiment
    from lifelong.runs.rundir import load_run

    cfgs = [config("er", seed, {"memory_size": 40}) for seed in (0, 1)]
    report = run_vectorized(cfgs, [tmp_path / "v0", tmp_path / "v1"])
    assert [ok for ok, _, _ in report] == [True, True]
    run_experiment(cfgs[1], tmp_path / "s1", progress=False)
    _, vec, vsummary = load_run(tmp_path / "v1")
    _, seq, ssummary = load_run(tmp_path / "s1")
    assert vec.accuracy == seq.accuracy and vsummary["average_accuracy"] == ssummary["average_accuracy"]
    assert (tmp_path / "v0" / "checkpoints" / "last.pt").exists()
    assert "vectorised" in (tmp_path / "v0" / "log.txt").read_text()


def test_stacked_fisher_equals_each_runs_empirical_fisher():
    from lifelong.consolidation._util import empirical_fisher, task_sample
    from lifelong.engine.context import Context
    from lifelong.engine.loop import make_objective
    from lifelong.vectorized.penalties import stacked_fisher
    from lifelong.vectorized.stacked import StackedModel

    builts = [build_experiment(config("ewc", seed)) for seed in (0, 1, 2)]
    ctxs = []
    for b in builts:
        objective, task = make_objective(b.stream, b.model), b.stream[0]
        objective.begin_task(b.stream, task, list(task.classes))
        b.model.adapt(list(task.classes))
        ctxs.append(Context(model=b.model, stream=b.stream, task=task, objective=objective, config=b.train,
                            device=torch.device("cpu")))
    datas = [task_sample(c, 24, 7) for c in ctxs]
    seen = torch.stack([c.objective.seen for c in ctxs])
    fisher = stacked_fisher(StackedModel([b.model for b in builts]), datas, 1, torch.device("cpu"),
                            lambda out, data: out.masked_fill(~seen[:, None, :out.shape[-1]], float("-inf")))
    for r, (c, d) in enumerate(zip(ctxs, datas)):
        for n, f in empirical_fisher(c, d, 1).items():
            assert torch.allclose(fisher[n][r], f, rtol=0, atol=1e-10), n


def test_mid_task_checkpoints_resume_exactly_with_the_sequential_loop():
    cfg = config("er", 2, {"memory_size": 40}, train={"checkpoint_every": 3})
    states = []
    (res,), _ = stacked([cfg], [lambda s: states.append(copy.deepcopy(s))])
    mid = [s for s in states if s["step"] > 0 and s["phase"] == 2]
    assert [s["step"] for s in mid] == [3, 6]
    built = build_experiment(cfg)
    resumed = train_stream(built.stream, built.model, built.recipe, built.train, resume=mid[0])
    assert_same(res, resumed)


def test_interrupted_vectorised_runs_keep_their_results(tmp_path, monkeypatch):
    from lifelong.engine.callbacks import Callback
    from lifelong.runs.io import read_json

    class Interrupt(Callback):
        def on_task_end(self, ctx, row):
            if ctx.task_index == 1:
                raise KeyboardInterrupt

    cfgs = [config("naive", seed) for seed in (0, 1)]
    with pytest.raises(KeyboardInterrupt):
        run_vectorized(cfgs, [tmp_path / "r0", tmp_path / "r1"], callbacks=[[Interrupt()], []])
    for name in ("r0", "r1"):
        metrics = read_json(tmp_path / name / "metrics.json")
        assert metrics["complete"] is False and len(metrics["accuracy_matrix"]) >= 1
        assert "lifelong run --resume" in (tmp_path / name / "log.txt").read_text()


def test_training_controls_the_stacks_lack_send_runs_to_processes():
    """A control the vectorised path does not implement is listed with its reason (never silently ignored)."""
    from lifelong.config import validate
    from lifelong.vectorized import vectorizable

    base = {"benchmark": {"name": "split-digits"}, "model": {"name": "mlp", "params": {"hidden": [8]}},
            "strategy": {"name": "naive"}}
    for train, why in [({"lr_scheduler": "cosine"}, "learning-rate schedule"),
                       ({"warmup_steps": 2}, "learning-rate schedule"),
                       ({"gradient_accumulation_steps": 2}, "gradient accumulation"),
                       ({"precision": "bf16"}, "mixed precision"),
                       ({"max_grad_norm": 1.0}, "gradient clipping")]:
        cfgs = [validate({**base, "seed": s, "train": {"steps": 2, **train}}) for s in (0, 1)]
        groups, reasons = vectorizable(cfgs)
        assert groups == [] and set(reasons) == {0, 1} and why in reasons[0], (train, reasons)
