"""torchvision benchmarks without torchvision: the missing-extra message, the missing-data
message, and the real loading code run against a small stand-in ``torchvision.datasets``."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest
import torch

from lifelong.data import vision
from lifelong.data.benchmarks import make_benchmark
from lifelong.errors import DataError, MissingDependencyError


def test_missing_torchvision_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torchvision", None)  # makes the import fail
    monkeypatch.setitem(sys.modules, "torchvision.datasets", None)
    for name in ("split-mnist", "permuted-mnist", "split-cifar10", "split-cifar100"):
        with pytest.raises(MissingDependencyError) as info:
            make_benchmark(name)
        msg = str(info.value)
        assert f"'{name}'" in msg and "torchvision" in msg and "pip install 'lifelong[vision]'" in msg


def _fake_torchvision(monkeypatch, present: set[str], n_train: int = 60, n_test: int = 20, record=None):
    """A stand-in torchvision.datasets whose classes behave like the real ones' constructors."""

    def make(name, shape, n_classes, as_numpy):
        class FakeSet:
            def __init__(self, root, train=True, download=False):
                if record is not None:
                    record.append((name, root, train, download))
                if name not in present:
                    if download:
                        raise RuntimeError(f"Error downloading {name}: <urlopen error [Errno -3] no network>")
                    raise RuntimeError("Dataset not found. You can use download=True to download it")
                n = n_train if train else n_test
                g = torch.Generator().manual_seed(1 if train else 2)
                data = torch.randint(0, 256, (n, *shape), generator=g, dtype=torch.uint8)
                targets = torch.arange(n) % n_classes
                self.data = data.numpy() if as_numpy else data
                self.targets = targets.tolist() if as_numpy else targets

        FakeSet.__name__ = name
        return FakeSet

    datasets = types.ModuleType("torchvision.datasets")
    datasets.MNIST = make("MNIST", (28, 28), 10, False)
    datasets.CIFAR10 = make("CIFAR10", (32, 32, 3), 10, True)
    datasets.CIFAR100 = make("CIFAR100", (32, 32, 3), 100, True)
    tv = types.ModuleType("torchvision")
    tv.datasets = datasets
    monkeypatch.setitem(sys.modules, "torchvision", tv)
    monkeypatch.setitem(sys.modules, "torchvision.datasets", datasets)


def test_absent_data_and_failed_download_name_the_root(monkeypatch, tmp_path):
    _fake_torchvision(monkeypatch, present=set())
    with pytest.raises(DataError) as info:
        make_benchmark("split-mnist", root=str(tmp_path))
    msg = str(info.value)
    assert str(tmp_path) in msg and "'MNIST'" in msg and "download" in msg and "no network" in msg
    with pytest.raises(DataError, match="cifar-10-batches-py.*download=True"):
        make_benchmark("split-cifar10", root=str(tmp_path), download=False)


def test_root_defaults_to_env_then_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LIFELONG_DATA", str(tmp_path / "data"))
    assert vision.default_root() == tmp_path / "data"
    monkeypatch.delenv("LIFELONG_DATA")
    assert str(vision.default_root()).endswith("/.cache/lifelong/data")
    calls: list = []
    _fake_torchvision(monkeypatch, present={"MNIST"}, record=calls)
    monkeypatch.setenv("LIFELONG_DATA", str(tmp_path / "d2"))
    make_benchmark("split-mnist")
    assert calls == [("MNIST", str(tmp_path / "d2"), True, True), ("MNIST", str(tmp_path / "d2"), False, True)]


def test_mnist_loading_code_shapes_scaling_and_subsets(monkeypatch):
    _fake_torchvision(monkeypatch, present={"MNIST", "CIFAR10", "CIFAR100"})
    s = make_benchmark("split-mnist")
    assert len(s) == 5 and s.input_shape == (1, 28, 28) and s.num_classes == 10
    x = torch.cat([t.train["x"] for t in s])
    assert x.dtype == torch.float32 and x.shape == (60, 1, 28, 28)
    assert abs(float(x.mean())) < 1e-4 and abs(float(x.std()) - 1) < 1e-3
    p = make_benchmark("permuted-mnist", n_tasks=3, train_size=30, test_size=10, seed=1)
    assert len(p) == 3 and all(t.num_train == 30 and t.num_test == 10 for t in p)
    assert torch.bincount(p[0].train["y"]).tolist() == [3] * 10


def test_cifar_loading_code_channels_first_and_default_tasks(monkeypatch):
    _fake_torchvision(monkeypatch, present={"CIFAR10", "CIFAR100"}, n_train=200, n_test=100)
    s = make_benchmark("split-cifar10")
    assert s.input_shape == (3, 32, 32) and len(s) == 5
    x = torch.cat([t.train["x"] for t in s])
    means = x.mean(dim=(0, 2, 3))
    assert torch.allclose(means, torch.zeros(3), atol=1e-4)  # standardised per channel
    c100 = make_benchmark("split-cifar100")
    assert len(c100) == 10 and c100.num_classes == 100 and c100[9].classes == tuple(range(90, 100))
    # the raw pixel of the first training image survives the HWC -> CHW move
    raw = sys.modules["torchvision.datasets"].CIFAR10("r", train=True).data  # (N, 32, 32, 3) uint8
    (xt, _), _ = vision.load_images("split-cifar10", "cifar10", 0, "r", True, None, None)
    chw = torch.from_numpy(np.ascontiguousarray(raw)).permute(0, 3, 1, 2).float()
    corr = np.corrcoef(chw[:, 2].reshape(-1).numpy(), xt[:, 2].reshape(-1).numpy())[0, 1]
    assert corr > 0.999
