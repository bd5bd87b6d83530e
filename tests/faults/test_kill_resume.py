"""SIGKILL at a seeded random step, or in the middle of a checkpoint write: the resumed run gives exactly
the numbers of the uninterrupted one, and the killed write's temporary file is cleaned up on resume."""

from __future__ import annotations

import random
import signal

import pytest
from faultkit import CONFIG, index_status, kept_steps, metrics, run_cli, start_cli, wait_for, write_config

TOTAL = CONFIG["train"]["steps"] * CONFIG["benchmark"]["params"]["n_tasks"]


def _tmp_files(run):
    return [p for p in (run / "checkpoints").glob(".*.tmp")] if (run / "checkpoints").is_dir() else []


@pytest.mark.parametrize("when", ["random-step", "mid-write"])
def test_a_killed_run_resumes_to_the_same_numbers(tmp_path, reference, when):
    cfg = write_config(tmp_path, CONFIG)
    out = tmp_path / "run"
    proc = start_cli("run", str(cfg), "--out", str(out), "--quiet", slow=True, FAULTS_CKPT_DELAY="0.3")
    if when == "random-step":
        every = CONFIG["train"]["checkpoint_every"]
        target = random.Random(9).randrange(every, TOTAL - every, every)  # seeded: the same step every time
        wait_for(lambda: any(s >= target for s in kept_steps(out)), proc, what=f"the checkpoint of step {target}")
    else:
        wait_for(lambda: kept_steps(out) and _tmp_files(out), proc, what="a checkpoint being written")
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert index_status(tmp_path, "run") == "running"  # a SIGKILL leaves no chance to say otherwise
    orphans = _tmp_files(out)
    if when == "mid-write":
        assert orphans, "the kill was meant to land during a checkpoint write"

    done = run_cli("run", "--resume", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    resumed = metrics(out)
    assert resumed["complete"] is True
    assert resumed["accuracy_matrix"] == reference["metrics"]["accuracy_matrix"]  # exactly, not approximately
    assert (out / "losses.csv").read_text() == reference["losses"]
    assert not _tmp_files(out) and not list(out.glob(".*.tmp"))
    if orphans:
        assert "unfinished temporary file" in (out / "log.txt").read_text()
    assert index_status(tmp_path, "run") == "complete"
