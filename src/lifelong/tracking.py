"""Optional experiment tracking: MLflow (local file store) and TensorBoard event files.

Enabled by the config section ``tracking: {mlflow: true, tensorboard: true}``
(the ``[tracking]`` extra installs both). :class:`Tracker` is a callback: it
only observes the loop. What it records, in both back-ends:

* ``accuracy/task_<j>`` at step ``i``: cell ``R[i][j]`` of the accuracy matrix,
  logged as each row is measured (so the matrix can be read back exactly);
* ``accuracy/average_seen`` at step ``i``: average accuracy over the tasks
  learned by row ``i``;
* ``curve/task_<j>`` at the run's optimiser step: the learning curves
  (``evaluation.eval_every``);
* ``train/loss`` every ``train.log_every`` steps;
* the final summary metrics (``average_accuracy``, ``forgetting``, ``bwt``,
  ``fwt``, ``wall_seconds``) and the whole matrix as a JSON artifact
  (MLflow) / a markdown table (TensorBoard text).

MLflow writes to ``<run>/mlruns`` (a ``file:`` URI, no server; MLflow 3 wants
``MLFLOW_ALLOW_FILE_STORE=true`` for that store, which the tracker sets unless
the variable is already set); TensorBoard to
``<run>/tensorboard``. A resumed run continues the same MLflow run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from lifelong.engine.callbacks import Callback
from lifelong.errors import require

MLFLOW_DIR = "mlruns"
TENSORBOARD_DIR = "tensorboard"
EXPERIMENT = "lifelong"
_RUN_ID_FILE = "mlflow_run_id.txt"
SUMMARY = ("average_accuracy", "forgetting", "bwt", "fwt", "plasticity", "wall_seconds")


def mlflow_uri(run_dir: str | Path) -> str:
    """The ``file:`` tracking URI of a run's MLflow store."""
    return (Path(run_dir).resolve() / MLFLOW_DIR).as_uri()


def _flatten(d: Any, prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    else:
        out[prefix[:-1]] = json.dumps(d) if not isinstance(d, str) else d
    return out


class Tracker(Callback):
    """Sends the accuracy matrix, per-task accuracies, curves, losses and metrics to MLflow and/or TensorBoard."""

    def __init__(self, run_dir: str | Path, mlflow: bool = True, tensorboard: bool = True,
                 run_name: str | None = None, params: dict[str, Any] | None = None):
        self.run_dir = Path(run_dir)
        self.use_mlflow, self.use_tb = bool(mlflow), bool(tensorboard)
        self.run_name = run_name or self.run_dir.name
        self.params = params or {}
        self.client = None
        self.run_id: str | None = None
        self.writer = None
        self._result = None
        self._curves_sent = 0
        self._pending: list[Any] = []
        self._log_every = 0
        self._closed = False
        self._start()

    # ------------------------------------------------------------------ set-up

    def _start(self) -> None:
        if self.use_mlflow:
            require("mlflow", "tracking", "MLflow tracking")
            # MLflow 3 keeps the plain-files backend in maintenance mode behind an opt-in; a run folder that
            # carries its own tracking data needs exactly that backend (no server, no database file).
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            from mlflow.entities import Param
            from mlflow.tracking import MlflowClient

            self.client = MlflowClient(tracking_uri=mlflow_uri(self.run_dir))
            exp = self.client.get_experiment_by_name(EXPERIMENT)
            exp_id = exp.experiment_id if exp is not None else self.client.create_experiment(EXPERIMENT)
            id_file = self.run_dir / _RUN_ID_FILE
            if id_file.exists():  # a resumed run goes on logging into the same MLflow run
                self.run_id = id_file.read_text().strip()
                self.client.update_run(self.run_id, status="RUNNING")
            else:
                run = self.client.create_run(exp_id, run_name=self.run_name)
                self.run_id = run.info.run_id
                id_file.write_text(self.run_id + "\n")
                params = [Param(k, v[:500]) for k, v in _flatten(self.params).items()]
                for i in range(0, len(params), 100):
                    self.client.log_batch(self.run_id, params=params[i:i + 100])
        if self.use_tb:
            require("tensorboard", "tracking", "TensorBoard tracking")
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.run_dir / TENSORBOARD_DIR))

    # ------------------------------------------------------------------ logging

    def _scalar(self, key: str, value: float | None, step: int) -> None:
        if value is None:
            return
        value = float(value)
        if self.client is not None:
            from mlflow.entities import Metric

            self._pending.append(Metric(key, value, int(time.time() * 1000), int(step)))
        if self.writer is not None:
            self.writer.add_scalar(key, value, int(step))

    def flush(self) -> None:
        if self.client is not None and self._pending:
            for i in range(0, len(self._pending), 1000):
                self.client.log_batch(self.run_id, metrics=self._pending[i:i + 1000])
            self._pending = []
        if self.writer is not None:
            self.writer.flush()

    def on_stream_start(self, ctx, result) -> None:
        self._result = result
        self._curves_sent = len(result.curves)
        self._log_every = int(getattr(ctx.config, "log_every", 0) or 0)

    def on_step_end(self, ctx, loss: float) -> None:
        if self._log_every and ctx.step % self._log_every == 0:
            self._scalar("train/loss", loss, ctx.global_step)

    def on_task_end(self, ctx, row: list[float]) -> None:
        result = self._result
        i = len(result.accuracy) - 1 if result is not None else ctx.phase
        for j, acc in enumerate(row):
            self._scalar(f"accuracy/task_{j}", acc, i)
        learned = result.row_tasks[i] if result is not None and i < len(result.row_tasks) else range(i + 1)
        seen = [row[j] for j in learned if row[j] is not None]
        if seen:
            self._scalar("accuracy/average_seen", sum(seen) / len(seen), i)
        if result is not None:
            for c in result.curves[self._curves_sent:]:
                self._scalar(f"curve/task_{c['eval_task']}", c["accuracy"], c["step"])
            self._curves_sent = len(result.curves)
        self.flush()

    def on_stream_end(self, ctx, result) -> None:
        matrix = [list(r) for r in result.accuracy]
        if self.client is not None:
            self.client.log_dict(self.run_id, {"task_names": result.task_names, "accuracy_matrix": matrix,
                                               "row_tasks": result.row_tasks}, "accuracy_matrix.json")
        if self.writer is not None and matrix:
            head = "| after \\ on | " + " | ".join(result.task_names) + " |"
            sep = "|---" * (len(result.task_names) + 1) + "|"
            rows = [f"| {i} | " + " | ".join(f"{v:.4f}" for v in r) + " |" for i, r in enumerate(matrix)]
            self.writer.add_text("accuracy_matrix", "\n".join([head, sep, *rows]), len(matrix) - 1)
        self.flush()

    def log_summary(self, metrics: dict[str, Any]) -> None:
        """The final summary metrics (step = number of rows of the matrix)."""
        step = len(metrics.get("accuracy_matrix") or []) or 0
        for key in SUMMARY:
            v = metrics.get(key)
            if isinstance(v, (int, float)):
                self._scalar(f"summary/{key}", v, step)
        self.flush()

    def close(self, ok: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        self.flush()
        if self.client is not None:
            self.client.set_terminated(self.run_id, status="FINISHED" if ok else "KILLED")
        if self.writer is not None:
            self.writer.close()
