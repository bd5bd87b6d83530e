"""Built-in benchmarks: offline streams, seeding, parameter errors, the registry loader."""

from __future__ import annotations

import importlib.abc
import random
import sys

import numpy as np
import pytest
import torch

from lifelong.data import benchmarks
from lifelong.data.benchmarks import BENCHMARKS, make_benchmark
from lifelong.errors import ConfigError

OFFLINE = ["split-digits", "permuted-digits", "split-mnist1d", "permuted-mnist1d"]


def test_registry_lists_offline_vision_and_language_benchmarks():
    names = BENCHMARKS.names()
    for n in OFFLINE + ["split-mnist", "permuted-mnist", "split-cifar10", "split-cifar100"]:
        assert n in names
    for e in BENCHMARKS.entries():
        assert e.summary, f"benchmark {e.name} needs a docstring summary"


def test_split_digits_shapes_classes_and_standardisation():
    s = make_benchmark("split-digits")
    assert s.name == "split-digits" and s.scenario == "class" and s.kind == "classification"
    assert len(s) == 5 and s.num_classes == 10 and s.input_shape == (64,)
    assert [t.classes for t in s] == [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    assert sum(t.num_train for t in s) + sum(t.num_test for t in s) == 1797
    assert sum(t.num_test for t in s) == 359  # round(0.2 * 1797), stratified per class
    x = torch.cat([t.train["x"] for t in s])
    assert x.dtype == torch.float32
    mean, std = x.mean(0), x.std(0)
    varying = std > 0
    assert varying.sum() >= 60  # a few border pixels are always blank
    assert torch.allclose(mean, torch.zeros(64), atol=1e-4)
    assert torch.allclose(std[varying], torch.ones(int(varying.sum())), atol=1e-3)
    assert s.info["benchmark"] == "split-digits" and s.info["seed"] == 0


def test_permuted_digits_defaults_and_fifty_tasks():
    s = make_benchmark("permuted-digits")
    assert len(s) == 10 and s.scenario == "domain" and s.num_classes == 10 and s.input_shape == (64,)
    assert all(t.classes == tuple(range(10)) for t in s)
    assert all(t.num_train == 1438 and t.num_test == 359 for t in s)
    long = make_benchmark("permuted-digits", n_tasks=50, first_unpermuted=True)
    assert len(long) == 50 and long[0].info["permuted"] is False
    assert len({tuple(t.info["permutation"]) for t in long}) == 50
    # the same data under each permutation: sorting features per row undoes it
    a, b = long[0].train["x"], long[49].train["x"]
    assert torch.equal(a.sort(1).values, b.sort(1).values)


def test_mnist1d_benchmarks_shapes_and_sizes():
    s = make_benchmark("split-mnist1d")
    assert len(s) == 5 and s.input_shape == (40,) and s.num_classes == 10
    assert sum(t.num_train for t in s) == 4000 and sum(t.num_test for t in s) == 1000
    assert [t.classes for t in s][2] == (4, 5)
    p = make_benchmark("permuted-mnist1d", n_tasks=3, train_size=997, test_size=203)
    assert len(p) == 3 and p.scenario == "domain"
    assert all(t.num_train == 997 and t.num_test == 203 for t in p)
    counts = torch.bincount(p[0].test["y"], minlength=10)
    assert counts.min() >= 20 and counts.max() <= 21  # stratified


def test_mnist1d_generation_is_local_and_leaves_global_rng_alone():
    np.random.seed(1234)
    random.seed(1234)
    expected_np, expected_py = np.random.rand(), random.random()
    np.random.seed(1234)
    random.seed(1234)
    benchmarks._mnist1d_arrays.cache_clear()
    make_benchmark("split-mnist1d", train_size=80, test_size=20, data_seed=7)
    assert np.random.rand() == expected_np and random.random() == expected_py


def test_mnist1d_data_seed_changes_the_signals_and_seed_the_split():
    a = make_benchmark("split-mnist1d", train_size=160, test_size=40, data_seed=1)
    b = make_benchmark("split-mnist1d", train_size=160, test_size=40, data_seed=2)
    assert not torch.equal(a[0].train["x"], b[0].train["x"])


@pytest.mark.parametrize("name", OFFLINE)
def test_same_seed_identical_other_seed_different(name):
    small = {"train_size": 300, "test_size": 100} if "mnist1d" in name else {}
    small.update({"n_tasks": 2} if name.startswith("permuted") else {})
    a = make_benchmark(name, seed=3, **small)
    b = make_benchmark(name, seed=3, **small)
    c = make_benchmark(name, seed=4, **small)
    assert a.task_names == b.task_names == c.task_names
    for ta, tb in zip(a, b):
        for f in ("x", "y"):
            assert torch.equal(ta.train[f], tb.train[f]) and torch.equal(ta.test[f], tb.test[f])
    assert any(not torch.equal(ta.test["x"], tc.test["x"]) for ta, tc in zip(a, c))
    a.validate()


def test_split_options_scenario_class_order_and_task_count():
    s = make_benchmark("split-digits", n_tasks=2, scenario="task", class_order=[1, 3, 5, 7, 9, 0, 2, 4, 6, 8])
    assert s.scenario == "task" and [t.classes for t in s] == [(1, 3, 5, 7, 9), (0, 2, 4, 6, 8)]
    shuffled = make_benchmark("split-digits", class_order="shuffle", seed=2)
    assert sorted(c for t in shuffled for c in t.classes) == list(range(10))
    assert [t.classes for t in shuffled] != [(0, 1), (2, 3), (4, 5), (6, 7), (8, 9)]
    dom = make_benchmark("split-mnist1d", scenario="domain", train_size=100, test_size=50)
    assert dom.num_classes == 2 and all(t.classes == (0, 1) for t in dom)
    ten = make_benchmark("split-digits", n_tasks=10)
    assert [t.classes for t in ten] == [(i,) for i in range(10)]


def test_unknown_and_bad_params_give_config_errors_naming_them():
    with pytest.raises(ConfigError) as info:
        make_benchmark("split-digits", n_task=3)
    msg = str(info.value)
    assert "'n_task'" in msg and "n_tasks" in msg and "classes_per_task" in msg and "test_fraction" in msg
    with pytest.raises(ConfigError, match="split-digits.*n_tasks=3.*\\[1, 2, 5, 10\\]"):
        make_benchmark("split-digits", n_tasks=3)
    with pytest.raises(ConfigError, match="scenario='online'"):
        make_benchmark("permuted-digits", scenario="online")
    with pytest.raises(ConfigError, match="test_fraction=1.5"):
        make_benchmark("split-digits", test_fraction=1.5)
    with pytest.raises(ConfigError, match="train_size=0"):
        make_benchmark("permuted-mnist1d", train_size=0)
    with pytest.raises(ConfigError, match="Did you mean 'split-digits'"):
        make_benchmark("split-digit")


class _BrokenArithmetic(importlib.abc.MetaPathFinder):
    """Makes ``import lifelong.hf.arithmetic`` fail on a missing *inner* dependency."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "lifelong.hf.arithmetic":
            raise ModuleNotFoundError("No module named 'some_inner_dep'", name="some_inner_dep")
        return None


def test_load_swallows_only_a_missing_arithmetic_module(monkeypatch):
    monkeypatch.delitem(sys.modules, "lifelong.hf.arithmetic", raising=False)
    monkeypatch.setitem(sys.modules, "lifelong.hf.arithmetic", None)  # the module itself is absent
    benchmarks._load()
    monkeypatch.delitem(sys.modules, "lifelong.hf.arithmetic")
    monkeypatch.setattr(sys, "meta_path", [_BrokenArithmetic(), *sys.meta_path])
    with pytest.raises(ModuleNotFoundError, match="some_inner_dep"):
        benchmarks._load()
