r"""Continual-learning metrics: pure functions over an accuracy matrix.

Notation (shared by every docstring below)
------------------------------------------

* :math:`R` is the accuracy matrix, ``R[i][j]`` = accuracy on task :math:`j`
  measured after training row :math:`i` (see :class:`lifelong.engine.result.RunResult`).
  It has :math:`N` rows and :math:`T` columns; :math:`N \le T` for a sequential
  stream (fewer rows when a run stopped early), :math:`N = 1` for joint training.
* ``row_tasks[i]`` is the set :math:`L_i` of tasks learned by the time row
  :math:`i` was measured. When it is not given, the stream is taken to be
  sequential: :math:`L_i = \{0, \dots, i\}`.
* :math:`\ell_j = \min\{i : j \in L_i\}` is the row at which task :math:`j` was
  first learned; a task that appears in no :math:`L_i` was *never learned* and
  takes part in no metric (its column is still shown in tables and plots).
* :math:`n = N - 1` is the last row; :math:`P = \{j \in L_n : \ell_j < n\}` are
  the tasks learned *before* the last row (the ones that had a chance to be
  forgotten).
* :math:`b_j` is the accuracy of the untrained model on task :math:`j`.

For a full sequential stream these definitions reduce exactly to the textbook
formulas quoted in each function (GEM, Lopez-Paz & Ranzato 2017; RWalk,
Chaudhry et al. 2018).

Edge cases (the same in every function)
---------------------------------------

* An empty matrix (no rows, or no columns) raises :class:`~lifelong.errors.DataError`;
  so do ragged rows and a ``row_tasks`` list whose length differs from the number
  of rows or that names a column that does not exist.
* A metric that is *undefined* for the run returns ``None``, never NaN and never
  a made-up 0.0: forgetting and backward transfer when :math:`P` is empty (one
  task, or joint training's single row), forward transfer when no task was
  learned after the first row or no baseline was recorded. ``None`` is
  written as ``null`` in JSON, ``NULL`` in the run index and "—" in tables.
* Missing cells (``None`` or NaN, e.g. a task that was not evaluated) are
  allowed. The final accuracy of a learned task is required by
  :func:`average_accuracy` (missing -> DataError naming the cell); the other
  metrics leave out a task whose needed cells are missing, and the max over
  history in :func:`forgetting` ignores missing rows.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from lifelong.errors import DataError
from lifelong.registry import Registry

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.result import RunResult

#: name -> metric function, for configs and ``lifelong list``
METRICS: Registry = Registry("metric")

MatrixLike = Any  # list of lists of float/None, or a 2-D numpy array
RowTasks = Sequence[Sequence[int]] | None


# --------------------------------------------------------------------------- helpers


def as_matrix(accuracy: MatrixLike) -> np.ndarray:
    """Validate ``accuracy`` and return it as a float array (missing cells -> NaN)."""
    if isinstance(accuracy, np.ndarray):
        arr = accuracy.astype(float)
        if arr.ndim != 2:
            raise DataError(f"accuracy matrix must be 2-D (rows x tasks); got an array of shape {arr.shape}.")
    else:
        rows = list(accuracy) if accuracy is not None else []
        if rows and any(not isinstance(r, (Sequence, np.ndarray)) or isinstance(r, str) for r in rows):
            raise DataError("accuracy matrix must be a list of rows (lists of numbers), one row per evaluation.")
        widths = {len(r) for r in rows}
        if len(widths) > 1:
            raise DataError(
                f"accuracy matrix rows have different lengths {sorted(widths)}; every row needs one value per task "
                "(use None for a task that was not evaluated)."
            )
        try:
            arr = np.array([[math.nan if v is None else float(v) for v in r] for r in rows], dtype=float)
        except (TypeError, ValueError) as exc:
            raise DataError(f"accuracy matrix must hold numbers or None: {exc}.") from None
        if arr.ndim != 2:
            arr = arr.reshape(len(rows), 0)
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise DataError(
            f"accuracy matrix is empty (shape {arr.shape[0]} x {arr.shape[1] if arr.ndim == 2 else 0}): "
            "no task was evaluated, so there is nothing to assess. A run writes one row after each task it finishes."
        )
    return arr


def learned_sets(accuracy: MatrixLike, row_tasks: RowTasks = None) -> list[list[int]]:
    """The tasks learned by each row: ``row_tasks`` validated, or the sequential default ``[0..i]``."""
    arr = as_matrix(accuracy)
    n_rows, n_tasks = arr.shape
    if row_tasks is None or len(row_tasks) == 0:
        if n_rows > n_tasks:
            raise DataError(
                f"accuracy matrix has {n_rows} rows but only {n_tasks} tasks; pass row_tasks to say which tasks "
                "each row had learned."
            )
        return [list(range(i + 1)) for i in range(n_rows)]
    if len(row_tasks) != n_rows:
        raise DataError(f"row_tasks has {len(row_tasks)} entries but the accuracy matrix has {n_rows} rows; give one per row.")
    out = []
    for i, tasks in enumerate(row_tasks):
        idx = sorted({int(t) for t in tasks})
        bad = [t for t in idx if not 0 <= t < n_tasks]
        if bad:
            raise DataError(f"row_tasks[{i}] names task {bad[0]}, but task indices run from 0 to {n_tasks - 1}.")
        out.append(idx)
    return out


def first_learned(accuracy: MatrixLike, row_tasks: RowTasks = None) -> list[int | None]:
    r"""For each task :math:`j`, the row :math:`\ell_j` where it was first learned (None if never)."""
    sets = learned_sets(accuracy, row_tasks)
    n_tasks = as_matrix(accuracy).shape[1]
    first: list[int | None] = [None] * n_tasks
    for i, tasks in enumerate(sets):
        for t in tasks:
            if first[t] is None:
                first[t] = i
    return first


def _mean(values: list[float]) -> float | None:
    return float(sum(values) / len(values)) if values else None


def _present(x: float) -> bool:
    return not math.isnan(x)


# --------------------------------------------------------------------------- accuracy


@METRICS.register("average_accuracy")
def average_accuracy(accuracy: MatrixLike, row_tasks: RowTasks = None) -> float:
    r"""Average accuracy at the end of the run over the tasks learned by then.

    .. math:: \mathrm{ACC} = \frac{1}{|L_n|} \sum_{j \in L_n} R_{n,j}

    For a full sequential stream this is GEM's ACC,
    :math:`\frac{1}{T}\sum_{i=1}^{T} R_{T,i}` (Lopez-Paz & Ranzato, "Gradient
    Episodic Memory for Continual Learning", NeurIPS 2017). Tasks not yet
    learned (a stopped run) are not averaged in. Raises DataError if the last
    row is missing a learned task's accuracy or learned no task at all.
    """
    return _row_average(as_matrix(accuracy), learned_sets(accuracy, row_tasks), -1)


def _row_average(arr: np.ndarray, sets: list[list[int]], i: int) -> float:
    i = i % arr.shape[0]
    tasks = sets[i]
    if not tasks:
        raise DataError(f"row {i} of the accuracy matrix has no learned tasks (row_tasks[{i}] is empty).")
    missing = [j for j in tasks if not _present(arr[i, j])]
    if missing:
        raise DataError(
            f"accuracy[{i}][{missing[0]}] is missing, but task {missing[0]} had been learned by row {i}; "
            "every learned task must be evaluated."
        )
    return float(np.mean(arr[i, tasks]))


@METRICS.register("average_accuracy_curve")
def average_accuracy_curve(accuracy: MatrixLike, row_tasks: RowTasks = None) -> list[float]:
    r"""Average accuracy after each row: :math:`A_i = \frac{1}{|L_i|}\sum_{j \in L_i} R_{i,j}`.

    The curve whose last point is :func:`average_accuracy` ("average incremental
    accuracy" when averaged, Rebuffi et al., "iCaRL", CVPR 2017).
    """
    arr = as_matrix(accuracy)
    sets = learned_sets(arr, row_tasks)
    return [_row_average(arr, sets, i) for i in range(arr.shape[0])]


# --------------------------------------------------------------------------- forgetting and transfer


@METRICS.register("per_task_forgetting")
def per_task_forgetting(accuracy: MatrixLike, row_tasks: RowTasks = None) -> list[float | None]:
    r"""Forgetting of each task at the end of the run (None where undefined).

    .. math:: f_j = \max_{\ell_j \le l < n} R_{l,j} - R_{n,j}, \qquad j \in P

    Chaudhry et al., "Riemannian Walk for Incremental Learning: Understanding
    Forgetting and Intransigence", ECCV 2018, define
    :math:`f_j^k = \max_{l \in \{1..k-1\}} a_{l,j} - a_{k,j}`. We take the max only
    over rows from the one where :math:`j` was learned onwards: accuracy before a
    task was learned is not knowledge that can be forgotten (this matters only
    when untrained accuracy is above chance, e.g. zero-shot language models).
    Positive = forgotten, negative = improved after learning. ``None`` for a task
    never learned, learned in the last row, or whose final value is missing.
    """
    arr = as_matrix(accuracy)
    first = first_learned(arr, row_tasks)
    n = arr.shape[0] - 1
    final_tasks = set(learned_sets(arr, row_tasks)[n])
    out: list[float | None] = []
    for j, lj in enumerate(first):
        if lj is None or lj >= n or j not in final_tasks or not _present(arr[n, j]):
            out.append(None)
            continue
        history = [v for v in arr[lj:n, j] if _present(v)]
        out.append(float(max(history) - arr[n, j]) if history else None)
    return out


@METRICS.register("forgetting")
def forgetting(accuracy: MatrixLike, row_tasks: RowTasks = None) -> float | None:
    r"""Average forgetting over the tasks learned before the last one.

    .. math:: F = \frac{1}{|P|} \sum_{j \in P} f_j

    with :math:`f_j` from :func:`per_task_forgetting`; for a full sequential
    stream :math:`F_T = \frac{1}{T-1}\sum_{j=1}^{T-1} f_j^T` (Chaudhry et al.,
    ECCV 2018). ``None`` when no task was learned before the last row (a
    single task, or joint training).
    """
    return _mean([f for f in per_task_forgetting(accuracy, row_tasks) if f is not None])


@METRICS.register("backward_transfer")
def backward_transfer(accuracy: MatrixLike, row_tasks: RowTasks = None) -> float | None:
    r"""Backward transfer: how learning later tasks changed earlier ones.

    .. math:: \mathrm{BWT} = \frac{1}{|P|} \sum_{j \in P} \left(R_{n,j} - R_{\ell_j,j}\right)

    For a full sequential stream, GEM's
    :math:`\frac{1}{T-1}\sum_{i=1}^{T-1} (R_{T,i} - R_{i,i})` (Lopez-Paz &
    Ranzato, NeurIPS 2017). Negative = forgetting. ``None`` when :math:`P` is
    empty.
    """
    arr = as_matrix(accuracy)
    first = first_learned(arr, row_tasks)
    n = arr.shape[0] - 1
    final_tasks = set(learned_sets(arr, row_tasks)[n])
    diffs = [
        float(arr[n, j] - arr[lj, j])
        for j, lj in enumerate(first)
        if lj is not None and lj < n and j in final_tasks and _present(arr[n, j]) and _present(arr[lj, j])
    ]
    return _mean(diffs)


@METRICS.register("forward_transfer")
def forward_transfer(
    accuracy: MatrixLike, baseline: Sequence[float | None] | None, row_tasks: RowTasks = None
) -> float | None:
    r"""Forward transfer: how earlier tasks helped a task before it was trained on.

    .. math:: \mathrm{FWT} = \frac{1}{|Q|} \sum_{j \in Q} \left(R_{\ell_j - 1,j} - b_j\right),
              \qquad Q = \{j : \ell_j \ge 1\}

    For a full sequential stream, GEM's
    :math:`\frac{1}{T-1}\sum_{i=2}^{T} (R_{i-1,i} - b_i)` (Lopez-Paz & Ranzato,
    NeurIPS 2017), with :math:`b` the untrained model's accuracies. ``None``
    when no baseline was recorded or no task was learned after the first row
    (one task, joint training). Tasks with a missing cell are left out.
    """
    arr = as_matrix(accuracy)
    if baseline is None or len(baseline) == 0:
        return None
    if len(baseline) != arr.shape[1]:
        raise DataError(f"baseline has {len(baseline)} values but the accuracy matrix has {arr.shape[1]} tasks; give one per task.")
    b = np.array([math.nan if v is None else float(v) for v in baseline])
    first = first_learned(arr, row_tasks)
    diffs = [
        float(arr[lj - 1, j] - b[j])
        for j, lj in enumerate(first)
        if lj is not None and lj >= 1 and _present(arr[lj - 1, j]) and _present(b[j])
    ]
    return _mean(diffs)


@METRICS.register("per_task_plasticity")
def per_task_plasticity(accuracy: MatrixLike, row_tasks: RowTasks = None) -> list[float | None]:
    r"""Accuracy on each task right after it was learned, :math:`R_{\ell_j,j}` (the diagonal).

    A low value means the learner could not acquire the task (intransigence,
    Chaudhry et al., ECCV 2018); ``None`` for a task never learned or not evaluated.
    """
    arr = as_matrix(accuracy)
    return [
        None if lj is None or not _present(arr[lj, j]) else float(arr[lj, j])
        for j, lj in enumerate(first_learned(arr, row_tasks))
    ]


@METRICS.register("plasticity")
def plasticity(accuracy: MatrixLike, row_tasks: RowTasks = None) -> float | None:
    r"""Mean accuracy right after learning: :math:`\frac{1}{|L|}\sum_{j \in L} R_{\ell_j,j}`.

    :math:`L` = tasks ever learned. Compared with :func:`average_accuracy` it
    separates "could not learn" from "learned, then forgot". ``None`` if no
    learned task was evaluated.
    """
    return _mean([p for p in per_task_plasticity(accuracy, row_tasks) if p is not None])


# --------------------------------------------------------------------------- curves, time, memory


def _curve_area(points: list[tuple[float, float]]) -> float:
    points = sorted(points)
    if len(points) == 1 or points[-1][0] == points[0][0]:
        return float(np.mean([a for _, a in points]))
    xs = np.array([s for s, _ in points], dtype=float)
    ys = np.array([a for _, a in points], dtype=float)
    area = float(np.sum((xs[1:] - xs[:-1]) * (ys[1:] + ys[:-1]) / 2.0))
    return area / float(xs[-1] - xs[0])


@METRICS.register("per_task_learning_curve_area")
def per_task_learning_curve_area(curves: Sequence[dict[str, Any]]) -> dict[int, float]:
    r"""Normalised area under each task's learning curve, while that task was trained.

    For task :math:`k`, take the points :math:`(s, a)` of ``curves`` with
    ``task == eval_task == k`` (accuracy on the task being learned, at step
    :math:`s`) and integrate with the trapezoid rule over the steps spent on it:

    .. math:: \mathrm{AULC}_k = \frac{1}{s_{max} - s_{min}} \int_{s_{min}}^{s_{max}} a(s)\,ds

    i.e. the mean accuracy during learning (1 = learned instantly). This is
    the idea of the Learning Curve Area of Chaudhry et al., "Efficient Lifelong
    Learning with A-GEM", ICLR 2019, measured on the recorded evaluation
    points instead of the first :math:`\beta` mini-batches. One point -> its
    accuracy. Tasks without points are absent from the dict.
    """
    by_task: dict[int, list[tuple[float, float]]] = {}
    for row in curves:
        try:
            task, eval_task, step, acc = row["task"], row["eval_task"], row["step"], row["accuracy"]
        except KeyError as exc:
            raise DataError(f"learning-curve row {row!r} lacks the key {exc}; rows need step, task, eval_task, accuracy.") from None
        if acc is None or eval_task != task or (isinstance(acc, float) and math.isnan(acc)):
            continue
        by_task.setdefault(int(task), []).append((float(step), float(acc)))
    return {k: _curve_area(v) for k, v in sorted(by_task.items())}


@METRICS.register("learning_curve_area")
def learning_curve_area(curves: Sequence[dict[str, Any]]) -> float | None:
    """Mean over tasks of :func:`per_task_learning_curve_area` (None when there are no curves)."""
    return _mean(list(per_task_learning_curve_area(curves).values()))


@METRICS.register("steps_to_target")
def steps_to_target(curves: Sequence[dict[str, Any]], target: float,
                    task_steps: Sequence[int] | None = None) -> dict[int, int | None]:
    r"""Training steps each task needed to first reach accuracy ``target`` on itself.

    For task :math:`k`, the first learning-curve point with ``task == eval_task
    == k`` and accuracy :math:`\ge` ``target``; its step is counted from the
    start of task :math:`k`'s training when ``task_steps`` (steps per task, in
    order) is given, else it is the run's global step. ``None`` = never reached
    while the task was trained; tasks without curve points are absent. The
    resolution is the evaluation cadence (``eval_every``). A sample-efficiency
    measure in the spirit of the "steps to target" comparisons of curriculum
    studies (e.g. Wu et al., "When Do Curricula Work?", ICLR 2021).
    """
    starts = None
    if task_steps is not None:
        starts = [0]
        for n in task_steps:
            starts.append(starts[-1] + int(n))
    out: dict[int, int | None] = {}
    for row in sorted(curves, key=lambda r: r["step"]):
        k = int(row["task"])
        if row["eval_task"] != k or row["accuracy"] is None:
            continue
        out.setdefault(k, None)
        if out[k] is None and float(row["accuracy"]) >= target:
            start = starts[k] if starts is not None and k < len(starts) else 0
            out[k] = int(row["step"]) - start
    return out


@METRICS.register("time_summary")
def time_summary(result: "RunResult") -> dict[str, Any]:
    r"""Time spent: total wall clock, training time (:math:`\sum_k` task_seconds), assessment time
    (quizzes, learning curves, score refreshes, memory updates and task-end rows) and per task."""
    per_task = [float(s) for s in result.task_seconds]
    assess = [float(s) for s in getattr(result, "assessment_seconds", [])]
    return {
        "wall_seconds": float(result.wall_seconds),
        "train_seconds": float(sum(per_task)),
        "assessment_seconds": float(sum(assess)),
        "mean_task_seconds": _mean(per_task),
        "task_seconds": per_task,
        "task_assessment_seconds": assess,
    }


MB = 1024 * 1024


@METRICS.register("memory_summary")
def memory_summary(result: "RunResult") -> dict[str, Any]:
    """Peak memory in MiB (2**20 bytes): the maximum over tasks, and per task (None if not recorded)."""
    per_task = [float(b) / MB for b in result.task_peak_memory]
    return {"peak_memory_mb": max(per_task) if per_task else None, "task_peak_memory_mb": per_task}


# --------------------------------------------------------------------------- the standard summary

#: keys of the dict returned by :func:`summarize`, in display order
SUMMARY_KEYS = ("average_accuracy", "forgetting", "bwt", "fwt", "plasticity", "wall_seconds", "peak_memory_mb", "steps")


def summarize(result: "RunResult") -> dict[str, Any]:
    """The standard summary of a run used by the run store, the index, tables and reports.

    Keys (``SUMMARY_KEYS``): ``average_accuracy``, ``forgetting``, ``bwt``,
    ``fwt``, ``plasticity`` (see the functions of the same meaning above; any
    may be None when undefined, as documented there), ``wall_seconds`` (total
    wall clock), ``peak_memory_mb`` (max over tasks, MiB; None when not
    recorded) and ``steps`` (optimiser steps over all tasks). Raises
    DataError when the run has no accuracy matrix yet.
    """
    acc, rt = result.accuracy, result.row_tasks or None
    return {
        "average_accuracy": average_accuracy(acc, rt),
        "forgetting": forgetting(acc, rt),
        "bwt": backward_transfer(acc, rt),
        "fwt": forward_transfer(acc, result.baseline, rt),
        "plasticity": plasticity(acc, rt),
        "wall_seconds": float(result.wall_seconds),
        "peak_memory_mb": memory_summary(result)["peak_memory_mb"],
        "steps": int(sum(result.task_steps)),
    }
