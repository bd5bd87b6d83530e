"""lifelong.runs: where results live and how they are compared.

* :mod:`~lifelong.runs.io`: atomic writes (text, bytes, JSON, torch checkpoints);
* :mod:`~lifelong.runs.rundir`: the run directory (config, metrics, CSVs, log, checkpoints)
  and :func:`load_run`;
* :mod:`~lifelong.runs.index`: the SQLite run index of a results folder;
* :mod:`~lifelong.runs.compare`: mean ± std tables grouped by strategy/curriculum;
* :mod:`~lifelong.runs.report`: one self-contained HTML report.

Only the light modules are imported here; the report (matplotlib) is imported
when used: ``from lifelong.runs.report import write_report``.
"""

from lifelong.runs.index import query, register_run, update_run
from lifelong.runs.io import (
    StorageError,
    read_json,
    torch_save_atomic,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)
from lifelong.runs.rundir import RunDir, load_run

__all__ = [
    "RunDir",
    "StorageError",
    "load_run",
    "query",
    "read_json",
    "register_run",
    "torch_save_atomic",
    "update_run",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]
