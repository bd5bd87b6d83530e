"""Faults: a run killed with SIGKILL mid-task resumes to the exact numbers; Ctrl-C stops cleanly after saving.

Each test drives the real ``lifelong`` command in a subprocess.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

CONFIG = {
    "benchmark": {"name": "split-digits", "params": {"n_tasks": 3, "classes_per_task": 2}},
    "model": {"name": "mlp", "params": {"hidden": [64]}},
    # long enough tasks that a mid-task checkpoint can be caught before the task ends
    "train": {"steps": 400, "batch_size": 32, "lr": 0.05, "momentum": 0.9, "checkpoint_every": 10,
              "log_every": 10},
    "evaluation": {"eval_every": 25},
    "seed": 3,
    "device": "cpu",
}


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    return env


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lifelong.cli", *args]


def _start(config: Path, out: Path) -> subprocess.Popen:
    return subprocess.Popen(_cmd("run", str(config), "--out", str(out), "--quiet"), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_mid_task_checkpoint(proc: subprocess.Popen, ckpt: Path, phase: int, timeout: float = 120.0) -> dict:
    """Poll until the checkpoint is a mid-task one of ``phase`` (written atomically, so always readable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the run ended before a mid-task checkpoint was seen (rc={proc.returncode}):\n{err[-2000:]}")
        if ckpt.exists():
            state = torch.load(ckpt, map_location="cpu", weights_only=False)
            if state["phase"] == phase and 0 < state["step"] < CONFIG["train"]["steps"] - 50:
                return state
        time.sleep(0.01)
    proc.kill()
    pytest.fail("no mid-task checkpoint appeared in time")


def _reference(tmp_path: Path, config: Path) -> dict:
    ref = tmp_path / "reference"
    done = subprocess.run(_cmd("run", str(config), "--out", str(ref), "--quiet"), env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads((ref / "metrics.json").read_text())


@pytest.fixture()
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def test_sigkill_mid_task_then_resume_gives_the_same_accuracy_matrix(tmp_path, config):
    out = tmp_path / "killed"
    proc = _start(config, out)
    state = _wait_mid_task_checkpoint(proc, out / "checkpoints" / "last.pt", phase=1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    # what survived the kill: the finished first task, no complete flag
    partial = json.loads((out / "metrics.json").read_text())
    assert partial["complete"] is False and len(partial["accuracy_matrix"]) == 1
    assert 0 < state["step"]

    done = subprocess.run(_cmd("run", "--resume", str(out), "--quiet"), env=_env(), capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    resumed = json.loads((out / "metrics.json").read_text())
    reference = _reference(tmp_path, config)
    assert resumed["complete"] is True
    assert resumed["accuracy_matrix"] == reference["accuracy_matrix"]  # exactly, not approximately
    assert resumed["average_accuracy"] == reference["average_accuracy"]
    assert (out / "curves.csv").read_text() == (tmp_path / "reference" / "curves.csv").read_text()
    log = (out / "log.txt").read_text()
    assert "resuming run killed from task 1 step" in log


def test_ctrl_c_stops_cleanly_with_a_checkpoint_and_partial_metrics(tmp_path, config):
    out = tmp_path / "interrupted"
    proc = _start(config, out)
    _wait_mid_task_checkpoint(proc, out / "checkpoints" / "last.pt", phase=1)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete"] is False and len(metrics["accuracy_matrix"]) == 1
    assert any("interrupted" in n for n in metrics["notes"])
    state = torch.load(out / "checkpoints" / "last.pt", weights_only=False)
    assert state["phase"] == 1 and state["step"] > 0  # the loop saved at the step where it stopped
    assert "interrupted by the user" in (out / "log.txt").read_text()

    # a second run into the same folder refuses (exit 2, one line), --resume finishes it
    again = subprocess.run(_cmd("run", str(config), "--out", str(out), "--quiet"), env=_env(), capture_output=True,
                           text=True, timeout=120)
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr
    done = subprocess.run(_cmd("run", str(config), "--out", str(out), "--resume", "--quiet"), env=_env(),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    final = json.loads((out / "metrics.json").read_text())
    assert final["complete"] is True and len(final["accuracy_matrix"]) == 3
