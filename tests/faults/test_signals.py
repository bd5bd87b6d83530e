"""SIGTERM and Ctrl-C stop a run without losing it: the index says stopped, the message says how to resume,
and the resumed run gives the numbers of an uninterrupted one.

(SIGTERM is turned into the same stop as Ctrl-C by the run; the engine loop's
own handling, save at the next step boundary, comes with the loop.)
"""

from __future__ import annotations

import signal

import pytest
from faultkit import CONFIG, index_status, kept_steps, metrics, run_cli, start_cli, wait_for, write_config


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_stopped_run_says_how_to_resume_and_resumes_exactly(tmp_path, reference, sig):
    cfg = write_config(tmp_path, CONFIG)
    out = tmp_path / "run"
    proc = start_cli("run", str(cfg), "--out", str(out), "--quiet", slow=True, FAULTS_CKPT_DELAY="0.2")
    wait_for(lambda: any(s > 60 for s in kept_steps(out)), proc, what="a checkpoint in the second task")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr + stdout
    assert f"lifelong run --resume {out}" in stderr
    assert index_status(tmp_path, "run") == "stopped"
    assert metrics(out)["complete"] is False
    if sig == signal.SIGINT:
        return  # Ctrl-C's resume to the same numbers is tests/test_resume.py's; SIGTERM's is checked here
    done = run_cli("run", "--resume", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    resumed = metrics(out)
    assert resumed["accuracy_matrix"] == reference["metrics"]["accuracy_matrix"]  # exactly
    assert (out / "losses.csv").read_text() == reference["losses"]
    assert index_status(tmp_path, "run") == "complete"
