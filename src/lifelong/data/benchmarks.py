"""Built-in benchmarks: named, seeded factories of task streams.

``BENCHMARKS`` maps a config name to a factory ``factory(seed: int = 0,
**params) -> Stream``; :func:`make_benchmark` builds one by name and turns
unknown parameters into a :class:`~lifelong.errors.ConfigError` that lists the
allowed ones.

The benchmarks defined here work offline, with no download, and build in
about a second:

* ``split-digits`` / ``permuted-digits``: scikit-learn's bundled 8x8 digits
  (1797 images, 64 features, 10 classes);
* ``split-mnist1d`` / ``permuted-mnist1d``: MNIST-1D (40-step 1-D signals, 10
  classes), generated locally by the ``mnist1d`` package's own generator.

Further benchmarks register themselves the same way from their own modules:
torchvision datasets in :mod:`lifelong.data.vision` (imported by
``lifelong.data``), language-model skills and text files in
``lifelong.hf.arithmetic`` / ``lifelong.hf.text`` (imported by the registry
the first time a name is missing or all names are listed).
"""

from __future__ import annotations

import functools
import random
from typing import Any, Callable, Sequence

import numpy as np
import torch

from lifelong.data.cache import cached_arrays
from lifelong.data.scenarios import BuilderArgumentError, permuted, split_by_classes, stratified_split
from lifelong.data.task import Stream
from lifelong.errors import ConfigError
from lifelong.registry import Registry, build

#: benchmark name -> factory; the language-model benchmarks of ``lifelong.hf`` load on first use
BENCHMARKS: Registry[Callable[..., Stream]] = Registry(
    "benchmark", extensions=("lifelong.hf.arithmetic", "lifelong.hf.text"))


def make_benchmark(name: str, seed: int = 0, **params: Any) -> Stream:
    """Build the registered benchmark ``name`` with ``seed`` and its ``params``.

    Unknown parameters, and values that do not fit the data, raise a
    :class:`ConfigError` naming them. The stream's ``info`` records the
    benchmark's name, seed and parameters, so a run can say what it trained on.
    """
    try:
        stream = build(BENCHMARKS, name, params, seed=seed)
    except BuilderArgumentError as exc:  # a parameter value that does not fit the data
        raise BuilderArgumentError(f"benchmark '{name}': {exc}") from None
    if not isinstance(stream, Stream):  # a factory bug, not user input
        raise TypeError(f"benchmark '{name}' returned {type(stream).__name__}, not a Stream")
    stream.info.update({"benchmark": name, "seed": seed, "params": dict(params)})
    return stream.validate()


def _version(package: str) -> str:
    """The installed version of ``package`` (part of a cache key: new versions may generate other data)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return "unknown"


def _check_size(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
        raise ConfigError(f"{name}={value!r} must be a positive integer.")
    return int(value)


def _standardise(train: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Per-feature standardisation with the training statistics only (no test leakage).

    Constant features (e.g. the digits' always-blank border pixels) keep scale 1.
    """
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True)
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return tuple((t - mean) / std for t in (train, *others))


# ----------------------------------------------------------------------------
# scikit-learn digits
# ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """The bundled digits, from the on-disk cache when it has them (importing scikit-learn costs ~1 s)."""

    def make() -> dict[str, np.ndarray]:
        from sklearn.datasets import load_digits  # bundled with scikit-learn: no download

        d = load_digits()
        return {"x": d.data.astype(np.float32), "y": d.target.astype(np.int64)}

    arrays = cached_arrays("digits", {"scikit-learn": _version("scikit-learn")}, make)
    return arrays["x"], arrays["y"]


def _digits(seed: int, test_fraction: float) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]:
    """Seeded stratified train/test split of the digits, standardised with train statistics."""
    x_np, y_np = _digits_arrays()
    x, y = torch.from_numpy(x_np.copy()), torch.from_numpy(y_np.copy())
    tr, te = stratified_split(y, test_fraction, seed=seed)
    x_tr, x_te = _standardise(x[tr], x[te])
    return (x_tr, y[tr]), (x_te, y[te])


@BENCHMARKS.register("split-digits")
def split_digits(
    seed: int = 0,
    n_tasks: int | None = None,
    classes_per_task: int | Sequence[int] | None = None,
    class_order: Sequence[int] | str = "sorted",
    scenario: str = "class",
    test_fraction: float = 0.2,
) -> Stream:
    """scikit-learn 8x8 digits split into tasks of new classes (default 5 tasks x 2 classes).

    1797 images of 64 standardised features; ``test_fraction`` of each class
    (seeded, stratified) is held out. ``class_order`` defaults to ``'sorted'``
    (tasks {0,1}, {2,3}, ...); ``'shuffle'`` draws an order from ``seed``.
    """
    if n_tasks is None and classes_per_task is None:
        classes_per_task = 2
    train, test = _digits(seed, test_fraction)
    return split_by_classes(
        train, test=test, n_tasks=n_tasks, classes_per_task=classes_per_task, class_order=class_order,
        scenario=scenario, seed=seed, name="split-digits",
    )


