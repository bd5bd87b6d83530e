"""The run index: one SQLite file listing every run under a results folder.

The index lives at ``<root>/index.sqlite``, where ``<root>`` is the folder
that holds the run directories. It is a cache of what the run folders hold
(they remain the source of truth), kept plain so people can query it with
the ``sqlite3`` shell or pandas::

    sqlite3 results/index.sqlite \\
      "SELECT name, strategy, seed, average_accuracy FROM runs WHERE benchmark='split-mnist1d'"

Schema (one table)::

    CREATE TABLE runs (
      id               INTEGER PRIMARY KEY AUTOINCREMENT,
      path             TEXT UNIQUE NOT NULL, -- run folder, relative to <root> when inside it
      name             TEXT,    -- run name (default: the folder name)
      benchmark        TEXT,    -- config 'benchmark' (its 'name' when it is a mapping)
      strategy         TEXT,    -- config 'strategy'
      curriculum       TEXT,    -- config 'curriculum'
      seed             INTEGER, -- config 'seed', else 'train.seed'
      created          TEXT,    -- ISO 8601 UTC, e.g. 2025-01-31T12:00:00+00:00
      status           TEXT,    -- running | complete | stopped | failed
      average_accuracy REAL,    -- metrics as in metrics.json; NULL when undefined
      forgetting       REAL,
      bwt              REAL,
      fwt              REAL,
      wall_seconds     REAL,
      config_json      TEXT     -- the resolved config as JSON
    );

Several processes (parallel seeds) may register runs at the same time:
SQLite serialises the writes, and each call waits up to 30 s for the lock.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from lifelong.errors import ConfigError, LifelongError
from lifelong.runs.io import PathLike, storage_error

INDEX_FILE = "index.sqlite"
STATUSES = ("running", "complete", "stopped", "failed")
METRIC_COLUMNS = ("average_accuracy", "forgetting", "bwt", "fwt", "wall_seconds")
COLUMNS = (
    "id", "path", "name", "benchmark", "strategy", "curriculum", "seed", "created", "status",
    *METRIC_COLUMNS, "config_json",
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
  id               INTEGER PRIMARY KEY AUTOINCREMENT,
  path             TEXT UNIQUE NOT NULL,
  name             TEXT,
  benchmark        TEXT,
  strategy         TEXT,
  curriculum       TEXT,
  seed             INTEGER,
  created          TEXT,
  status           TEXT,
  average_accuracy REAL,
  forgetting       REAL,
  bwt              REAL,
  fwt              REAL,
  wall_seconds     REAL,
  config_json      TEXT
);
CREATE INDEX IF NOT EXISTS runs_benchmark_strategy ON runs (benchmark, strategy);
CREATE INDEX IF NOT EXISTS runs_created ON runs (created);
"""


def index_path(root: PathLike) -> Path:
    """``<root>/index.sqlite``."""
    return Path(root) / INDEX_FILE


@contextlib.contextmanager
def _connect(root: PathLike, create: bool = True, db: PathLike | None = None) -> Iterator[sqlite3.Connection]:
    db = index_path(root) if db is None else Path(db)
    try:
        if create:
            db.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(db, timeout=30.0)
    except OSError as exc:
        raise storage_error(exc, db, "open the run index") from exc
    except sqlite3.Error as exc:
        raise LifelongError(f"cannot open the run index {db}: {exc}. Check that the folder is writable.") from None
    try:
        conn.row_factory = sqlite3.Row
        if create:
            conn.executescript(SCHEMA)
        with conn:  # one transaction: commit on success, roll back on error
            yield conn
    except sqlite3.DatabaseError as exc:
        raise LifelongError(
            f"the run index {db} cannot be used ({exc}). It is only a cache of the run folders: rebuild it with "
            f"lifelong runs --reindex {Path(root)} (or delete it: the next run makes a new one)."
        ) from None
    finally:
        conn.close()


def _stored_path(root: PathLike, run_path: PathLike) -> str:
    root_abs, run_abs = Path(root).resolve(), Path(run_path).resolve()
    try:
        return run_abs.relative_to(root_abs).as_posix()
    except ValueError:
        return run_abs.as_posix()


def _named(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, dict):
        value = value.get("name")
        return None if value is None else str(value)
    if isinstance(value, (list, tuple)):
        return "+".join(filter(None, (_named(v) for v in value))) or None
    return str(value)


def config_fields(config: dict[str, Any]) -> dict[str, Any]:
    """benchmark, strategy, curriculum and seed as read from a resolved config.

    A field may be a plain value or a mapping with a ``name``; the seed is
    ``seed`` or, failing that, ``train.seed``.
    """
    train = config.get("train") if isinstance(config.get("train"), dict) else {}
    seed = config.get("seed", train.get("seed"))
    try:
        seed = None if seed is None else int(seed)
    except (TypeError, ValueError):
        raise ConfigError(f"seed must be an integer; got {seed!r}.") from None
    return {
        "benchmark": _named(config.get("benchmark")),
        "strategy": _named(config.get("strategy")),
        "curriculum": _named(config.get("curriculum")),
        "seed": seed,
    }


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _check_status(status: str) -> None:
    if status not in STATUSES:
        raise ConfigError(f"run status '{status}' is unknown; choose one of: {', '.join(STATUSES)}.")


