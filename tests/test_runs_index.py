"""The SQLite run index: register, update, query with filters, plain schema."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timezone

import pytest

from lifelong.errors import ConfigError, LifelongError
from lifelong.runs.index import index_path, query, register_run, update_run


def _fill(root):
    register_run(root, root / "a", {"benchmark": "split-digits", "strategy": "ewc", "seed": 0},
                 summary={"average_accuracy": 0.8, "forgetting": 0.1, "bwt": -0.1, "fwt": 0.0, "wall_seconds": 5.0},
                 status="complete", created="2025-01-10T09:00:00+00:00")
    register_run(root, root / "b", {"benchmark": {"name": "split-digits", "tasks": 5}, "strategy": "replay",
                                    "train": {"seed": 1}},
                 summary={"average_accuracy": 0.9, "forgetting": None}, status="complete",
                 created="2025-01-12T18:30:00+00:00")
    register_run(root, root / "c", {"benchmark": "arithmetic", "strategy": "ewc", "curriculum": {"name": "pacing"}},
                 created=datetime(2025, 2, 1, 12, 0, tzinfo=timezone.utc))


def test_register_and_query_with_filters(tmp_path):
    _fill(tmp_path)
    assert index_path(tmp_path).exists()
    rows = query(tmp_path)
    assert [r["name"] for r in rows] == ["a", "b", "c"]
    a, b, c = rows
    assert a["path"] == str((tmp_path / "a").resolve()) and a["average_accuracy"] == 0.8 and a["seed"] == 0
    assert b["benchmark"] == "split-digits" and b["seed"] == 1 and b["forgetting"] is None
    assert b["config"]["benchmark"]["tasks"] == 5
    assert c["status"] == "running" and c["curriculum"] == "pacing" and c["average_accuracy"] is None
    assert [r["name"] for r in query(tmp_path, benchmark="split-digits")] == ["a", "b"]
    assert [r["name"] for r in query(tmp_path, strategy="ewc")] == ["a", "c"]
    assert [r["name"] for r in query(tmp_path, benchmark="split-digits", strategy="ewc")] == ["a"]
    assert [r["name"] for r in query(tmp_path, since="2025-01-11")] == ["b", "c"]
    # a bare date as upper bound includes that whole day
    assert [r["name"] for r in query(tmp_path, until="2025-01-12")] == ["a", "b"]
    assert [r["name"] for r in query(tmp_path, since="2025-01-11T00:00+00:00", until="2025-01-31")] == ["b"]
    assert [r["name"] for r in query(tmp_path, status="running")] == ["c"]
    assert query(tmp_path, strategy="lwf") == []


def test_update_and_reregister_keep_identity(tmp_path):
    _fill(tmp_path)
    first = query(tmp_path, strategy="ewc", benchmark="arithmetic")[0]
    update_run(tmp_path, tmp_path / "c", status="complete",
               summary={"average_accuracy": 0.55, "forgetting": 0.2, "bwt": -0.2, "fwt": 0.05, "wall_seconds": 9.5})
    row = query(tmp_path, benchmark="arithmetic")[0]
    assert row["status"] == "complete" and row["average_accuracy"] == 0.55 and row["wall_seconds"] == 9.5
    # registering the same path again updates the row: same id, same creation time
    new_id = register_run(tmp_path, tmp_path / "c", {"benchmark": "arithmetic", "strategy": "ewc", "seed": 4},
                          status="stopped")
    again = query(tmp_path, benchmark="arithmetic")
    assert len(again) == 1 and again[0]["id"] == first["id"] == new_id
    assert again[0]["created"] == first["created"] and again[0]["seed"] == 4 and again[0]["status"] == "stopped"


def test_schema_is_plain_sqlite_with_relative_paths(tmp_path):
    _fill(tmp_path)
    con = sqlite3.connect(index_path(tmp_path))
    cols = [r[1] for r in con.execute("PRAGMA table_info(runs)")]
    assert cols == ["id", "path", "name", "benchmark", "strategy", "curriculum", "seed", "created", "status",
                    "average_accuracy", "forgetting", "bwt", "fwt", "wall_seconds", "config_json"]
    assert con.execute("SELECT path, created FROM runs ORDER BY id").fetchall()[0] == ("a", "2025-01-10T09:00:00+00:00")
    assert con.execute("SELECT AVG(average_accuracy) FROM runs WHERE benchmark='split-digits'").fetchone()[0] == \
        pytest.approx(0.85)
    con.close()


def test_run_outside_the_root_is_stored_absolute(tmp_path):
    root, elsewhere = tmp_path / "results", tmp_path / "other" / "run"
    register_run(root, elsewhere, {"strategy": "naive"})
    con = sqlite3.connect(index_path(root))
    assert con.execute("SELECT path FROM runs").fetchone()[0] == elsewhere.resolve().as_posix()
    con.close()


def test_errors(tmp_path):
    assert query(tmp_path / "no-index-here") == []
    _fill(tmp_path)
    with pytest.raises(ConfigError, match="since 'last tuesday' is not a date"):
        query(tmp_path, since="last tuesday")
    with pytest.raises(ConfigError, match="run status 'done' is unknown"):
        update_run(tmp_path, tmp_path / "a", status="done")
    with pytest.raises(LifelongError, match="not in the index"):
        update_run(tmp_path, tmp_path / "zzz", status="failed")
    bad = tmp_path / "corrupt"
    bad.mkdir()
    index_path(bad).write_bytes(b"this is not a database" * 100)
    with pytest.raises(LifelongError, match="delete it"):
        register_run(bad, bad / "r", {})
