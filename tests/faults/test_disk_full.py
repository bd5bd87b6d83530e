"""A full disk: one message naming the folder and the space needed; the results so far are kept.

ENOSPC is injected at the file layer (every write of the atomic writer fails
once the disk is "full"), so torch's own report of it (``RuntimeError: enforce
fail ... unexpected pos``) is exercised; as root, a real tiny tmpfs fills up too.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import uuid

import pytest
import yaml
from click.testing import CliRunner
from faultkit import config, index_status, metrics, run_cli, write_config

import lifelong.runs.io as rio
from lifelong.cli import main
from lifelong.config import validate
from lifelong.engine.callbacks import Callback
from lifelong.experiment import run_experiment
from lifelong.runs.io import StorageError, torch_save_atomic


class _Disk:
    full = False
    #: bytes each file may still take once the disk is full (a small file fits, a checkpoint does not)
    room = 4096


class _FullFile:
    """A file whose writes fail with ENOSPC once the disk is full and the file has used up the room left.

    Failing in the middle of a file is what makes ``torch.save`` report
    ``RuntimeError: [enforce fail ...] unexpected pos`` instead of the OSError.
    """

    def __init__(self, fh):
        self._fh = fh
        self._written = 0

    def write(self, data):
        self._written += len(data)
        if _Disk.full and self._written > _Disk.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self._fh.write(data)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return self._fh.__exit__(*exc)


class _FillsAfterTask(Callback):
    """The disk fills up when task ``index`` ends (before its checkpoint is written)."""

    def __init__(self, index: int):
        self.index = index

    def on_task_end(self, ctx, row) -> None:
        if ctx.task_index == self.index:
            _Disk.full = True


@pytest.fixture()
def full_disk(monkeypatch):
    real = os.fdopen
    monkeypatch.setattr(rio.os, "fdopen", lambda *a, **k: _FullFile(real(*a, **k)))
    _Disk.full = False
    yield _Disk
    _Disk.full = False


def test_torch_save_on_a_full_disk_is_a_storage_error(tmp_path, full_disk):
    import torch

    full_disk.full = True
    with pytest.raises(StorageError) as info:
        torch_save_atomic({"w": torch.zeros(50_000)}, tmp_path / "ckpt.pt")
    msg = str(info.value)
    assert "disk is full" in msg and str(tmp_path) in msg and "needed" in msg and "195.3 KB" in msg
    assert os.listdir(tmp_path) == []  # no temporary file left


def test_a_run_on_a_full_disk_keeps_its_results_and_says_so(tmp_path, full_disk):
    out = tmp_path / "run"
    with pytest.raises(StorageError) as info:
        run_experiment(validate(config(steps=20, checkpoint_every=0)), out, progress=False,
                       callbacks=[_FillsAfterTask(1)])
    msg = str(info.value)
    assert "disk is full" in msg and str(out / "checkpoints") in msg and "needed" in msg and "--resume" in msg
    m = metrics(out)  # the small result files still fit: the results of both finished tasks are kept
    assert m["complete"] is False and len(m["accuracy_matrix"]) == 2
    assert index_status(tmp_path, "run") == "failed"
    assert not [p for p in (out / "checkpoints").iterdir() if p.suffix == ".tmp"]
    full_disk.full = False  # space freed: the run continues from its last checkpoint
    result, final = run_experiment(None, out, resume=True, progress=False)
    assert final["complete"] is True and len(final["accuracy_matrix"]) == 3


def test_the_cli_on_a_full_disk_prints_one_message(tmp_path, full_disk, monkeypatch):
    import lifelong.experiment.run as ex  # the module that uses what is patched

    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config(steps=5, checkpoint_every=0)))
    out = tmp_path / "run"

    class Filling(ex.ScoreCache):  # the CLI builds its own callbacks: fill the disk from one of them
        def on_task_end(self, ctx, row):
            _FillsAfterTask(0).on_task_end(ctx, row)

    monkeypatch.setattr(ex, "ScoreCache", Filling)
    res = CliRunner().invoke(main, ["run", str(cfg), "--out", str(out), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output and "disk is full" in res.output and str(out) in res.output
    assert res.output.count("error:") == 1


@pytest.fixture()
def tiny_tmpfs(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root; the injected ENOSPC tests cover the same path")
    mnt = tmp_path / f"tmpfs-{uuid.uuid4().hex[:6]}"
    mnt.mkdir()
    # room for the small files and one checkpoint (~170 KB), not for two
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mnt)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_a_real_full_disk(tmp_path, tiny_tmpfs):
    data = config(steps=20, checkpoint_every=0)
    data["model"]["params"]["hidden"] = [256]
    data["checkpoints"] = {"keep": 1}
    cfg = write_config(tmp_path, data)
    out = tiny_tmpfs / "run"
    res = run_cli("run", str(cfg), "--out", str(out), "--quiet")
    assert res.returncode == 2, res.stderr
    assert "disk is full" in res.stderr and str(out / "checkpoints") in res.stderr and "needed" in res.stderr
    assert "Traceback" not in res.stderr + res.stdout
    m = metrics(out)
    assert m["complete"] is False and len(m["accuracy_matrix"]) >= 1  # the finished task's results were kept
    # space freed elsewhere (here: the run moves to a bigger disk), the run continues to the end
    moved = tmp_path / "moved"
    shutil.copytree(out, moved)
    res = run_cli("run", "--resume", str(moved), "--quiet")
    assert res.returncode == 0, res.stderr
    assert metrics(moved)["complete"] is True
