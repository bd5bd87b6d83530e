"""Nothing read from a run folder runs code: a checkpoint whose pickle would execute something is refused
on --resume with one message, and so is a checkpoint that lacks what a checkpoint holds.

(These pass once checkpoints are loaded with ``torch.load(weights_only=True)``
and checked, the engine's checkpoint module.)
"""

from __future__ import annotations

import shutil

import pytest
import torch
from faultkit import run_cli


class _Payload:
    """Unpickling this writes a marker file: what a malicious checkpoint could do instead."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code ran')",))


@pytest.fixture()
def copied_run(tmp_path, reference):
    run = tmp_path / "run"
    shutil.copytree(reference["path"], run)
    return run


def _plant(run, obj):
    for p in (run / "checkpoints").glob("*.pt"):
        p.unlink()
    torch.save(obj, run / "checkpoints" / "last.pt")


def test_a_checkpoint_that_would_run_code_is_refused(copied_run, tmp_path):
    marker = tmp_path / "marker.txt"
    _plant(copied_run, {"phase": 1, "step": 5, "global_step": 65, "model": _Payload(str(marker))})
    res = run_cli("run", "--resume", str(copied_run), "--quiet")
    assert not marker.exists(), "loading the checkpoint ran code from it"
    assert res.returncode == 2, res.stderr
    assert "last.pt" in res.stderr and "Traceback" not in res.stderr + res.stdout


def test_a_checkpoint_missing_keys_is_one_message(copied_run):
    _plant(copied_run, {"phase": 1})
    res = run_cli("run", "--resume", str(copied_run), "--quiet")
    assert res.returncode == 2, res.stderr
    assert "last.pt" in res.stderr and "Traceback" not in res.stderr + res.stdout
    assert res.stderr.count("error:") == 1


def test_a_truncated_checkpoint_is_one_message(copied_run, reference):
    data = (reference["path"] / "checkpoints" / "last.pt").read_bytes()
    for p in (copied_run / "checkpoints").glob("*.pt"):
        p.unlink()
    (copied_run / "checkpoints" / "last.pt").write_bytes(data[: len(data) // 2])
    res = run_cli("run", "--resume", str(copied_run), "--quiet")
    assert res.returncode == 2, res.stderr
    assert "last.pt" in res.stderr and "damaged" in res.stderr and "Traceback" not in res.stderr
