"""Image benchmarks through torchvision: Split/Permuted MNIST, Split CIFAR-10/100.

torchvision is an optional extra (``pip install 'lifelong[vision]'``) and is
imported only inside the factories, so importing this module (which
:mod:`lifelong.data.benchmarks` does to register the names) costs nothing.

Data lives under ``root`` (default: ``$LIFELONG_DATA``, else
``~/.cache/lifelong/data``) in torchvision's own layout; with ``download=True``
(the default) missing files are fetched once. Images become float32
``(C, H, W)`` tensors scaled to [0, 1] and standardised per channel with the
training set's statistics. ``train_size`` / ``test_size`` take a seeded,
stratified subset for quick runs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from lifelong.data.benchmarks import BENCHMARKS
from lifelong.data.scenarios import permuted, split_by_classes, stratified_split
from lifelong.data.task import Stream
from lifelong.errors import ConfigError, DataError, LifelongError, MissingDependencyError

#: torchvision class name and the folder it keeps its files in, under root.
_DATASETS: dict[str, tuple[str, str]] = {
    "mnist": ("MNIST", "MNIST"),
    "cifar10": ("CIFAR10", "cifar-10-batches-py"),
    "cifar100": ("CIFAR100", "cifar-100-python"),
}


def default_root() -> Path:
    """Where datasets are kept: ``$LIFELONG_DATA`` or ``~/.cache/lifelong/data``."""
    env = os.environ.get("LIFELONG_DATA")
    return Path(env).expanduser() if env else Path("~/.cache/lifelong/data").expanduser()


def _torchvision_datasets(benchmark: str) -> Any:
    """Import ``torchvision.datasets`` or say how to install it."""
    import importlib

    try:
        return importlib.import_module("torchvision.datasets")
    except ImportError as exc:
        raise MissingDependencyError("torchvision", "vision", f"The '{benchmark}' benchmark") from exc
    except Exception as exc:  # installed, but built for another torch (missing C++ operators...)
        raise LifelongError(
            f"The '{benchmark}' benchmark needs torchvision, which is installed but failed to import ({exc}). "
            f"Install the torchvision build that matches torch {torch.__version__}: pip install 'lifelong[vision]'"
        ) from exc


def _load_split(benchmark: str, dataset: str, root: Path, train: bool, download: bool) -> tuple[Tensor, Tensor]:
    """One split of a torchvision dataset as (uint8 images N x H x W [x C], int64 labels)."""
    datasets = _torchvision_datasets(benchmark)
    cls_name, folder = _DATASETS[dataset]
    try:
        ds = getattr(datasets, cls_name)(str(root), train=train, download=download)
    except (RuntimeError, OSError) as exc:  # missing or corrupt files; no network for the download
        how = (
            "Connect to the internet and run again (download=True fetches it once)"
            if download
            else "Run once with download=True on a machine with internet access"
        )
        raise DataError(
            f"The '{benchmark}' benchmark needs the {cls_name} data, which is not in {root} "
            f"(torchvision folder '{folder}') and could not be {'downloaded' if download else 'found'}: {exc}. "
            f"{how}, or copy the '{folder}' folder into {root}, or set root= (or LIFELONG_DATA) to a folder that "
            "holds it."
        ) from None
    images = ds.data if isinstance(ds.data, Tensor) else torch.from_numpy(np.asarray(ds.data))
    labels = torch.as_tensor(np.asarray(ds.targets), dtype=torch.long)
    return images, labels


def _to_float(images: Tensor) -> Tensor:
    """uint8 N x H x W (grey) or N x H x W x C (colour) -> float32 N x C x H x W in [0, 1]."""
    x = images.float().div_(255.0)
    return x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()


def _standardise_channels(train: Tensor, test: Tensor) -> tuple[Tensor, Tensor]:
    """Per-channel standardisation with training statistics, in place (CIFAR is 600 MB as float32)."""
    dims = (0, 2, 3)
    mean = train.mean(dim=dims, keepdim=True)
    std = train.std(dim=dims, keepdim=True).clamp_min(1e-6)
    return train.sub_(mean).div_(std), test.sub_(mean).div_(std)


def _subset(y: Tensor, size: int | None, name: str, seed: int) -> Tensor | None:
    """Indices of a seeded stratified subset of ``size`` rows (None: keep all)."""
    if size is None:
        return None
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or int(size) < 1:
        raise ConfigError(f"{name}={size!r} must be a positive integer (or null for the whole split).")
    if int(size) >= len(y):
        return None
    _, keep = stratified_split(y, test_size=int(size), seed=seed)
    return keep


def load_images(
    benchmark: str,
    dataset: str,
    seed: int,
    root: str | os.PathLike | None,
    download: bool,
    train_size: int | None,
    test_size: int | None,
) -> tuple[tuple[Tensor, Tensor], tuple[Tensor, Tensor]]:
    """Train and test (images, labels) of ``dataset``, subset and standardised."""
    path = Path(root).expanduser() if root is not None else default_root()
    x_tr, y_tr = _load_split(benchmark, dataset, path, True, bool(download))
    x_te, y_te = _load_split(benchmark, dataset, path, False, bool(download))
    keep = _subset(y_tr, train_size, "train_size", seed)
    if keep is not None:
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    keep = _subset(y_te, test_size, "test_size", seed)
    if keep is not None:
        x_te, y_te = x_te[keep], y_te[keep]
    xf_tr, xf_te = _standardise_channels(_to_float(x_tr), _to_float(x_te))
    return (xf_tr, y_tr), (xf_te, y_te)


def _split(benchmark: str, dataset: str, seed: int, n_tasks, classes_per_task, class_order, scenario,
           root, download, train_size, test_size, default_cpt: int) -> Stream:
    if n_tasks is None and classes_per_task is None:
        classes_per_task = default_cpt
    train, test = load_images(benchmark, dataset, seed, root, download, train_size, test_size)
    return split_by_classes(train, test=test, n_tasks=n_tasks, classes_per_task=classes_per_task,
                            class_order=class_order, scenario=scenario, seed=seed, name=benchmark)


@BENCHMARKS.register("split-mnist")
def split_mnist(
    seed: int = 0,
    n_tasks: int | None = None,
    classes_per_task: int | Sequence[int] | None = None,
    class_order: Sequence[int] | str = "sorted",
    scenario: str = "class",
    root: str | None = None,
    download: bool = True,
    train_size: int | None = None,
    test_size: int | None = None,
) -> Stream:
    """MNIST (torchvision) split into tasks of new classes (default 5 tasks x 2 classes)."""
    return _split("split-mnist", "mnist", seed, n_tasks, classes_per_task, class_order, scenario,
                  root, download, train_size, test_size, default_cpt=2)


@BENCHMARKS.register("permuted-mnist")
def permuted_mnist(
    seed: int = 0,
    n_tasks: int = 10,
    first_unpermuted: bool = False,
    scenario: str = "domain",
    root: str | None = None,
    download: bool = True,
    train_size: int | None = None,
    test_size: int | None = None,
) -> Stream:
    """MNIST (torchvision) under ``n_tasks`` seeded pixel permutations (default 10, domain-incremental).

    Every task holds its own permuted copy of the data (about 220 MB of
    float32 per task at full size); use ``train_size`` for long streams.
    """
    train, test = load_images("permuted-mnist", "mnist", seed, root, download, train_size, test_size)
    return permuted(train, test=test, n_tasks=n_tasks, first_unpermuted=first_unpermuted,
                    scenario=scenario, seed=seed, name="permuted-mnist")


@BENCHMARKS.register("split-cifar10")
def split_cifar10(
    seed: int = 0,
    n_tasks: int | None = None,
    classes_per_task: int | Sequence[int] | None = None,
    class_order: Sequence[int] | str = "sorted",
    scenario: str = "class",
    root: str | None = None,
    download: bool = True,
    train_size: int | None = None,
    test_size: int | None = None,
) -> Stream:
    """CIFAR-10 (torchvision) split into tasks of new classes (default 5 tasks x 2 classes)."""
    return _split("split-cifar10", "cifar10", seed, n_tasks, classes_per_task, class_order, scenario,
                  root, download, train_size, test_size, default_cpt=2)


@BENCHMARKS.register("split-cifar100")
def split_cifar100(
    seed: int = 0,
    n_tasks: int | None = None,
    classes_per_task: int | Sequence[int] | None = None,
    class_order: Sequence[int] | str = "sorted",
    scenario: str = "class",
    root: str | None = None,
    download: bool = True,
    train_size: int | None = None,
    test_size: int | None = None,
) -> Stream:
    """CIFAR-100 (torchvision) split into tasks of new classes (default 10 tasks x 10 classes)."""
    return _split("split-cifar100", "cifar100", seed, n_tasks, classes_per_task, class_order, scenario,
                  root, download, train_size, test_size, default_cpt=10)


__all__ = ["default_root", "load_images", "split_mnist", "permuted_mnist", "split_cifar10", "split_cifar100"]
