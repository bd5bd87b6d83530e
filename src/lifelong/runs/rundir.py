"""The run directory: everything one run produced, in plain files.

Layout (all files are written atomically through :mod:`lifelong.runs.io`)::

    <run>/
      config.yaml          the resolved configuration (re-runnable as is)
      metrics.json         summary metrics + accuracy matrix + timings (see below)
      accuracy_matrix.csv  row, learned, <one column per task>
      curves.csv           step, task, eval_task, accuracy (learning curves)
      losses.csv           step, task, loss
      schedule.csv         step, task, <whatever the schedule logs>
      log.txt              the run's log (written by the engine)
      checkpoints/         checkpoints (written by the engine)

``metrics.json`` holds at top level the standard summary of
:func:`lifelong.assessment.summarize` (``average_accuracy``, ``forgetting``,
``bwt``, ``fwt``, ``plasticity``, ``wall_seconds``, ``peak_memory_mb``,
``steps``; undefined metrics are ``null``), per-task derivations
(``per_task_forgetting``, ``per_task_plasticity``, ``average_accuracy_curve``,
``learning_curve_area``), the raw result (``accuracy_matrix``, ``row_tasks``,
``baseline``, ``task_names``, ``task_seconds``, ``task_peak_memory``,
``task_steps``, ``complete``, ``notes``) and any extra keys the caller adds
(e.g. ``perplexity`` for language models).
"""

from __future__ import annotations

import csv
import io
import math
import os
import shutil
from pathlib import Path
from typing import Any, Iterable

import yaml

from lifelong.assessment.metrics import (
    SUMMARY_KEYS,
    average_accuracy_curve,
    learning_curve_area,
    memory_summary,
    per_task_forgetting,
    per_task_plasticity,
    summarize,
    time_summary,
)
from lifelong.engine.result import RunResult
from lifelong.errors import ConfigError, DataError, LifelongError
from lifelong.runs.io import PathLike, read_json, storage_error, write_json_atomic, write_text_atomic
from lifelong.runs.lock import LOCK

CONFIG = "config.yaml"
METRICS = "metrics.json"
ACCURACY_CSV = "accuracy_matrix.csv"
CURVES_CSV = "curves.csv"
LOSSES_CSV = "losses.csv"
SCHEDULE_CSV = "schedule.csv"
LOG = "log.txt"
CHECKPOINTS = "checkpoints"

#: files whose presence marks a folder as a lifelong run directory
RUN_MARKERS = (CONFIG, METRICS, LOG, CHECKPOINTS)

#: metrics.json keys that hold the raw result (everything else is summary or extra)
RESULT_KEYS = (
    "accuracy_matrix",
    "row_tasks",
    "baseline",
    "task_names",
    "task_seconds",
    "task_assessment_seconds",
    "task_peak_memory",
    "task_steps",
    "complete",
    "notes",
    "probes",
)
#: metrics.json keys derived from the result by :meth:`RunDir.write_result`
DERIVED_KEYS = SUMMARY_KEYS + ("per_task_forgetting", "per_task_plasticity", "average_accuracy_curve", "learning_curve_area",
                               "train_seconds", "assessment_seconds")


