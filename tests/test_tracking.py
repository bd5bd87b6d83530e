"""Optional tracking: MLflow (file store under the run) and TensorBoard event files receive the
accuracy matrix, per-task accuracies, learning curves, losses and summary metrics."""

from __future__ import annotations

import json

import pytest

from lifelong.config import validate
from lifelong.experiment import run_experiment

pytest.importorskip("mlflow", reason="the [tracking] extra (mlflow) is not installed")
pytest.importorskip("tensorboard", reason="the [tracking] extra (tensorboard) is not installed")

CONFIG = {
    "benchmark": {"name": "split-digits", "params": {"n_tasks": 3, "classes_per_task": 2}},
    "model": {"name": "mlp", "params": {"hidden": [32]}},
    "train": {"steps": 20, "batch_size": 32, "lr": 0.05, "momentum": 0.9, "log_every": 5},
    "evaluation": {"eval_every": 10},
    "seed": 2,
    "device": "cpu",
    "tracking": {"mlflow": True, "tensorboard": True},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("tracked") / "run"
    result, metrics = run_experiment(validate(CONFIG), out, progress=False)
    return out, result, metrics


def test_mlflow_receives_matrix_curves_and_metrics(run):
    from mlflow.tracking import MlflowClient

    from lifelong.tracking import mlflow_uri

    out, result, metrics = run
    client = MlflowClient(tracking_uri=mlflow_uri(out))
    exp = client.get_experiment_by_name("lifelong")
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run_id = runs[0].info.run_id
    # the matrix, cell by cell: accuracy/task_j at step i
    n = len(result.task_names)
    matrix = [[None] * n for _ in range(len(result.accuracy))]
    for j in range(n):
        for m in client.get_metric_history(run_id, f"accuracy/task_{j}"):
            matrix[m.step][j] = m.value
    assert matrix == result.accuracy
    # learning curves: one point per (step, evaluated task)
    curve0 = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "curve/task_0"))
    expected = sorted((c["step"], c["accuracy"]) for c in result.curves if c["eval_task"] == 0)
    assert curve0 == expected and len(curve0) == 6  # 2 evaluations per task x 3 tasks
    losses = client.get_metric_history(run_id, "train/loss")
    assert [m.value for m in sorted(losses, key=lambda m: m.step)] == pytest.approx([l["loss"] for l in result.losses])
    summary = client.get_run(run_id).data.metrics
    assert summary["summary/average_accuracy"] == pytest.approx(metrics["average_accuracy"])
    assert summary["summary/forgetting"] == pytest.approx(metrics["forgetting"])
    params = client.get_run(run_id).data.params
    assert params["train.steps"] == "20" and params["benchmark.name"] == "split-digits"
    local = client.download_artifacts(run_id, "accuracy_matrix.json", str(out / "dl"))
    assert json.loads(open(local).read())["accuracy_matrix"] == result.accuracy


def test_tensorboard_receives_matrix_curves_and_metrics(run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from lifelong.tracking import TENSORBOARD_DIR

    out, result, metrics = run
    acc = EventAccumulator(str(out / TENSORBOARD_DIR), size_guidance={"scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    n = len(result.task_names)
    matrix = [[None] * n for _ in range(len(result.accuracy))]
    for j in range(n):
        for e in acc.Scalars(f"accuracy/task_{j}"):
            matrix[e.step][j] = e.value
    assert matrix == [[pytest.approx(v, abs=1e-6) for v in row] for row in result.accuracy]  # float32 events
    curve2 = [(e.step, e.value) for e in acc.Scalars("curve/task_2")]
    expected = [(c["step"], c["accuracy"]) for c in result.curves if c["eval_task"] == 2]
    assert [s for s, _ in curve2] == [s for s, _ in expected]
    assert [v for _, v in curve2] == pytest.approx([v for _, v in expected], abs=1e-6)
    assert "train/loss" in tags and "summary/average_accuracy" in tags
    assert acc.Scalars("summary/average_accuracy")[-1].value == pytest.approx(metrics["average_accuracy"], abs=1e-6)
    assert "accuracy_matrix/text_summary" in acc.Tags()["tensors"]  # the matrix as a markdown table


def test_tracking_off_by_default(tmp_path):
    cfg = dict(CONFIG)
    cfg.pop("tracking")
    run_experiment(validate(cfg), tmp_path / "plain", progress=False)
    assert not (tmp_path / "plain" / "mlruns").exists() and not (tmp_path / "plain" / "tensorboard").exists()
