"""The on-disk cache of generated benchmark data (lifelong.data.cache)."""

import multiprocessing as mp
import os

import numpy as np
import pytest

from lifelong.data import cache
from lifelong.data.cache import cache_dir, cache_key, cached_arrays


def _make(calls):
    def make():
        calls.append(1)
        return {"x": np.arange(12, dtype=np.float32).reshape(3, 4), "y": np.array([0, 1, 2])}

    return make


def test_second_load_hits_the_cache(tmp_path):
    calls = []
    a = cached_arrays("demo", {"n": 3}, _make(calls), folder=tmp_path)
    b = cached_arrays("demo", {"n": 3}, _make(calls), folder=tmp_path)
    assert len(calls) == 1
    assert np.array_equal(a["x"], b["x"]) and b["x"].dtype == np.float32 and np.array_equal(a["y"], b["y"])
    assert [p.name for p in tmp_path.iterdir()] == [f"{cache_key('demo', {'n': 3})}.npz"]


def test_key_follows_the_arguments(tmp_path):
    calls = []
    cached_arrays("demo", {"n": 3, "version": "1"}, _make(calls), folder=tmp_path)
    cached_arrays("demo", {"n": 3, "version": "2"}, _make(calls), folder=tmp_path)
    assert len(calls) == 2 and len(list(tmp_path.iterdir())) == 2


def test_corrupted_file_is_regenerated_with_a_warning(tmp_path):
    calls = []
    cached_arrays("demo", {"n": 3}, _make(calls), folder=tmp_path)
    path = tmp_path / f"{cache_key('demo', {'n': 3})}.npz"
    path.write_bytes(path.read_bytes()[:40])  # truncated
    with pytest.warns(RuntimeWarning, match="damaged"):
        again = cached_arrays("demo", {"n": 3}, _make(calls), folder=tmp_path)
    assert len(calls) == 2 and again["x"].shape == (3, 4)
    assert cached_arrays("demo", {"n": 3}, _make(calls), folder=tmp_path)["y"].tolist() == [0, 1, 2]
    assert len(calls) == 2  # the regenerated file is whole again


def test_a_pickled_file_is_not_loaded(tmp_path):
    path = tmp_path / f"{cache_key('demo', {'n': 3})}.npz"
    np.savez(path, x=np.array([{"code": 1}], dtype=object))  # would need allow_pickle=True
    calls = []
    with pytest.warns(RuntimeWarning, match="damaged"):
        out = cached_arrays("demo", {"n": 3}, _make(calls), folder=tmp_path)
    assert len(calls) == 1 and out["x"].dtype == np.float32


def _writer(folder, seed, queue):
    rng = np.random.default_rng(0)
    data = {"x": rng.normal(size=(2000, 40)).astype(np.float32)}
    out = cached_arrays("race", {"n": 1}, lambda: data, folder=folder)
    queue.put(float(out["x"].sum()))


def test_concurrent_writers_are_safe(tmp_path):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_writer, args=(tmp_path, i, queue)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    sums = [queue.get(timeout=5) for _ in procs]
    assert all(p.exitcode == 0 for p in procs) and len(set(sums)) == 1
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]  # no temporary file left behind
    assert float(cached_arrays("race", {"n": 1}, lambda: {}, folder=tmp_path)["x"].sum()) == sums[0]


def test_cache_folder_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path / "c"))
    assert cache_dir() == tmp_path / "c"
    monkeypatch.setenv("LIFELONG_CACHE", "off")
    assert cache_dir() is None
    calls = []
    cached_arrays("demo", {"n": 3}, _make(calls))
    cached_arrays("demo", {"n": 3}, _make(calls))
    assert len(calls) == 2
    monkeypatch.delenv("LIFELONG_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "lifelong"


def test_unwritable_cache_still_returns_the_data(tmp_path, monkeypatch):
    def refuse(path, arrays):
        raise PermissionError("read-only")

    monkeypatch.setattr(cache, "_write", refuse)
    calls = []
    with pytest.warns(RuntimeWarning, match="could not write"):
        out = cached_arrays("demo", {"n": 3}, _make(calls), folder=tmp_path)
    assert out["y"].tolist() == [0, 1, 2]


def test_mnist1d_benchmark_uses_the_cache(tmp_path, monkeypatch):
    from lifelong.data import benchmarks

    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path))
    benchmarks._mnist1d_arrays.cache_clear()
    try:
        first = benchmarks.make_benchmark("split-mnist1d", 0, train_size=100, test_size=40)
        files = sorted(p.name for p in tmp_path.iterdir())
        assert any(f.startswith("mnist1d-") for f in files)
        benchmarks._mnist1d_arrays.cache_clear()
        import mnist1d.data

        def no_generation(*a, **k):
            raise AssertionError("generated again despite the cache")

        monkeypatch.setattr(mnist1d.data, "make_dataset", no_generation)
        second = benchmarks.make_benchmark("split-mnist1d", 0, train_size=100, test_size=40)
        assert all(bool((a.train["x"] == b.train["x"]).all()) for a, b in zip(first.tasks, second.tasks))
    finally:
        benchmarks._mnist1d_arrays.cache_clear()
