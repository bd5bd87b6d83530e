"""run_experiment: the run folder, the index, refusals, unwritable outputs, partial results, in-process resume."""

from __future__ import annotations

import json
import sqlite3

import pytest
import torch

from lifelong.config import validate
from lifelong.engine.callbacks import Callback
from lifelong.errors import ConfigError, LifelongError, TrainingError
from lifelong.experiment import build_experiment, resume_experiment, run_experiment
from lifelong.runs.io import StorageError


def small(**over) -> dict:
    """3 tasks of split-digits, a small MLP, a few dozen steps: about a second."""
    cfg = {
        "benchmark": {"name": "split-digits", "params": {"n_tasks": 3, "classes_per_task": 2}},
        "model": {"name": "mlp", "params": {"hidden": [32]}},
        "train": {"steps": 30, "batch_size": 32, "lr": 0.05, "momentum": 0.9, "log_every": 5},
        "evaluation": {"eval_every": 10},
        "seed": 1,
        "device": "cpu",
    }
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    return cfg


def test_run_writes_the_run_folder(tmp_path):
    out = tmp_path / "results" / "run1"
    result, metrics = run_experiment(validate(small()), out, progress=False)
    assert result.complete and len(result.accuracy) == 3
    for name in ("config.yaml", "metrics.json", "accuracy_matrix.csv", "curves.csv", "losses.csv", "log.txt",
                 "checkpoints/last.pt"):
        assert (out / name).exists(), name
    m = json.loads((out / "metrics.json").read_text())
    for key in ("accuracy_matrix", "average_accuracy", "forgetting", "bwt", "fwt", "wall_seconds"):
        assert key in m
    assert m["complete"] is True and m["accuracy_matrix"] == result.accuracy
    assert m["average_accuracy"] == pytest.approx(sum(result.accuracy[-1]) / 3)
    assert metrics["average_accuracy"] == m["average_accuracy"]
    # class-incremental naive fine-tuning: the last task is learned, the first forgotten
    assert result.accuracy[-1][2] > 0.9 and result.accuracy[-1][0] < 0.5
    # learning curves every 10 steps for each of the 3 tasks (3 evals x 3 tasks x 3 eval tasks)
    assert len(result.curves) == 27
    # the resolved config is complete and re-runnable
    stored = validate(__import__("yaml").safe_load((out / "config.yaml").read_text()))
    assert stored.train.steps == 30 and stored.seed == 1 and stored.out == str(out)
    log = (out / "log.txt").read_text()
    assert "task 3 done" in log and "done: average accuracy" in log
    # the run is in the index of the folder that holds it
    with sqlite3.connect(tmp_path / "results" / "index.sqlite") as db:
        rows = db.execute("SELECT name, benchmark, strategy, seed, status, average_accuracy FROM runs").fetchall()
    assert rows == [("run1", "split-digits", "naive", 1, "complete", pytest.approx(m["average_accuracy"]))]


def test_same_seed_same_numbers_and_seed_matters(tmp_path):
    r1, _ = run_experiment(validate(small()), tmp_path / "a", progress=False)
    r2, _ = run_experiment(validate(small()), tmp_path / "b", progress=False)
    r3, _ = run_experiment(validate(small(seed=2)), tmp_path / "c", progress=False)
    assert r1.accuracy == r2.accuracy and r1.losses == r2.losses
    assert r1.accuracy != r3.accuracy


def test_existing_run_folder_is_refused_unless_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    run_experiment(validate(small()), out, progress=False)
    before = (out / "metrics.json").read_text()
    with pytest.raises(ConfigError, match="already exists.*--resume.*--overwrite"):
        run_experiment(validate(small()), out, progress=False)
    assert (out / "metrics.json").read_text() == before
    result, _ = run_experiment(validate(small(seed=5)), out, overwrite=True, progress=False)
    assert json.loads((out / "metrics.json").read_text())["accuracy_matrix"] == result.accuracy
    assert "seed: 5" in (out / "config.yaml").read_text()


