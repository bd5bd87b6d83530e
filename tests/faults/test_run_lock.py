"""One writer per run folder: a live run's folder is neither overwritten nor resumed twice; a crash frees it."""

from __future__ import annotations

import signal

import pytest
from faultkit import config, kept_steps, metrics, run_cli, start_cli, wait_for, write_config

from lifelong.runs.lock import RunBusyError, RunLock


def test_the_lock_is_exclusive_and_names_its_holder(tmp_path):
    import os

    with RunLock(tmp_path / "run"):
        assert RunLock.holder(tmp_path / "run").startswith(f"process PID {os.getpid()}")
        with pytest.raises(RunBusyError, match=f"PID {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()
    assert RunLock.holder(tmp_path / "run") is None
    with RunLock(tmp_path / "run"):  # released: free to take again
        pass


@pytest.fixture(scope="module")
def live_run(tmp_path_factory):
    """A run caught mid-task (its checkpoint writes are slowed down), killed with SIGKILL when the tests are done."""
    folder = tmp_path_factory.mktemp("lock")
    cfg = write_config(folder, config(steps=400, checkpoint_every=20))
    out = folder / "run"
    proc = start_cli("run", str(cfg), "--out", str(out), "--quiet", slow=True, FAULTS_CKPT_DELAY="0.5")
    wait_for(lambda: kept_steps(out), proc, what="the first checkpoint")
    yield proc, cfg, out
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def test_overwrite_of_a_live_run_is_refused_naming_its_process(live_run):
    proc, cfg, out = live_run
    before = (out / "config.yaml").read_text()
    res = run_cli("run", str(cfg), "--out", str(out), "--overwrite", "--quiet", "--set", "train.lr=0.2")
    assert res.returncode == 2, res.stderr
    assert f"PID {proc.pid}" in res.stderr and "Traceback" not in res.stderr
    assert proc.poll() is None and (out / "config.yaml").read_text() == before  # the live run is untouched


def test_a_second_resume_of_a_live_run_is_refused(live_run):
    proc, cfg, out = live_run
    res = run_cli("run", "--resume", str(out), "--quiet")
    assert res.returncode == 2, res.stderr
    assert f"PID {proc.pid}" in res.stderr and "in use" in res.stderr and "Traceback" not in res.stderr
    assert proc.poll() is None


def test_a_killed_run_frees_its_folder(live_run):
    proc, cfg, out = live_run
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert RunLock.holder(out) is None  # the OS released the lock with the process
    done = run_cli("run", "--resume", str(out), "--quiet", "--set", "train.steps=400")
    assert done.returncode == 2 and "train.steps" in done.stderr  # only lr/grad_clip may change on resume
    done = run_cli("run", "--resume", str(out), "--quiet")
    assert done.returncode == 0, done.stderr
    assert metrics(out)["complete"] is True