class RunDir:
    """One run's folder. Creating it refuses to clobber an existing run.

    ``RunDir(path)`` creates ``path`` (and its parents). An existing, non-empty
    folder is refused unless ``resume=True`` (keep its files, the run goes on)
    or ``overwrite=True`` (delete the old run first; only done when the folder
    really is a run directory). Use :meth:`existing` to open a finished run
    without any of these checks.
    """

    def __init__(self, path: PathLike, *, resume: bool = False, overwrite: bool = False):
        self.path = Path(path)
        if resume and overwrite:
            raise ConfigError("--resume and --overwrite contradict each other: resume keeps the old run, overwrite deletes it. Pass one.")
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"output path {self.path} is a file, not a folder; choose a folder for the run.")
        try:
            occupied = self.path.is_dir() and any(p.name != LOCK for p in self.path.iterdir())
            if occupied and not resume:
                if not overwrite:
                    raise ConfigError(
                        f"the run folder {self.path} already exists and is not empty. Pass --resume to continue that run, "
                        "--overwrite to delete it and start again, or choose another folder."
                    )
                if not self.is_run_dir(self.path):
                    raise ConfigError(
                        f"--overwrite refused: {self.path} is not a lifelong run folder (it has none of "
                        f"{', '.join(RUN_MARKERS)}), so deleting it could destroy unrelated files. Choose another folder."
                    )
                empty_folder(self.path)
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, self.path, "create the run folder") from exc

    @classmethod
    def existing(cls, path: PathLike) -> "RunDir":
        """Open an existing run directory for reading or adding files (no creation checks)."""
        p = Path(path)
        if not p.is_dir():
            raise DataError(f"run folder {p} does not exist.")
        self = cls.__new__(cls)
        self.path = p
        return self

    @staticmethod
    def is_run_dir(path: PathLike) -> bool:
        """True if ``path`` holds any of the files a run writes."""
        p = Path(path)
        return p.is_dir() and any((p / m).exists() for m in RUN_MARKERS)

    # ------------------------------------------------------------------ paths

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS

    @property
    def log_path(self) -> Path:
        """Where the engine writes the run's log (``log.txt``)."""
        return self.path / LOG

    @property
    def checkpoint_dir(self) -> Path:
        """``checkpoints/``, created on first use."""
        d = self.path / CHECKPOINTS
        try:
            d.mkdir(exist_ok=True)
        except OSError as exc:
            raise storage_error(exc, d, "create the checkpoint folder") from exc
        return d

    # ------------------------------------------------------------------ writing

    def write_config(self, config: dict[str, Any]) -> Path:
        """Write the resolved configuration as ``config.yaml``."""
        text = yaml.safe_dump(_plain(config), sort_keys=False, allow_unicode=True)
        return write_text_atomic(self.config_path, text)

    def write_result(self, result: RunResult, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Write ``metrics.json`` and the CSV files for ``result``; returns the metrics dict.

        Safe to call after every task (the files are replaced atomically) and
        for a run that stopped before its first evaluation (the metrics are
        then null, the timings are kept). ``extra`` adds keys to
        ``metrics.json`` (e.g. ``{"perplexity": {...}}``); they may not reuse a
        standard key.
        """
        metrics = result_metrics(result)
        for key, value in (extra or {}).items():
            if key in metrics:
                raise ConfigError(f"extra metric '{key}' would overwrite a standard key of metrics.json; rename it.")
            metrics[key] = _plain(value)
        write_json_atomic(self.metrics_path, metrics)
        write_text_atomic(self.path / ACCURACY_CSV, _accuracy_csv(result))
        write_text_atomic(self.path / CURVES_CSV, rows_to_csv(result.curves, ("step", "task", "eval_task", "accuracy")))
        write_text_atomic(self.path / LOSSES_CSV, rows_to_csv(result.losses, ("step", "task", "loss")))
        write_text_atomic(self.path / SCHEDULE_CSV, rows_to_csv(result.schedule_log, ("step", "task")))
        return metrics


def empty_folder(path: Path) -> None:
    """Delete everything in ``path`` except its lock file (held by the run that empties it)."""
    for child in path.iterdir():
        if child.name == LOCK:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def result_metrics(result: RunResult) -> dict[str, Any]:
    """The content of ``metrics.json`` for ``result`` (summary, derivations, raw result)."""
    out: dict[str, Any]
    if result.accuracy:
        out = summarize(result)
        rt = result.row_tasks or None
        out["per_task_forgetting"] = per_task_forgetting(result.accuracy, rt)
        out["per_task_plasticity"] = per_task_plasticity(result.accuracy, rt)
        out["average_accuracy_curve"] = average_accuracy_curve(result.accuracy, rt)
    else:  # stopped before the first evaluation: keep timings, metrics undefined
        out = {k: None for k in SUMMARY_KEYS}
        out.update(
            wall_seconds=float(result.wall_seconds),
            peak_memory_mb=memory_summary(result)["peak_memory_mb"],
            steps=int(sum(result.task_steps)),
            per_task_forgetting=[],
            per_task_plasticity=[],
            average_accuracy_curve=[],
        )
    out["learning_curve_area"] = learning_curve_area(result.curves)
    times = time_summary(result)  # training and assessment time, kept apart
    out.update(train_seconds=times["train_seconds"], assessment_seconds=times["assessment_seconds"],
               task_assessment_seconds=times["task_assessment_seconds"])
    out.update(
        accuracy_matrix=[[_cell(v) for v in row] for row in result.accuracy],
        row_tasks=[list(map(int, r)) for r in result.row_tasks],
        baseline=[_cell(v) for v in result.baseline],
        task_names=list(result.task_names),
        task_seconds=[float(s) for s in result.task_seconds],
        task_peak_memory=[int(b) for b in result.task_peak_memory],
        task_steps=[int(s) for s in result.task_steps],
        complete=bool(result.complete),
        notes=list(result.notes),
        probes={k: [_cell(v) for v in vals] for k, vals in result.probes.items()},
    )
    # probes in readable form (shown by the report's "other metrics"): before training and after each task
    for name, vals in result.probes.items():
        if name not in out and vals:
            out[name] = {"before": _cell(vals[0]), "after_task": [_cell(v) for v in vals[1:]]}
    return out


def _cell(v: Any) -> float | None:
    if v is None:
        return None
    f = float(v)
    return None if math.isnan(f) else f


def _plain(obj: Any) -> Any:
    """Make ``obj`` YAML/JSON friendly: tuples -> lists, paths -> str, numpy -> Python, NaN -> None."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set)):
        return [_plain(v) for v in obj]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):
        return _plain(obj.tolist())
    if isinstance(obj, float) and (math.isnan(obj) or math.isinf(obj)):
        return None
    return obj