def register_run(
    root: PathLike,
    run_path: PathLike,
    config: dict[str, Any],
    *,
    summary: dict[str, Any] | None = None,
    status: str = "running",
    name: str | None = None,
    created: str | datetime | None = None,
    db: PathLike | None = None,
) -> int:
    """Add a run to the index (or refresh it if its path is already there); returns its id.

    ``config`` is the resolved config (benchmark/strategy/curriculum/seed are
    read from it, see :func:`config_fields`); ``summary`` is the dict of
    :func:`lifelong.assessment.summarize` (or ``metrics.json``), if any yet.
    Re-registering keeps the original ``created`` time unless one is given.
    ``db`` writes to another index file (paths stay relative to ``root``).
    """
    _check_status(status)
    summary = summary or {}
    row = {
        "path": _stored_path(root, run_path),
        "name": name or Path(run_path).name,
        **config_fields(config),
        "created": _iso(created) if created is not None else _now(),
        "status": status,
        **{k: _number(summary.get(k)) for k in METRIC_COLUMNS},
        "config_json": json.dumps(config, sort_keys=True, default=str),
    }
    cols = list(row)
    updates = ", ".join(f"{c}=excluded.{c}" for c in cols if c not in ("path", "created") or (c == "created" and created))
    with _connect(root, db=db) as conn:
        conn.execute(
            f"INSERT INTO runs ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)}) "
            f"ON CONFLICT(path) DO UPDATE SET {updates}",
            [row[c] for c in cols],
        )
        got = conn.execute("SELECT id FROM runs WHERE path = ?", (row["path"],)).fetchone()
    return int(got["id"])


def update_run(
    root: PathLike, run_path: PathLike, *, status: str | None = None, summary: dict[str, Any] | None = None
) -> None:
    """Set a registered run's status and/or metrics (e.g. when it finishes or stops)."""
    sets: dict[str, Any] = {}
    if status is not None:
        _check_status(status)
        sets["status"] = status
    if summary is not None:
        sets.update({k: _number(summary.get(k)) for k in METRIC_COLUMNS})
    if not sets:
        return
    stored = _stored_path(root, run_path)
    with _connect(root) as conn:
        cur = conn.execute(
            f"UPDATE runs SET {', '.join(f'{c} = ?' for c in sets)} WHERE path = ?", [*sets.values(), stored]
        )
        if cur.rowcount == 0:
            raise LifelongError(f"run {run_path} is not in the index {index_path(root)}; register it first.")


def remove_run(root: PathLike, run_path: PathLike) -> None:
    """Forget a run (e.g. one whose start-up failed and whose folder was removed); unknown runs are ignored."""
    if not index_path(root).exists():
        return
    with _connect(root, create=False) as conn:
        conn.execute("DELETE FROM runs WHERE path = ?", (_stored_path(root, run_path),))


def reindex(root: PathLike, depth: int = 2) -> tuple[dict[Path, int], list[str]]:
    """Rebuild the run indexes under ``root`` from the run folders (the source of truth).

    Every folder holding a ``config.yaml`` down to ``depth`` levels below
    ``root`` is a run; it is registered in the index of the folder that holds
    it (``root/index.sqlite`` for ``root/run``, ``root/grid/index.sqlite`` for
    ``root/grid/run``), as ``lifelong run`` and ``compare`` do. Each index is
    written afresh (a damaged one is replaced). Status comes from the folder:
    ``running`` while a process holds the run's lock, ``complete`` when
    ``metrics.json`` says so, else ``failed`` or ``stopped`` as its log tells.
    Returns ``({index file: runs indexed}, [problems])``; a run that cannot be
    read is a problem (named with its folder), not an error.
    """
    base = Path(root)
    if not base.is_dir():
        raise ConfigError(f"results folder {base} does not exist; give the folder that holds the run folders.")
    runs: dict[Path, list[Path]] = {}
    level = [base]
    for _ in range(depth):
        nxt = []
        for folder in level:
            with contextlib.suppress(OSError):
                for child in sorted(folder.iterdir()):
                    if child.is_dir() and not child.name.startswith("."):
                        if (child / "config.yaml").is_file():
                            runs.setdefault(folder, []).append(child)
                        else:
                            nxt.append(child)
        level = nxt
    done: dict[Path, int] = {}
    problems: list[str] = []
    for parent, folders in runs.items():
        rows = []
        for folder in folders:
            try:
                rows.append(_folder_row(folder))
            except LifelongError as exc:
                problems.append(f"run {folder} not indexed: {exc}")
        done[index_path(parent)] = _rebuild(parent, rows)
    return done, problems


