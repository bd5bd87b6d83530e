"""The run directory: files written, round trip, refusal to clobber, partial runs."""

from __future__ import annotations

import json
import math
import os

import pytest
import yaml

from lifelong.engine.result import RunResult
from lifelong.errors import ConfigError, DataError
from lifelong.runs import RunDir, load_run


def make_result() -> RunResult:
    return RunResult(
        task_names=["a", "b", "c"],
        accuracy=[[0.9, 0.2, 0.1], [0.7, 0.8, 0.3], [0.6, 0.75, 0.95]],
        row_tasks=[[0], [0, 1], [0, 1, 2]],
        baseline=[0.1, 0.1, 0.1],
        curves=[
            {"step": 0, "task": 0, "eval_task": 0, "accuracy": 0.5},
            {"step": 10, "task": 0, "eval_task": 0, "accuracy": 0.9},
        ],
        losses=[{"step": 0, "task": 0, "loss": 2.25}, {"step": 10, "task": 0, "loss": 0.125}],
        schedule_log=[
            {"step": 0, "task": 0, "available_fraction": 0.25},
            {"step": 10, "task": 1, "available_fraction": 0.5, "p/0": 0.3, "p/1": 0.7},
        ],
        task_seconds=[1.5, 2.0, 2.5],
        task_peak_memory=[2**20, 3 * 2**20, 2 * 2**20],
        task_steps=[10, 10, 10],
        wall_seconds=7.25,
        complete=True,
        notes=["resumed at task 1"],
    )


def test_write_files_and_metrics_content(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.write_config({"strategy": "ewc", "seed": 3, "out": tmp_path, "lr": float("nan"), "dims": (1, 2)})
    metrics = rd.write_result(make_result())
    files = sorted(os.listdir(rd.path))
    assert files == ["accuracy_matrix.csv", "config.yaml", "curves.csv", "losses.csv", "metrics.json", "schedule.csv"]
    assert yaml.safe_load(rd.config_path.read_text()) == {
        "strategy": "ewc", "seed": 3, "out": str(tmp_path), "lr": None, "dims": [1, 2]}
    on_disk = json.loads(rd.metrics_path.read_text())
    assert on_disk == metrics
    # hand computed: ACC (0.6+0.75+0.95)/3, F ((0.9-0.6)+(0.8-0.75))/2, FWT ((0.2-0.1)+(0.3-0.1))/2
    assert on_disk["average_accuracy"] == pytest.approx(2.3 / 3)
    assert on_disk["forgetting"] == pytest.approx(0.175)
    assert on_disk["bwt"] == pytest.approx(-0.175)
    assert on_disk["fwt"] == pytest.approx(0.15)
    assert on_disk["wall_seconds"] == 7.25 and on_disk["steps"] == 30 and on_disk["peak_memory_mb"] == 3.0
    assert on_disk["accuracy_matrix"][2] == [0.6, 0.75, 0.95]
    assert on_disk["row_tasks"] == [[0], [0, 1], [0, 1, 2]]
    assert on_disk["task_names"] == ["a", "b", "c"] and on_disk["complete"] is True
    assert on_disk["task_seconds"] == [1.5, 2.0, 2.5] and on_disk["task_peak_memory"] == [2**20, 3 * 2**20, 2 * 2**20]
    assert on_disk["per_task_forgetting"][2] is None
    assert (rd.path / "accuracy_matrix.csv").read_text() == (
        "row,learned,a,b,c\n0,0,0.9,0.2,0.1\n1,0 1,0.7,0.8,0.3\n2,0 1 2,0.6,0.75,0.95\n"
    )
    assert (rd.path / "schedule.csv").read_text() == (
        "step,task,available_fraction,p/0,p/1\n0,0,0.25,,\n10,1,0.5,0.3,0.7\n"
    )
    assert rd.log_path == rd.path / "log.txt"
    assert rd.checkpoint_dir.is_dir() and rd.checkpoint_dir == rd.path / "checkpoints"


def test_round_trip(tmp_path):
    rd = RunDir(tmp_path / "run")
    rd.write_config({"strategy": "replay", "train": {"seed": 1}})
    original = make_result()
    rd.write_result(original, extra={"perplexity": {"a": 12.5, "b": 30.0}})
    config, result, summary = load_run(rd.path)
    assert config == {"strategy": "replay", "train": {"seed": 1}}
    assert result == original
    assert summary["perplexity"] == {"a": 12.5, "b": 30.0}
    assert summary["average_accuracy"] == pytest.approx(2.3 / 3)
    assert "accuracy_matrix" not in summary


def test_refuses_an_existing_run_unless_resume_or_overwrite(tmp_path):
    path = tmp_path / "run"
    RunDir(path).write_result(make_result())
    with pytest.raises(ConfigError) as info:
        RunDir(path)
    assert "--resume" in str(info.value) and "--overwrite" in str(info.value) and str(path) in str(info.value)
    # resume keeps the files
    RunDir(path, resume=True)
    assert (path / "metrics.json").exists()
    # overwrite starts from an empty folder
    RunDir(path, overwrite=True)
    assert os.listdir(path) == []
    with pytest.raises(ConfigError, match="contradict"):
        RunDir(path, resume=True, overwrite=True)


def test_empty_existing_folder_is_fine_and_overwrite_never_deletes_foreign_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    RunDir(tmp_path / "empty")
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "cat.jpg").write_bytes(b"meow")
    with pytest.raises(ConfigError, match="not a lifelong run folder"):
        RunDir(foreign, overwrite=True)
    assert (foreign / "cat.jpg").read_bytes() == b"meow"
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="is a file"):
        RunDir(tmp_path / "file")


def test_run_stopped_before_any_evaluation_still_writes_its_timings(tmp_path):
    rd = RunDir(tmp_path / "run")
    stopped = RunResult(task_names=["a", "b"], task_seconds=[4.0], task_steps=[12], wall_seconds=4.5,
                        notes=["stopped by Ctrl-C"])
    m = rd.write_result(stopped)
    assert m["average_accuracy"] is None and m["forgetting"] is None
    assert m["wall_seconds"] == 4.5 and m["steps"] == 12 and m["complete"] is False
    _, result, summary = load_run(rd.path)
    assert result.notes == ["stopped by Ctrl-C"] and result.accuracy == []
    assert summary["average_accuracy"] is None


def test_missing_cells_are_written_as_null(tmp_path):
    rd = RunDir(tmp_path / "run")
    r = RunResult(task_names=["a", "b"], accuracy=[[0.9, float("nan")], [0.8, 0.7]], baseline=[None, 0.5])
    m = rd.write_result(r)
    assert m["accuracy_matrix"] == [[0.9, None], [0.8, 0.7]]
    assert (rd.path / "accuracy_matrix.csv").read_text().splitlines()[1] == "0,0,0.9,"
    assert not any(isinstance(v, float) and math.isnan(v) for v in m.values() if not isinstance(v, list))


def test_extra_keys_may_not_shadow_standard_ones(tmp_path):
    with pytest.raises(ConfigError, match="'forgetting'"):
        RunDir(tmp_path / "run").write_result(make_result(), extra={"forgetting": 0.0})


def test_load_run_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_run(tmp_path / "nope")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("strategy: ewc\n")
    with pytest.raises(DataError, match="no metrics.json"):
        load_run(tmp_path / "half")
