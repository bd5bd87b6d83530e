"""Shared pieces of the fault suite: one tiny config, the CLI as a subprocess, polling helpers.

The runs are small (split-digits, 3 tasks of 2 digits, a 32-unit MLP, 60 steps
per task) so that killing, resuming and comparing them takes seconds.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

CONFIG = {
    "benchmark": {"name": "split-digits", "params": {"n_tasks": 3, "classes_per_task": 2}},
    "model": {"name": "mlp", "params": {"hidden": [32]}},
    "train": {"steps": 60, "batch_size": 16, "lr": 0.05, "momentum": 0.9, "checkpoint_every": 10, "log_every": 5},
    "seed": 1,
    "device": "cpu",
}

#: a CLI whose checkpoint writes pause (after the data is in the temporary file, before it is renamed),
#: so a test can kill the run during a write, or find it alive mid-task
SLOW_CLI = """
import os, sys, time
import lifelong.runs.io as io
delay = float(os.environ.get("FAULTS_CKPT_DELAY", "0.3"))
_atomic = io._atomic
def slow(obj, path):
    import torch
    def writer(fh):
        torch.save(obj, fh)
        fh.flush()
        time.sleep(delay)
    return _atomic(path, "wb", writer)
io.torch_save_atomic = slow
from lifelong.cli import main
sys.argv[0] = "lifelong"
main()
"""


def config(**train) -> dict:
    cfg = copy.deepcopy(CONFIG)
    cfg["train"].update(train)
    return cfg


def write_config(folder: Path, data: dict, name: str = "config.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(yaml.safe_dump(data))
    return p


def env() -> dict[str, str]:
    e = dict(os.environ)
    src = str(Path(__file__).resolve().parents[2] / "src")
    e["PYTHONPATH"] = src + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    e.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1", COLUMNS="200")
    return e


def cli(*args: str, slow: bool = False) -> list[str]:
    if slow:
        return [sys.executable, "-c", SLOW_CLI, *args]
    return [sys.executable, "-m", "lifelong.cli", *args]


def run_cli(*args: str, timeout: float = 300, slow: bool = False) -> subprocess.CompletedProcess:
    return subprocess.run(cli(*args, slow=slow), env=env(), capture_output=True, text=True, timeout=timeout)


def start_cli(*args: str, slow: bool = False, **env_extra: str) -> subprocess.Popen:
    e = env()
    e.update(env_extra)
    return subprocess.Popen(cli(*args, slow=slow), env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def kept_steps(run: Path) -> list[int]:
    from lifelong.experiment import kept_checkpoints

    return kept_checkpoints(run / "checkpoints")


def wait_for(predicate, proc: subprocess.Popen | None = None, timeout: float = 120.0, what: str = "it"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"the process ended (rc={proc.returncode}) before {what}:\n{out[-1500:]}\n{err[-3000:]}")
        time.sleep(0.01)
    if proc is not None:
        proc.kill()
    pytest.fail(f"timed out waiting for {what}")


def metrics(run: Path) -> dict:
    return json.loads((run / "metrics.json").read_text())


def index_status(root: Path, name: str) -> str | None:
    import sqlite3

    with sqlite3.connect(root / "index.sqlite") as db:
        row = db.execute("SELECT status FROM runs WHERE name = ?", (name,)).fetchone()
    return None if row is None else row[0]
