"""The experiment package: resumable settings, the worker context that replaced module state, the one dispatch."""

from __future__ import annotations

import queue

import pytest
import yaml

from lifelong.config import validate
from lifelong.errors import ConfigError
from lifelong.experiment import RESUMABLE_OVERRIDES, WorkerContext, dispatch, grid_worker, run_experiment


def tiny(**train) -> dict:
    return {
        "benchmark": {"name": "split-digits", "params": {"n_tasks": 2, "classes_per_task": 2}},
        "model": {"name": "mlp", "params": {"hidden": [16]}},
        "train": {"steps": 6, "batch_size": 16, "lr": 0.05, **train},
        "evaluation": {"eval_every": 0},
        "seed": 3,
        "device": "cpu",
    }


def _stopped_run(tmp_path, **train):
    """A run stopped after its first task (its checkpoint kept): the state a resume starts from."""
    from lifelong.engine.callbacks import Callback

    class Stop(Callback):
        def on_task_end(self, ctx, row):
            raise KeyboardInterrupt

    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(validate(tiny(**train)), out, progress=False, callbacks=[Stop()])
    return out


def test_a_resumed_run_may_change_max_grad_norm_which_replaces_a_stored_grad_clip(tmp_path):
    assert "train.max_grad_norm" in RESUMABLE_OVERRIDES
    out = _stopped_run(tmp_path, grad_clip=5.0)
    _, metrics = run_experiment(None, out, resume=True, progress=False, resume_overrides=["train.max_grad_norm=0.5"])
    assert metrics["complete"] is True and len(metrics["accuracy_matrix"]) == 2
    stored = yaml.safe_load((out / "config.yaml").read_text())["train"]
    assert stored["max_grad_norm"] == 0.5 and stored["grad_clip"] == 0.0  # one bound, not two that disagree
    assert "resumed with changed settings: train.max_grad_norm=0.5" in (out / "log.txt").read_text()


def test_a_resumed_run_still_refuses_other_changes(tmp_path):
    out = _stopped_run(tmp_path)
    with pytest.raises(ConfigError, match="only train.lr and train.grad_clip may change.*not train.epochs=9"):
        run_experiment(None, out, resume=True, progress=False, resume_overrides=["train.epochs=9"])


def test_grid_worker_sends_progress_only_to_the_queue_it_is_given(tmp_path):
    data = validate(tiny()).model_dump(mode="json")
    mine: queue.Queue = queue.Queue()
    name, ok, err, _ = grid_worker("a", data, str(tmp_path / "a"), False, False, str(tmp_path), 1, queue=mine)
    assert (name, ok, err) == ("a", True, None)
    msgs = []
    while not mine.empty():
        msgs.append(mine.get_nowait())
    assert msgs and {m[0] for m in msgs} == {"a"} and {m[1] for m in msgs} == {0, 1}  # both tasks reported
    # without a queue nothing is sent anywhere: there is no process-wide channel left over from the first call
    name, ok, err, _ = grid_worker("b", data, str(tmp_path / "b"), False, False, str(tmp_path), 1)
    assert ok and err is None and mine.empty()


def test_worker_context_warms_up_once():
    ctx = WorkerContext()
    ctx.warm_up()
    assert ctx.warm is True and WorkerContext().warm is False  # each context has its own state


def test_dispatch_runs_every_job_inline_with_one_worker(tmp_path):
    data = validate(tiny()).model_dump(mode="json")
    jobs = [(n, data, str(tmp_path / n)) for n in ("x", "y")]
    results = dispatch(jobs, executor="process", workers=1, address=None, resume=False, overwrite=False,
                       index_root=str(tmp_path), progress=False)
    assert [(r[0], r[1]) for r in results] == [("x", True), ("y", True)]
    assert (tmp_path / "x" / "metrics.json").exists() and (tmp_path / "y" / "metrics.json").exists()
