"""A damaged or deleted run index loses no run: the terminal is warned, `lifelong runs --reindex` rebuilds it."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
import yaml
from click.testing import CliRunner
from faultkit import config

from lifelong.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def _statuses(db):
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT name, status FROM runs").fetchall())


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """A results folder with a complete run and a failed (diverged) one."""
    root = tmp_path_factory.mktemp("results")
    good, bad = root / "good.yaml", root / "bad.yaml"
    good.write_text(yaml.safe_dump(config(steps=5, checkpoint_every=0)))
    bad.write_text(yaml.safe_dump(config(lr=5.0, checkpoint_every=0)))
    assert _invoke("run", str(good), "--out", str(root / "a"), "--quiet").exit_code == 0
    assert _invoke("run", str(bad), "--out", str(root / "b"), "--quiet").exit_code == 2
    return root, good


def test_a_damaged_index_warns_on_the_terminal_and_the_run_goes_on(results):
    root, good = results
    (root / "index.sqlite").write_bytes(b"garbage, not a database " * 50)
    res = _invoke("run", str(good), "--out", str(root / "c"), "--quiet")
    assert res.exit_code == 0, res.output
    assert "warning: run index not updated" in res.output and f"lifelong runs --reindex {root}" in res.output
    assert "warning: run index not updated" in (root / "c" / "log.txt").read_text()
    listed = _invoke("runs", "--root", str(root))
    assert listed.exit_code == 2 and "--reindex" in listed.output and "Traceback" not in listed.output


def test_reindex_rebuilds_every_run_with_its_status(results):
    root, _ = results
    res = _invoke("runs", "--reindex", str(root))
    assert res.exit_code == 0, res.output
    assert f"rebuilt {root / 'index.sqlite'}: 3 run(s)" in res.output
    assert _statuses(root / "index.sqlite") == {"a": "complete", "b": "failed", "c": "complete"}
    (root / "index.sqlite").unlink()  # deleted: the same command brings the runs back
    assert _invoke("runs", "--root", str(root), "--reindex").exit_code == 0
    assert set(_statuses(root / "index.sqlite")) == {"a", "b", "c"}


def test_reindex_covers_grids_and_names_runs_it_cannot_read(results, tmp_path):
    root, _ = results
    shutil.copytree(root / "a", root / "grid" / "x")  # a grid folder one level down
    shutil.copytree(root / "a", root / "broken")
    (root / "broken" / "config.yaml").write_text("seed: [unclosed\n")
    res = _invoke("runs", "--reindex", str(root))
    assert res.exit_code == 0, res.output
    assert f"run {root / 'broken'} not indexed" in res.output and "Traceback" not in res.output
    assert set(_statuses(root / "index.sqlite")) == {"a", "b", "c"}
    assert _statuses(root / "grid" / "index.sqlite") == {"x": "complete"}


def test_reindex_marks_a_live_run_running(results, tmp_path):
    from lifelong.runs.lock import RunLock

    root, _ = results
    shutil.copytree(root / "a", tmp_path / "live")
    with RunLock(tmp_path / "live"):  # a process is writing it
        assert _invoke("runs", "--reindex", str(tmp_path)).exit_code == 0
    assert _statuses(tmp_path / "index.sqlite") == {"live": "running"}