def _folder_row(folder: Path) -> dict[str, Any]:
    """register_run's arguments for one run folder, read from its files."""
    import re

    import yaml

    from lifelong.runs.io import read_json
    from lifelong.runs.lock import RunLock

    try:
        config = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LifelongError(f"its config.yaml cannot be read ({str(exc).splitlines()[0]})") from None
    if not isinstance(config, dict):
        raise LifelongError("its config.yaml does not hold a mapping")
    summary: dict[str, Any] = {}
    if (folder / "metrics.json").exists():
        metrics = read_json(folder / "metrics.json")
        summary = metrics if isinstance(metrics, dict) else {}
    log = ""
    with contextlib.suppress(OSError):
        log = (folder / "log.txt").read_text(encoding="utf-8", errors="replace")
    if RunLock.holder(folder) is not None:
        status = "running"
    elif summary.get("complete"):
        status = "complete"
    else:
        status = _status_from_log(log)
    created: str | datetime
    m = re.match(r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ", log)
    if m:
        created = datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").astimezone()
    else:
        created = datetime.fromtimestamp((folder / "config.yaml").stat().st_mtime).astimezone()
    name = config.get("name") if isinstance(config.get("name"), str) else None
    config_fields(config)  # a damaged seed is a problem of this run, raised here
    return {"run_path": folder, "config": config, "summary": summary, "status": status, "name": name or folder.name,
            "created": created}


def _status_from_log(log: str) -> str:
    """'failed' when the run's last session ended with an error, else 'stopped' (interrupted or killed)."""
    last = ""
    for line in log.splitlines():
        if "run stopped (" in line or "starting run " in line or "resuming run " in line:
            last = line
    if "run stopped (" in last and "run stopped (interrupted" not in last:
        return "failed"
    return "stopped"


def _rebuild(parent: Path, rows: list[dict[str, Any]]) -> int:
    """Write ``parent/index.sqlite`` afresh with ``rows``: built beside it, then moved over it."""
    import os

    target = index_path(parent)
    tmp = target.with_name(target.name + ".rebuild")
    try:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        for row in sorted(rows, key=lambda r: _iso(r["created"])):
            register_run(parent, db=tmp, **row)
        if not rows:
            with _connect(parent, db=tmp):
                pass
        for suffix in ("-journal", "-wal", "-shm"):  # a hot journal of the old file must not touch the new one
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(target) + suffix)
        os.replace(tmp, target)
    except OSError as exc:
        raise storage_error(exc, target, "rebuild the run index") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return len(rows)


def query(
    root: PathLike,
    benchmark: str | None = None,
    strategy: str | None = None,
    since: str | datetime | None = None,
    until: str | datetime | None = None,
    *,
    curriculum: str | None = None,
    status: str | None = None,
) -> list[dict[str, Any]]:
    """Runs in the index matching every given filter, oldest first.

    ``since``/``until`` bound the creation time (inclusive); they take a
    datetime or an ISO string (``2025-01-31`` or ``2025-01-31T12:00``; without a
    time zone they are local time). Each row is a dict with the columns of
    the table, ``config`` (the parsed config) and ``path`` made absolute.
    A results folder without an index gives an empty list.
    """
    if not index_path(root).exists():
        return []
    where, args = [], []
    for col, val in (("benchmark", benchmark), ("strategy", strategy), ("curriculum", curriculum), ("status", status)):
        if val is not None:
            where.append(f"{col} = ?")
            args.append(val)
    if since is not None:
        where.append("created >= ?")
        args.append(_iso(since, "since"))
    if until is not None:
        where.append("created <= ?")
        args.append(_iso(until, "until", end=True))
    sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY created, id"
    with _connect(root, create=False) as conn:
        rows = [dict(r) for r in conn.execute(sql, args).fetchall()]
    base = Path(root).resolve()
    for r in rows:
        p = Path(r["path"])
        r["path"] = str(p if p.is_absolute() else base / p)
        r["config"] = json.loads(r["config_json"]) if r["config_json"] else {}
    return rows


def _number(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if f != f else f  # NaN -> NULL


def _iso(value: str | datetime, what: str = "created", end: bool = False) -> str:
    """Normalise a time to ISO 8601 UTC (seconds), so string comparison orders correctly."""
    if isinstance(value, str):
        text = value.strip()
        try:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise ConfigError(
                f"{what} '{value}' is not a date; use ISO format such as 2025-01-31 or 2025-01-31T14:30."
            ) from None
        if end and len(text) == 10:  # a bare date as upper bound means "until the end of that day"
            dt = dt.replace(hour=23, minute=59, second=59)
    elif isinstance(value, datetime):
        dt = value
    else:
        raise ConfigError(f"{what} must be a date string or datetime; got {value!r}.")
    if dt.tzinfo is None:
        dt = dt.astimezone()  # naive -> local time
    return dt.astimezone(timezone.utc).isoformat(timespec="seconds")
