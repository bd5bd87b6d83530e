"""Atomic writes: content, no temp files left behind, clear errors for permissions and full disks."""

from __future__ import annotations

import errno
import os
import tempfile

import pytest
import torch

from lifelong.errors import LifelongError
from lifelong.runs import io as rio
from lifelong.runs.io import (
    StorageError,
    read_json,
    torch_save_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def test_text_bytes_json_round_trip_and_no_temp_files(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "héllo\n")
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01\x02")
    write_json_atomic(tmp_path / "sub" / "c.json", {"x": [1, 2.5, None], "y": "z"})  # parents are created
    assert (tmp_path / "a.txt").read_text(encoding="utf-8") == "héllo\n"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01\x02"
    assert read_json(tmp_path / "sub" / "c.json") == {"x": [1, 2.5, None], "y": "z"}
    assert sorted(os.listdir(tmp_path)) == ["a.txt", "b.bin", "sub"]
    assert os.listdir(tmp_path / "sub") == ["c.json"]


def test_replacing_keeps_the_file_mode_and_new_files_are_readable(tmp_path):
    p = tmp_path / "f.txt"
    write_text_atomic(p, "one")
    assert p.stat().st_mode & 0o777 == 0o666 & ~_umask()
    os.chmod(p, 0o640)
    write_text_atomic(p, "two")
    assert p.read_text() == "two" and p.stat().st_mode & 0o777 == 0o640


def _umask() -> int:
    m = os.umask(0o022)
    os.umask(m)
    return m


def test_json_converts_numpy_values(tmp_path):
    import numpy as np

    write_json_atomic(tmp_path / "n.json", {"a": np.float32(0.5), "b": np.arange(3)})
    assert read_json(tmp_path / "n.json") == {"a": 0.5, "b": [0, 1, 2]}


def test_torch_save_atomic_round_trip(tmp_path):
    state = {"w": torch.arange(6.0).reshape(2, 3), "step": 7}
    torch_save_atomic(state, tmp_path / "ckpt.pt")
    loaded = torch.load(tmp_path / "ckpt.pt")
    assert loaded["step"] == 7 and torch.equal(loaded["w"], state["w"])
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    p = tmp_path / "ckpt.pt"
    torch_save_atomic({"v": 1}, p)
    with pytest.raises(Exception):
        torch_save_atomic({"f": lambda: 0}, p)  # lambdas cannot be pickled
    assert torch.load(p) == {"v": 1}
    assert os.listdir(tmp_path) == ["ckpt.pt"]


def test_permission_error_names_the_path_and_what_to_do(tmp_path, monkeypatch):
    def denied(*a, **k):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", denied)
    target = tmp_path / "metrics.json"
    with pytest.raises(StorageError) as info:
        write_json_atomic(target, {"a": 1})
    msg = str(info.value)
    assert str(target) in msg and "not writable" in msg and "another output folder" in msg
    assert isinstance(info.value, LifelongError) and isinstance(info.value, OSError)


def test_full_disk_is_a_clear_error_and_cleans_up(tmp_path, monkeypatch):
    p = tmp_path / "big.bin"
    write_bytes_atomic(p, b"old")

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(rio.os, "fsync", full)
    with pytest.raises(StorageError, match="disk is full") as info:
        write_bytes_atomic(p, b"new" * 1000)
    assert str(p) in str(info.value)
    assert p.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["big.bin"]


def test_read_json_errors_name_the_file(tmp_path):
    with pytest.raises(LifelongError, match="does not exist"):
        read_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(LifelongError, match="bad.json is not valid JSON"):
        read_json(tmp_path / "bad.json")