def test_unwritable_output_gets_a_clear_message(tmp_path):
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(StorageError) as info:
        run_experiment(validate(small()), blocker / "run", progress=False)
    msg = str(info.value)
    assert "file.txt" in msg and "is a file, not a folder" in msg
    assert isinstance(info.value, LifelongError)


def test_grid_config_is_refused_by_run(tmp_path):
    with pytest.raises(ConfigError, match="lifelong compare"):
        data = small(seeds=[0, 1])
        del data["seed"]
        run_experiment(validate(data), tmp_path / "g", progress=False)


class StopAt(Callback):
    """Raises KeyboardInterrupt (as Ctrl-C would) once the run reaches ``global_step``."""

    def __init__(self, global_step: int):
        self.at = global_step

    def on_step_end(self, ctx, loss):
        if ctx.global_step == self.at:
            raise KeyboardInterrupt


def test_interrupted_run_keeps_partial_results_and_resumes_exactly(tmp_path):
    ref, _ = run_experiment(validate(small(train={"checkpoint_every": 7})), tmp_path / "ref", progress=False)
    out = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(validate(small(train={"checkpoint_every": 7})), out, progress=False, callbacks=[StopAt(45)])
    m = json.loads((out / "metrics.json").read_text())
    assert m["complete"] is False and len(m["accuracy_matrix"]) == 1  # task 1 of 3 was finished
    assert m["accuracy_matrix"][0] == ref.accuracy[0]
    assert any("interrupted" in n for n in m["notes"])
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert (state["phase"], state["step"]) == (1, 14)  # the last mid-task checkpoint (every 7 steps) before 45
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        assert db.execute("SELECT status FROM runs WHERE name='cut'").fetchone() == ("stopped",)
    assert "interrupted by the user" in (out / "log.txt").read_text()
    result, metrics = resume_experiment(out, progress=False)
    assert result.complete and metrics["complete"] is True
    assert result.accuracy == ref.accuracy
    assert result.curves == ref.curves
    assert [l["loss"] for l in result.losses] == [l["loss"] for l in ref.losses]
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        assert db.execute("SELECT status FROM runs WHERE name='cut'").fetchone() == ("complete",)


def test_training_error_keeps_results_so_far(tmp_path):
    out = tmp_path / "nan"
    with pytest.raises(TrainingError) as info:
        run_experiment(validate(small(train={"lr": 1e30, "momentum": 0.0})), out, progress=False)
    assert info.value.result is not None
    m = json.loads((out / "metrics.json").read_text())
    assert m["complete"] is False
    assert any("loss became" in n for n in m["notes"])
    with sqlite3.connect(tmp_path / "index.sqlite") as db:
        assert db.execute("SELECT status FROM runs").fetchone() == ("failed",)


def test_resume_needs_a_run_folder_and_the_same_config(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resume_experiment(tmp_path / "missing", progress=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.yaml"):
        resume_experiment(tmp_path / "empty", progress=False)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(validate(small()), out, progress=False, callbacks=[StopAt(40)])
    with pytest.raises(ConfigError, match="different config.*train"):
        run_experiment(validate(small(train={"lr": 0.2})), out, resume=True, progress=False)
    result, _ = run_experiment(validate(small()), out, resume=True, progress=False)
    assert result.complete


def test_build_experiment_seeds_the_model():
    a = build_experiment(validate(small()))
    b = build_experiment(validate(small()))
    c = build_experiment(validate(small(seed=9)))
    wa, wb, wc = (next(x.model.parameters()).detach() for x in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert len(a.stream) == 3 and a.train.steps == 30


def test_strategies_from_the_registry_build_and_run(tmp_path):
    from lifelong.config import _registries

    regs = _registries()
    if "strategy" not in regs or "er" not in regs["strategy"]:
        pytest.skip("lifelong.strategies (er) is not installed yet")
    result, m = run_experiment(validate(small(strategy="er", train={"steps": 40})), tmp_path / "er", progress=False)
    naive, n = run_experiment(validate(small(train={"steps": 40})), tmp_path / "naive", progress=False)
    assert m["average_accuracy"] > n["average_accuracy"]
