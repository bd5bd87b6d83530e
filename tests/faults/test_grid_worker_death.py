"""A grid worker killed with SIGKILL fails only its own run; the rest finish and `compare --resume` completes it."""

from __future__ import annotations

import signal
import sqlite3

from faultkit import config, kept_steps, metrics, run_cli, start_cli, wait_for, write_config

from lifelong.runs.lock import RunLock

NAMES = ["naive-seed0", "naive-seed1", "naive-seed2"]


def _victim(grid, parent_pid):
    """(run name, worker PID) of a run that has written a checkpoint and is still running."""
    for name in NAMES:
        holder = RunLock.holder(grid / name)
        if holder and kept_steps(grid / name):
            pid = int(holder.split()[2])
            if pid != parent_pid:
                return name, pid
    return None


def test_one_dead_worker_fails_only_its_run(tmp_path):
    data = config(steps=150, checkpoint_every=10)
    data["seeds"] = [0, 1, 2]
    data.pop("seed")
    cfg = write_config(tmp_path, data)
    grid = tmp_path / "grid"
    proc = start_cli("compare", str(cfg), "--out", str(grid), "--workers", "2", "--quiet", "--no-vectorize")
    name, pid = wait_for(lambda: _victim(grid, proc.pid), proc, timeout=240, what="a run with a checkpoint")
    import os

    os.kill(pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=600)
    out = stdout + stderr
    assert proc.returncode == 1, out  # some runs failed, the others are in the table
    assert "Traceback" not in out
    assert f"run {name} failed" in out and "SIGKILL" in out and "--resume" in out
    others = [n for n in NAMES if n != name]
    for n in others:
        assert metrics(grid / n)["complete"] is True, n
    with sqlite3.connect(grid / "index.sqlite") as db:
        status = dict(db.execute("SELECT name, status FROM runs").fetchall())
    assert status[name] == "failed" and all(status[n] == "complete" for n in others), status
    assert "SIGKILL" in (grid / name / "log.txt").read_text()

    done = run_cli("compare", str(cfg), "--out", str(grid), "--workers", "1", "--quiet", "--resume", timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert metrics(grid / name)["complete"] is True
    with sqlite3.connect(grid / "index.sqlite") as db:
        assert {s for (s,) in db.execute("SELECT status FROM runs")} == {"complete"}