# ---------------------------------------------------------------------- CSV


def _accuracy_csv(result: RunResult) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["row", "learned", *result.task_names])
    for i, row in enumerate(result.accuracy):
        learned = result.row_tasks[i] if i < len(result.row_tasks) else list(range(i + 1))
        w.writerow([i, " ".join(str(t) for t in learned), *("" if _cell(v) is None else repr(float(v)) for v in row)])
    return buf.getvalue()


def rows_to_csv(rows: Iterable[dict[str, Any]], first: tuple[str, ...] = ()) -> str:
    """CSV text for dict rows: columns ``first`` then every other key in first-seen order.

    A key missing from a row is an empty cell.
    """
    rows = list(rows)
    cols = list(first)
    for r in rows:
        for k in r:
            if k not in cols:
                cols.append(str(k))
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow(["" if r.get(c) is None else _csv_value(r.get(c)) for c in cols])
    return buf.getvalue()


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return repr(v)  # shortest exact form: round-trips to the same float
    return v


def _parse(s: str) -> Any:
    try:
        return int(s)
    except ValueError:
        pass
    try:
        return float(s)
    except ValueError:
        return s


def read_csv_rows(path: PathLike) -> list[dict[str, Any]]:
    """Read a CSV written by :func:`rows_to_csv`: numbers parsed, empty cells left out of the row."""
    p = Path(path)
    if not p.exists():
        return []
    try:
        with p.open(newline="", encoding="utf-8") as fh:
            return [{k: _parse(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(fh)]
    except OSError as exc:
        raise storage_error(exc, p, "read") from exc


# ---------------------------------------------------------------------- loading


def load_run(path: PathLike) -> tuple[dict[str, Any], RunResult, dict[str, Any]]:
    """Read a run directory back: ``(config, result, summary)``.

    ``summary`` is every key of ``metrics.json`` except the raw result
    (``RESULT_KEYS``): the standard summary, per-task derivations and any
    extra keys such as ``perplexity``. A missing ``config.yaml`` gives ``{}``;
    a missing ``metrics.json`` is a DataError (the run never finished a task).
    """
    p = Path(path)
    if not p.is_dir():
        raise DataError(f"run folder {p} does not exist.")
    mpath = p / METRICS
    if not mpath.exists():
        raise DataError(
            f"{p} has no {METRICS}: it is not a run folder, or the run stopped before writing any result."
        )
    metrics = read_json(mpath)
    if not isinstance(metrics, dict):
        raise DataError(f"{mpath} should hold a JSON object; it is damaged.")
    config: dict[str, Any] = {}
    cpath = p / CONFIG
    if cpath.exists():
        try:
            config = yaml.safe_load(cpath.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise LifelongError(f"{cpath} is not valid YAML ({exc}); the file is damaged.") from None
        except OSError as exc:
            raise storage_error(exc, cpath, "read") from exc
    result = RunResult(
        task_names=list(metrics.get("task_names", [])),
        accuracy=[list(r) for r in metrics.get("accuracy_matrix", [])],
        row_tasks=[list(r) for r in metrics.get("row_tasks", [])],
        baseline=list(metrics.get("baseline", [])),
        curves=read_csv_rows(p / CURVES_CSV),
        losses=read_csv_rows(p / LOSSES_CSV),
        schedule_log=read_csv_rows(p / SCHEDULE_CSV),
        task_seconds=list(metrics.get("task_seconds", [])),
        assessment_seconds=list(metrics.get("task_assessment_seconds", [])),
        task_peak_memory=list(metrics.get("task_peak_memory", [])),
        task_steps=list(metrics.get("task_steps", [])),
        wall_seconds=float(metrics.get("wall_seconds") or 0.0),
        complete=bool(metrics.get("complete", False)),
        notes=list(metrics.get("notes", [])),
        probes={k: list(v) for k, v in (metrics.get("probes") or {}).items()},
    )
    summary = {k: v for k, v in metrics.items() if k not in RESULT_KEYS}
    return config, result, summary
