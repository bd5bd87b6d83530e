"""Scenario builders: turn any labelled dataset into a :class:`~lifelong.data.task.Stream`.

Three ways of cutting one dataset into a sequence of lessons cover most of the
continual-learning literature:

* :func:`split_by_classes` -- each task brings new classes (Split MNIST,
  Split CIFAR, class-incremental learning);
* :func:`permuted` -- every task is the whole dataset seen through its own
  fixed permutation of the input features (Permuted MNIST, domain-incremental);
* :func:`by_group` -- one task per value of a column the user supplies
  (a domain, a skill, a source...).

Inputs may be a torch ``Dataset`` whose items are ``(x, y, ...)``, a pair
``(x, y)`` of tensors or numpy arrays, or inputs with separate ``targets``.
A test set may be given; otherwise a seeded, stratified ``test_fraction`` of the
data is held out. Floating inputs become float32 and labels int64. Extra
per-sample columns (``difficulty``, ``group``...) passed as ``extra`` (a dict of
arrays aligned with the data) ride along as further fields of each task's
``train`` (and, when given or split off, ``test``) :class:`Examples`.

All randomness comes from ``seed`` through independent numpy generators, so the
same arguments always give identical tensors, and adding tasks to a permuted
stream does not change the permutations of the earlier ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence, Union

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset, TensorDataset

from lifelong.data.examples import Examples
from lifelong.data.task import SCENARIOS, Stream, Task
from lifelong.errors import ConfigError, DataError

ArrayLike = Union[Tensor, np.ndarray, Sequence[Any]]
#: A labelled data source: a ``Dataset`` of ``(x, y, ...)`` items, a pair ``(x, y)``, or inputs alone
#: (then ``targets`` is required).
DataSource = Union[Dataset, tuple, ArrayLike]

#: Field names the library uses itself; extra columns may not take them.
RESERVED_FIELDS = ("x", "y", "task")
_GROUP = "__group__"  # temporary column carrying group codes through the split

# Independent random streams derived from one seed (see _rng).
_SPLIT, _CLASS_ORDER, _PERMUTATION = 0, 1, 2


class BuilderArgumentError(DataError, ConfigError):
    """An argument value does not fit the data (e.g. 10 classes cannot make 3 tasks).

    It is both a :class:`DataError` (the builder's contract) and a
    :class:`ConfigError` (the value usually comes from a benchmark config).
    """


def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *stream])


# ----------------------------------------------------------------------------
# Coercion of user data
# ----------------------------------------------------------------------------


def _as_tensor(value: Any, what: str) -> Tensor:
    if isinstance(value, Tensor):
        return value.detach()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise DataError(f"{what} could not be read as an array ({exc}); give a tensor or a numpy array.") from None
    if arr.dtype.kind not in "biuf":
        raise DataError(
            f"{what} has dtype {arr.dtype}; give numbers (a tensor or numeric numpy array), "
            "e.g. encode strings as integer codes first."
        )
    return torch.from_numpy(np.ascontiguousarray(arr))


def _inputs(value: Any, what: str) -> Tensor:
    t = _as_tensor(value, what)
    if t.dim() == 0:
        raise DataError(f"{what} is a scalar; give one row per example.")
    return t.float() if t.is_floating_point() else t


def _labels(value: Any, what: str) -> Tensor:
    t = _as_tensor(value, what)
    if t.dim() == 2 and t.shape[1] == 1:
        t = t[:, 0]
    if t.dim() != 1:
        raise DataError(f"{what} has shape {tuple(t.shape)}; labels must be one integer per example, shape (N,).")
    if t.is_floating_point():
        if not bool(torch.all(t == torch.round(t))):
            raise DataError(f"{what} holds non-integer values; labels must be integer class ids.")
    t = t.long()
    if t.numel() and int(t.min()) < 0:
        raise DataError(f"{what} holds negative labels (min {int(t.min())}); labels must be class ids >= 0.")
    return t


def _column(value: Any, what: str) -> Tensor:
    t = _as_tensor(value, what)
    if t.dim() == 0:
        raise DataError(f"{what} is a scalar; give one value per example.")
    return t.float() if t.is_floating_point() else t


@dataclass
class _Labelled:
    """Inputs, labels and extra columns, row-aligned."""

    x: Tensor
    y: Tensor
    extra: dict[str, Tensor]

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def take(self, index: Tensor) -> "_Labelled":
        return _Labelled(self.x[index], self.y[index], {k: v[index] for k, v in self.extra.items()})

    def examples(self, **override: Tensor) -> Examples:
        fields = {"x": self.x, "y": self.y, **self.extra}
        fields.update(override)
        return Examples(fields)


def _dataset_arrays(data: Dataset, what: str) -> tuple[Tensor, Tensor]:
    if isinstance(data, TensorDataset):
        if len(data.tensors) < 2:
            raise DataError(f"{what} is a TensorDataset with {len(data.tensors)} tensor(s); it needs inputs and labels.")
        return data.tensors[0], data.tensors[1]
    try:
        n = len(data)  # type: ignore[arg-type]
    except TypeError:
        raise DataError(f"{what} is a Dataset without a length; give a map-style Dataset or arrays.") from None
    if n == 0:
        raise DataError(f"{what} is empty; give at least one example.")
    xs, ys = [], []
    for i in range(n):
        item = data[i]
        if not isinstance(item, (tuple, list)) or len(item) < 2:
            raise DataError(
                f"{what}[{i}] is a {type(item).__name__}; Dataset items must be (x, y) pairs (tensors or arrays)."
            )
        xs.append(_as_tensor(item[0], f"{what}[{i}] input"))
        ys.append(int(item[1]))
    try:
        x = torch.stack(xs)
    except RuntimeError:
        raise DataError(f"{what} items have inputs of different shapes; all inputs must share one shape.") from None
    return x, torch.tensor(ys, dtype=torch.long)


def _coerce(data: Any, targets: Any, extra: Mapping[str, Any] | None, what: str) -> _Labelled:
    """Read a data source (Dataset, (x, y) pair, or inputs + targets) into tensors."""
    if isinstance(data, Dataset) and targets is None:
        x, y = _dataset_arrays(data, what)
    elif targets is None:
        if isinstance(data, (tuple, list)) and len(data) == 2 and all(
            isinstance(p, (Tensor, np.ndarray, list, tuple)) for p in data
        ):
            x, y = data
        else:
            raise DataError(
                f"{what} has no labels: give a Dataset of (x, y) items, an (x, y) pair, or inputs with targets=..."
            )
    else:
        x, y = data, targets
    xt = _inputs(x, f"{what} inputs")
    yt = _labels(y, f"{what} labels")
    if xt.shape[0] != yt.shape[0]:
        raise DataError(f"{what} has {xt.shape[0]} inputs but {yt.shape[0]} labels; give one label per input.")
    if yt.shape[0] == 0:
        raise DataError(f"{what} is empty; give at least one example.")
    cols: dict[str, Tensor] = {}
    for name, value in (extra or {}).items():
        if name in RESERVED_FIELDS:
            raise DataError(
                f"extra column '{name}' of {what} uses a reserved field name; "
                f"rename it (reserved: {', '.join(RESERVED_FIELDS)})."
            )
        col = _column(value, f"extra column '{name}' of {what}")
        if col.shape[0] != yt.shape[0]:
            raise DataError(
                f"extra column '{name}' of {what} has {col.shape[0]} rows but the data has {yt.shape[0]}; "
                "give one value per example."
            )
        cols[str(name)] = col
    return _Labelled(xt, yt, cols)


# ----------------------------------------------------------------------------
# Stratified splitting
# ----------------------------------------------------------------------------


def stratified_split(
    keys: ArrayLike,
    test_fraction: float | None = None,
    *,
    test_size: int | None = None,
    seed: int = 0,
) -> tuple[Tensor, Tensor]:
    """Split row indices into (train, test), keeping each key's share in both parts.

    ``keys`` is one stratum per row (usually the label). Give ``test_fraction``
    (in (0, 1)) or an absolute ``test_size``. Each stratum gets its
    proportional share of the test rows (largest remainders), and a stratum
    with two or more rows keeps at least one row on each side. Returns two
    sorted LongTensors (original order preserved within each part).
    """
    k = _as_tensor(keys, "stratification keys").reshape(-1).long().numpy()
    n = k.shape[0]
    if (test_fraction is None) == (test_size is None):
        raise BuilderArgumentError("give exactly one of test_fraction (in (0, 1)) or test_size (a row count).")
    if test_size is None:
        frac = float(test_fraction)  # type: ignore[arg-type]
        if not 0.0 < frac < 1.0:
            raise BuilderArgumentError(f"test_fraction={test_fraction!r} must lie strictly between 0 and 1.")
        n_test = int(round(frac * n))
    else:
        n_test = int(test_size)
        if not 0 < n_test < n:
            raise BuilderArgumentError(f"test_size={test_size!r} must lie between 1 and {n - 1} (the data has {n} rows).")
    rng = _rng(seed, _SPLIT)
    values, inverse, counts = np.unique(k, return_inverse=True, return_counts=True)
    exact = counts * (n_test / max(n, 1))
    quota = np.floor(exact).astype(np.int64)
    rest = n_test - int(quota.sum())
    if rest > 0:
        # Largest remainders first; ties broken by the seeded generator, not by key order.
        order = np.lexsort((rng.random(len(values)), -(exact - quota)))
        quota[order[:rest]] += 1
    many = counts >= 2
    quota[many] = np.clip(quota[many], 1, counts[many] - 1)
    quota[~many] = 0
    test_mask = np.zeros(n, dtype=bool)
    for j in range(len(values)):
        rows = np.flatnonzero(inverse == j)
        if quota[j]:
            test_mask[rng.permutation(rows)[: quota[j]]] = True
    return torch.from_numpy(np.flatnonzero(~test_mask)), torch.from_numpy(np.flatnonzero(test_mask))


def _train_test(
    train: _Labelled,
    test: _Labelled | None,
    test_fraction: float,
    seed: int,
    strata: Tensor | None = None,
) -> tuple[_Labelled, _Labelled]:
    """Use the given test set, or hold out a seeded stratified ``test_fraction`` of ``train``."""
    if test is not None:
        if tuple(test.x.shape[1:]) != tuple(train.x.shape[1:]):
            raise DataError(
                f"test inputs have shape {tuple(test.x.shape[1:])} but training inputs have "
                f"{tuple(train.x.shape[1:])}; both must share one input shape."
            )
        return train, test
    tr, te = stratified_split(train.y if strata is None else strata, test_fraction, seed=seed)
    return train.take(tr), train.take(te)


def _read(
    data: Any, targets: Any, test: Any, extra: Mapping[str, Any] | None, test_extra: Mapping[str, Any] | None
) -> tuple[_Labelled, _Labelled | None]:
    train = _coerce(data, targets, extra, "data")
    if test is None:
        if test_extra:
            raise DataError("test_extra was given without a test set; put the columns in extra (they are split with the data).")
        return train, None
    return train, _coerce(test, None, test_extra, "test")


def _check_scenario(scenario: str, allowed: Sequence[str] = SCENARIOS) -> str:
    if scenario not in allowed:
        raise BuilderArgumentError(f"scenario={scenario!r} is not supported here; choose one of: {', '.join(allowed)}.")
    return scenario


def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise BuilderArgumentError(f"{name}={value!r} must be a positive integer.")
    return int(value)


def _names(task_names: Sequence[str] | None, default: list[str]) -> list[str]:
    if task_names is None:
        return default
    names = [str(n) for n in task_names]
    if len(names) != len(default):
        raise BuilderArgumentError(f"task_names has {len(names)} names but the stream has {len(default)} tasks.")
    if len(set(names)) != len(names):
        raise BuilderArgumentError(f"task_names {names} has duplicates; every task needs its own name.")
    return names


# ----------------------------------------------------------------------------
# Split by classes
# ----------------------------------------------------------------------------


def _class_order(available: list[int], class_order: Any, seed: int) -> list[int]:
    if class_order is None or class_order == "shuffle":
        return [available[i] for i in _rng(seed, _CLASS_ORDER).permutation(len(available))]
    if class_order == "sorted":
        return list(available)
    if isinstance(class_order, str):
        raise BuilderArgumentError(
            f"class_order={class_order!r} is not understood; give 'sorted', 'shuffle' (seeded), or a list of classes."
        )
    try:
        order = [int(c) for c in class_order]
    except (TypeError, ValueError):
        raise BuilderArgumentError(f"class_order={class_order!r} must be a list of integer class ids.") from None
    dupes = sorted({c for c in order if order.count(c) > 1})
    if dupes:
        raise BuilderArgumentError(f"class_order lists classes {dupes} more than once; list each class once.")
    unknown = [c for c in order if c not in set(available)]
    if unknown:
        raise BuilderArgumentError(
            f"class_order lists classes {unknown} that are not in the data; the data has classes {available}."
        )
    return order


def _task_sizes(n_classes: int, n_tasks: Any, classes_per_task: Any) -> list[int]:
    if classes_per_task is not None and not isinstance(classes_per_task, (int, np.integer)):
        try:
            sizes = [_check_positive_int(s, "each entry of classes_per_task") for s in classes_per_task]
        except TypeError:
            raise BuilderArgumentError(
                f"classes_per_task={classes_per_task!r} must be an integer or a list of integers."
            ) from None
        if n_tasks is not None and _check_positive_int(n_tasks, "n_tasks") != len(sizes):
            raise BuilderArgumentError(
                f"n_tasks={n_tasks} disagrees with classes_per_task={list(sizes)} ({len(sizes)} tasks); give one of them."
            )
    elif classes_per_task is not None:
        cpt = _check_positive_int(classes_per_task, "classes_per_task")
        if n_tasks is None:
            if n_classes % cpt:
                raise BuilderArgumentError(
                    f"{n_classes} classes cannot be split into tasks of classes_per_task={cpt}; "
                    f"choose a divisor of {n_classes}, or also give n_tasks to use only the first n_tasks*{cpt} classes."
                )
            sizes = [cpt] * (n_classes // cpt)
        else:
            sizes = [cpt] * _check_positive_int(n_tasks, "n_tasks")
    elif n_tasks is not None:
        nt = _check_positive_int(n_tasks, "n_tasks")
        if n_classes % nt:
            divisors = [d for d in range(1, n_classes + 1) if n_classes % d == 0]
            raise BuilderArgumentError(
                f"{n_classes} classes cannot be split evenly into n_tasks={nt} tasks; choose n_tasks in {divisors}, "
                "or give classes_per_task as a list of task sizes."
            )
        sizes = [n_classes // nt] * nt
    else:
        raise BuilderArgumentError("give n_tasks or classes_per_task to say how to split the classes into tasks.")
    if sum(sizes) > n_classes:
        raise BuilderArgumentError(
            f"{len(sizes)} tasks of {sizes if len(set(sizes)) > 1 else sizes[0]} classes need {sum(sizes)} classes "
            f"but only {n_classes} are available; lower n_tasks or classes_per_task."
        )
    return sizes


def split_by_classes(
    data: DataSource,
    targets: ArrayLike | None = None,
    *,
    test: DataSource | None = None,
    test_fraction: float = 0.2,
    n_tasks: int | None = None,
    classes_per_task: int | Sequence[int] | None = None,
    class_order: Sequence[int] | str | None = None,
    scenario: str = "class",
    seed: int = 0,
    extra: Mapping[str, ArrayLike] | None = None,
    test_extra: Mapping[str, ArrayLike] | None = None,
    name: str = "split",
    task_names: Sequence[str] | None = None,
) -> Stream:
    """Cut a labelled dataset into tasks of disjoint classes.

    Give ``n_tasks`` (the classes must divide evenly), ``classes_per_task``
    (an int, or a list of task sizes such as ``[5, 1, 1, 1, 1, 1]``), or both
    (then only the first ``n_tasks * classes_per_task`` classes of the order are
    used). ``class_order`` is a list of classes (it may name a subset),
    ``'sorted'``, or ``'shuffle'``/``None`` for a shuffle seeded by ``seed``.

    Scenarios: ``'class'`` (default) and ``'task'`` keep the labels' global
    values (the engine masks logits per scenario); ``'domain'`` relabels each
    task's classes to ``0..k-1`` in class-order position (Split MNIST "even vs
    odd"), which needs tasks of equal size; the original classes are in
    ``task.info['original_classes']``.
    """
    _check_scenario(scenario)
    train, test_l = _train_test(*_read(data, targets, test, extra, test_extra), test_fraction, seed)
    available = sorted(set(train.y.tolist()))
    order = _class_order(available, class_order, seed)
    sizes = _task_sizes(len(order), n_tasks, classes_per_task)
    if scenario == "domain" and len(set(sizes)) > 1:
        raise BuilderArgumentError(
            f"scenario='domain' relabels every task to the same classes, so tasks need equal sizes; got {sizes}."
        )
    groups, start = [], 0
    for s in sizes:
        groups.append(order[start : start + s])
        start += s
    names = _names(task_names, [f"task{i}" for i in range(len(groups))])
    tasks: list[Task] = []
    for i, cls in enumerate(groups):
        cls_t = torch.tensor(cls, dtype=torch.long)
        tr = train.take(torch.isin(train.y, cls_t).nonzero().squeeze(1))
        te = test_l.take(torch.isin(test_l.y, cls_t).nonzero().squeeze(1))
        info: dict[str, Any] = {"original_classes": list(cls)}
        if scenario == "domain":
            lut = torch.full((max(available + cls) + 1,), -1, dtype=torch.long)
            lut[cls_t] = torch.arange(len(cls))
            trex, teex = tr.examples(y=lut[tr.y]), te.examples(y=lut[te.y])
            classes = tuple(range(len(cls)))
        else:
            trex, teex = tr.examples(), te.examples()
            classes = tuple(sorted(cls))
        tasks.append(Task(names[i], trex, teex, classes, info))
    used = [c for g in groups for c in g]
    num_classes = sizes[0] if scenario == "domain" else max(used) + 1
    stream = Stream(
        name,
        tasks,
        scenario=scenario,  # type: ignore[arg-type]
        num_classes=num_classes,
        input_shape=tuple(train.x.shape[1:]),
        info={"builder": "split_by_classes", "class_order": order[: len(used)], "seed": seed},
    )
    return stream.validate()


# ----------------------------------------------------------------------------
# Permuted
# ----------------------------------------------------------------------------


def feature_permutation(num_features: int, seed: int, task: int) -> Tensor:
    """The seeded permutation of ``num_features`` flattened features used for task ``task``.

    It depends only on (seed, task), so a longer stream keeps the earlier tasks'
    permutations.
    """
    return torch.from_numpy(_rng(seed, _PERMUTATION, int(task)).permutation(int(num_features)))


def apply_permutation(x: Tensor, permutation: Tensor) -> Tensor:
    """Permute the flattened features of each row of ``x``: ``out.flat[j] = x.flat[permutation[j]]``."""
    flat = x.reshape(x.shape[0], -1)
    return flat[:, permutation].reshape(x.shape)


def permuted(
    data: DataSource,
    targets: ArrayLike | None = None,
    *,
    test: DataSource | None = None,
    test_fraction: float = 0.2,
    n_tasks: int = 10,
    first_unpermuted: bool = False,
    scenario: str = "domain",
    seed: int = 0,
    extra: Mapping[str, ArrayLike] | None = None,
    test_extra: Mapping[str, ArrayLike] | None = None,
    name: str = "permuted",
    task_names: Sequence[str] | None = None,
) -> Stream:
    """``n_tasks`` copies of the dataset, each with its own fixed feature permutation.

    Every feature of a sample (all pixels and channels, flattened) is permuted;
    the input shape is kept. The permutation of task ``t`` is in
    ``task.info['permutation']`` (a list of ints; invert it with ``argsort``).
    With ``first_unpermuted`` the first task sees the original inputs.

    Scenarios: ``'domain'`` (default: all tasks share one label set and one
    head), ``'task'`` (same labels, task identity known), or ``'class'`` (task
    ``t``'s labels are offset by ``t * C`` with ``C`` the number of label
    values, so every task brings new classes).
    """
    _check_scenario(scenario)
    n = _check_positive_int(n_tasks, "n_tasks")
    train, test_l = _train_test(*_read(data, targets, test, extra, test_extra), test_fraction, seed)
    base_classes = sorted(set(train.y.tolist()) | set(test_l.y.tolist()))
    c = max(base_classes) + 1
    d = int(np.prod(train.x.shape[1:])) if train.x.dim() > 1 else 1
    if d < 2:
        raise DataError(f"permuted needs inputs with at least 2 features; the inputs have shape {tuple(train.x.shape[1:])}.")
    names = _names(task_names, [f"perm{t}" for t in range(n)])
    tasks: list[Task] = []
    for t in range(n):
        if t == 0 and first_unpermuted:
            perm = torch.arange(d)
        else:
            perm = feature_permutation(d, seed, t)
        offset = t * c if scenario == "class" else 0
        trex = train.examples(x=apply_permutation(train.x, perm), y=train.y + offset)
        teex = test_l.examples(x=apply_permutation(test_l.x, perm), y=test_l.y + offset)
        classes = tuple(k + offset for k in base_classes)
        tasks.append(Task(names[t], trex, teex, classes, {"permutation": perm.tolist(), "permuted": not (t == 0 and first_unpermuted)}))
    stream = Stream(
        name,
        tasks,
        scenario=scenario,  # type: ignore[arg-type]
        num_classes=c * n if scenario == "class" else c,
        input_shape=tuple(train.x.shape[1:]),
        info={"builder": "permuted", "seed": seed, "first_unpermuted": bool(first_unpermuted)},
    )
    return stream.validate()


# ----------------------------------------------------------------------------
# By group
# ----------------------------------------------------------------------------


def _group_values(groups: Any, extra: Mapping[str, Any] | None, n: int, what: str) -> np.ndarray:
    if isinstance(groups, str):
        if not extra or groups not in extra:
            raise DataError(
                f"groups={groups!r} names no column of {what} extra; its columns are {sorted(extra or {})}. "
                "Give the column in extra, or the group values themselves."
            )
        groups = extra[groups]
    vals = groups.detach().cpu().numpy() if isinstance(groups, Tensor) else np.asarray(groups)
    if vals.ndim != 1:
        raise DataError(f"{what} groups have shape {vals.shape}; give one group value per example, shape (N,).")
    if vals.shape[0] != n:
        raise DataError(f"{what} has {n} examples but {vals.shape[0]} group values; give one group value per example.")
    return vals


def by_group(
    data: DataSource,
    targets: ArrayLike | None = None,
    *,
    groups: ArrayLike | str,
    test: DataSource | None = None,
    test_groups: ArrayLike | str | None = None,
    test_fraction: float = 0.2,
    order: Sequence[Any] | None = None,
    scenario: str = "domain",
    seed: int = 0,
    extra: Mapping[str, ArrayLike] | None = None,
    test_extra: Mapping[str, ArrayLike] | None = None,
    name: str = "groups",
) -> Stream:
    """One task per value of a group column (a domain, a skill, a data source...).

    ``groups`` holds one value per example (ints or strings), or names a column
    of ``extra`` (which then also rides along as a field). With a separate
    ``test`` set give ``test_groups`` too; otherwise the test set is split off
    stratified by (group, label). Tasks follow ``order`` (a list of group
    values, possibly a subset) or the sorted group values; each task is named
    after its group and keeps the value in ``task.info['group']``.

    Scenarios: ``'domain'`` (default: every task declares the stream's whole
    label set), ``'task'`` or ``'class'`` (each task declares its own labels).
    """
    _check_scenario(scenario)
    full, test_full = _read(data, targets, test, extra, test_extra)
    gvals = _group_values(groups, extra, len(full), "data")
    uniq, codes = np.unique(gvals, return_inverse=True)
    lookup = {v.item(): i for i, v in enumerate(uniq)}
    gcode = torch.from_numpy(codes.astype(np.int64).reshape(-1))
    if test_full is not None:
        if test_groups is None and isinstance(groups, str):
            test_groups = groups
        if test_groups is None:
            raise DataError("a test set was given without test_groups; give one group value per test example.")
        tvals = _group_values(test_groups, test_extra, len(test_full), "test")
        unknown = sorted({str(v) for v in tvals.tolist() if v not in lookup})
        if unknown:
            raise DataError(
                f"test groups {unknown[:5]} do not occur in the training data; its groups are {[u.item() for u in uniq]}."
            )
        test_full.extra[_GROUP] = torch.tensor([lookup[v] for v in tvals.tolist()], dtype=torch.long)
    full.extra[_GROUP] = gcode
    strata = gcode * (int(full.y.max()) + 1) + full.y
    train, test_l = _train_test(full, test_full, test_fraction, seed, strata)
    if order is None:
        chosen = list(range(len(uniq)))
    else:
        chosen = []
        for v in order:
            key = v.item() if isinstance(v, np.generic) else v
            if key not in lookup:
                raise BuilderArgumentError(
                    f"order names group {v!r}, which is not in the data; the groups are {[u.item() for u in uniq]}."
                )
            if lookup[key] in chosen:
                raise BuilderArgumentError(f"order names group {v!r} twice; list each group once.")
            chosen.append(lookup[key])
    all_labels = sorted(set(train.y.tolist()) | set(test_l.y.tolist()))
    tasks: list[Task] = []
    for code in chosen:
        value = uniq[code].item()
        tr = train.take((train.extra[_GROUP] == code).nonzero().squeeze(1))
        te = test_l.take((test_l.extra[_GROUP] == code).nonzero().squeeze(1))
        tr.extra.pop(_GROUP)
        te.extra.pop(_GROUP)
        if scenario == "domain":
            classes = tuple(all_labels)
        else:
            classes = tuple(sorted(set(tr.y.tolist()) | set(te.y.tolist())))
        tasks.append(Task(str(value), tr.examples(), te.examples(), classes, {"group": value}))
    stream = Stream(
        name,
        tasks,
        scenario=scenario,  # type: ignore[arg-type]
        num_classes=max(all_labels) + 1,
        input_shape=tuple(train.x.shape[1:]),
        info={"builder": "by_group", "seed": seed, "groups": [uniq[c].item() for c in chosen]},
    )
    return stream.validate()


__all__ = [
    "BuilderArgumentError",
    "split_by_classes",
    "permuted",
    "by_group",
    "stratified_split",
    "feature_permutation",
    "apply_permutation",
]