@BENCHMARKS.register("permuted-digits")
def permuted_digits(
    seed: int = 0,
    n_tasks: int = 10,
    first_unpermuted: bool = False,
    scenario: str = "domain",
    test_fraction: float = 0.2,
) -> Stream:
    """scikit-learn 8x8 digits under ``n_tasks`` seeded pixel permutations (default 10, domain-incremental).

    Each task is all 10 classes (1437 train / 360 test images at the default
    ``test_fraction``) with its own fixed permutation of the 64 pixels.
    """
    train, test = _digits(seed, test_fraction)
    return permuted(
        train, test=test, n_tasks=n_tasks, first_unpermuted=first_unpermuted, scenario=scenario,
        seed=seed, name="permuted-digits",
    )


# ----------------------------------------------------------------------------
# MNIST-1D
# ----------------------------------------------------------------------------

#: The generator seed of the reference MNIST-1D dataset: with it and the default
#: sizes, the 5000 signals are those of the published dataset.
MNIST1D_REFERENCE_SEED = 42


@functools.lru_cache(maxsize=4)
def _mnist1d_arrays(num_samples: int, data_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Generate MNIST-1D signals locally (no download), cached per (size, seed) in the
    process and on disk (:mod:`lifelong.data.cache`: generating takes 6-8 s).

    The generator reseeds numpy's and Python's global random state; both are
    restored afterwards so building a benchmark does not disturb the caller.
    """

    def make() -> dict[str, np.ndarray]:
        from mnist1d import data  # a core dependency; imported here because it pulls in scipy

        args = data.get_dataset_args()
        args.num_samples = int(num_samples)
        args.seed = int(data_seed)
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            d = data.make_dataset(args)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        return {"x": np.concatenate([d["x"], d["x_test"]]).astype(np.float32),
                "y": np.concatenate([d["y"], d["y_test"]]).astype(np.int64)}

    # the generator's defaults are those of the installed mnist1d: its version is part of the key
    key = {"num_samples": int(num_samples), "seed": int(data_seed), "mnist1d": _version("mnist1d")}
    arrays = cached_arrays("mnist1d", key, make)
    x, y = arrays["x"], arrays["y"]
    x.setflags(write=False)
    y.setflags(write=False)
    return x, y


def _mnist1d(seed: int, train_size: int, test_size: int, data_seed: int | None):
    train_size = _check_size(train_size, "train_size")
    test_size = _check_size(test_size, "test_size")
    total = train_size + test_size
    if total < 20:
        raise ConfigError(f"train_size + test_size = {total} is too small; MNIST-1D needs at least 20 signals (2 per class).")
    # The generator makes num_samples // 10 signals per class: round up, then trim.
    n_gen = -(-total // 10) * 10
    x_np, y_np = _mnist1d_arrays(n_gen, MNIST1D_REFERENCE_SEED if data_seed is None else int(data_seed))
    x, y = torch.tensor(x_np), torch.tensor(y_np)
    tr, te = stratified_split(y, test_size=test_size, seed=seed)
    if len(tr) > train_size:  # drop the few surplus rows, still stratified
        keep, _ = stratified_split(y[tr], test_size=len(tr) - train_size, seed=seed)
        tr = tr[keep]
    return (x[tr], y[tr]), (x[te], y[te])


@BENCHMARKS.register("split-mnist1d")
def split_mnist1d(
    seed: int = 0,
    n_tasks: int | None = None,
    classes_per_task: int | Sequence[int] | None = None,
    class_order: Sequence[int] | str = "sorted",
    scenario: str = "class",
    train_size: int = 4000,
    test_size: int = 1000,
    data_seed: int | None = None,
) -> Stream:
    """MNIST-1D (40-step signals) split into tasks of new classes (default 5 tasks x 2 classes).

    Generated locally with the ``mnist1d`` generator; ``data_seed`` (default:
    the reference seed 42, i.e. the published dataset's signals) fixes the
    signals, ``seed`` the stratified train/test split and any class shuffle.
    """
    if n_tasks is None and classes_per_task is None:
        classes_per_task = 2
    train, test = _mnist1d(seed, train_size, test_size, data_seed)
    return split_by_classes(
        train, test=test, n_tasks=n_tasks, classes_per_task=classes_per_task, class_order=class_order,
        scenario=scenario, seed=seed, name="split-mnist1d",
    )


@BENCHMARKS.register("permuted-mnist1d")
def permuted_mnist1d(
    seed: int = 0,
    n_tasks: int = 10,
    first_unpermuted: bool = False,
    scenario: str = "domain",
    train_size: int = 4000,
    test_size: int = 1000,
    data_seed: int | None = None,
) -> Stream:
    """MNIST-1D under ``n_tasks`` seeded permutations of its 40 time steps (default 10, domain-incremental)."""
    train, test = _mnist1d(seed, train_size, test_size, data_seed)
    return permuted(
        train, test=test, n_tasks=n_tasks, first_unpermuted=first_unpermuted, scenario=scenario,
        seed=seed, name="permuted-mnist1d",
    )


# ----------------------------------------------------------------------------
# Benchmarks registered by other modules
# ----------------------------------------------------------------------------


def _load() -> None:
    """Import the optional modules that register further benchmarks (the registry
    does this by itself the first time a name is missing or all are listed)."""
    BENCHMARKS.load_extensions()


__all__ = ["BENCHMARKS", "make_benchmark", "BuilderArgumentError", "split_digits", "permuted_digits",
           "split_mnist1d", "permuted_mnist1d"]
