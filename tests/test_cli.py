"""The command line: help, errors as one red line, run, compare (process pool and Ray), report, list, runs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lifelong.cli import main

SMALL = {
    "benchmark": {"name": "split-digits", "params": {"n_tasks": 3, "classes_per_task": 2}},
    "model": {"name": "mlp", "params": {"hidden": [32]}},
    "train": {"steps": 25, "batch_size": 32, "lr": 0.05, "momentum": 0.9},
    "seed": 0,
    "device": "cpu",
}


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def write(tmp_path: Path, data: dict, name: str = "config.yaml") -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(data))
    return p


@pytest.mark.parametrize("command", [[], ["demo"], ["run"], ["compare"], ["report"], ["list"], ["runs"]])
def test_help_everywhere(command):
    res = invoke(*command, "--help")
    assert res.exit_code == 0 and "Usage:" in res.output


def test_bad_config_is_one_red_line_exit_2(tmp_path):
    cfg = write(tmp_path, {**SMALL, "train": {"lr": 0.1, "epochz": 2}})
    res = invoke("run", str(cfg), "--out", str(tmp_path / "r"), "--quiet")
    assert res.exit_code == 2
    assert "train.epochz" in res.output and "epochs" in res.output and "Traceback" not in res.output
    res = invoke("run", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "r"))
    assert res.exit_code == 2 and "does not exist" in res.output
    assert not (tmp_path / "r").exists()


def test_unwritable_out_is_a_clear_message(tmp_path):
    cfg = write(tmp_path, SMALL)
    (tmp_path / "file.txt").write_text("x")
    res = invoke("run", str(cfg), "--out", str(tmp_path / "file.txt" / "run"), "--quiet")
    assert res.exit_code == 2 and "is a file, not a folder" in res.output


def test_run_with_flags_and_overrides_then_refuse_then_runs_index(tmp_path):
    cfg = write(tmp_path, SMALL)
    out = tmp_path / "results" / "r1"
    res = invoke("run", str(cfg), "--out", str(out), "--quiet", "--lr", "0.1", "--set", "train.steps=20",
                 "--set", "model.params.hidden=[16]", "--seed", "4")
    assert res.exit_code == 0, res.output
    stored = yaml.safe_load((out / "config.yaml").read_text())
    assert stored["train"]["lr"] == 0.1 and stored["train"]["steps"] == 20 and stored["seed"] == 4
    assert stored["model"]["params"]["hidden"] == [16]
    m = json.loads((out / "metrics.json").read_text())
    assert m["complete"] and m["task_steps"] == [20, 20, 20]
    assert "average accuracy" in res.output and f"{m['average_accuracy']:.3f}" in res.output
    again = invoke("run", str(cfg), "--out", str(out), "--quiet")
    assert again.exit_code == 2 and "--resume" in again.output and "--overwrite" in again.output
    res = invoke("run", str(cfg), "--out", str(tmp_path / "results" / "r2"), "--quiet", "--strategy", "er")
    assert res.exit_code == 0, res.output
    listing = invoke("runs", "--root", str(tmp_path / "results"))
    assert listing.exit_code == 0 and "r1" in listing.output and "r2" in listing.output and "2 run(s)" in listing.output
    only_er = invoke("runs", "--root", str(tmp_path / "results"), "--strategy", "er")
    assert "r2" in only_er.output and "r1" not in only_er.output and "1 run(s)" in only_er.output
    future = invoke("runs", "--root", str(tmp_path / "results"), "--since", "2999-01-01")
    assert "0 run(s)" in future.output
    bad_date = invoke("runs", "--root", str(tmp_path / "results"), "--since", "yesterday")
    assert bad_date.exit_code == 2 and "ISO" in bad_date.output
    # `lifelong run RUN_DIR --resume` on a finished run: nothing left to do, same numbers
    resumed = invoke("run", str(out), "--resume", "--quiet")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads((out / "metrics.json").read_text())["accuracy_matrix"] == m["accuracy_matrix"]
    not_cfg = invoke("run", str(out), "--quiet")
    assert not_cfg.exit_code == 2 and "--resume" in not_cfg.output
    # a grid one level down is listed too
    grid_dir = tmp_path / "results" / "grid"
    res = invoke("compare", str(cfg), "--out", str(grid_dir), "--workers", "1", "--quiet", "--set", "seeds=[7]",
                 "--set", "seed=7")
    assert res.exit_code == 0, res.output
    everything = invoke("runs", "--root", str(tmp_path / "results"))
    assert "3 run(s)" in everything.output and "naive-s" in everything.output  # r1, r2 and the grid run
    # a shell glob over a results folder also names its files: they are skipped
    rep = invoke("report", str(out), str(tmp_path / "results" / "r2"), str(tmp_path / "results" / "index.sqlite"),
                 "--out", str(tmp_path / "rep.html"))
    assert rep.exit_code == 0, rep.output
    html = (tmp_path / "rep.html").read_text()
    assert "<html" in html and "naive" in html and "er" in html and "http://" not in html.split("</style>")[0]


def test_list_shows_every_registry():
    res = invoke("list")
    assert res.exit_code == 0
    for title in ("benchmarks", "models", "strategies", "buffers", "consolidators", "schedules", "metrics"):
        assert title in res.output
    for name in ("split-digits", "permuted-mnist1d", "mlp", "ewc", "der++", "reservoir", "uniform"):
        assert name in res.output
    only = invoke("list", "strategies")
    assert "der++" in only.output and "split-digits" not in only.output


def _table_rows(output: str) -> dict[str, list[str]]:
    """The comparison table's rows by label, without the wall-time column (timings differ between runs)."""
    rows = {}
    for line in output.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line) if c.strip()]
        if len(cells) == 7 and cells[0] not in ("strategy",):
            rows[cells[0]] = cells[1:6]
    return rows


GRID = {**SMALL, "strategy": ["naive", "er"], "seeds": [0, 1]}
GRID.pop("seed")


@pytest.fixture(scope="module")
def pool_grid(tmp_path_factory):
    """The small grid run once in a 2-process pool (not vectorised): (config path, output folder, CLI output)."""
    tmp = tmp_path_factory.mktemp("pool")
    cfg = write(tmp, GRID)
    res = invoke("compare", str(cfg), "--out", str(tmp / "grid"), "--workers", "2", "--quiet", "--no-vectorize")
    assert res.exit_code == 0, res.output
    return cfg, tmp / "grid", res.output


def test_compare_in_a_process_pool(pool_grid, tmp_path):
    cfg, grid, output = pool_grid
    # the pool says how it uses the machine: workers x torch threads, from the cores available
    import re

    from lifelong.experiment.grid import available_cores, worker_threads

    m = re.search(r"process pool: (\d+) worker\(s\) x (\d+) torch thread\(s\) each, for 4 run\(s\) on (\d+)", output)
    assert m, output
    assert int(m.group(1)) == 2 and int(m.group(2)) == worker_threads(2) and int(m.group(3)) == available_cores()
    rows = _table_rows(output)
    assert set(rows) == {"naive", "er"} and rows["naive"][0] == "2"
    names = sorted(p.name for p in grid.iterdir() if p.is_dir())
    assert names == ["er-seed0", "er-seed1", "naive-seed0", "naive-seed1"]
    assert (grid / "report.html").exists() and (grid / "index.sqlite").exists()
    md = (grid / "comparison.md").read_text()
    assert "| naive |" in md
    # er beats naive fine-tuning on class-incremental digits
    acc = {k: float(v[1].split(" ")[0]) for k, v in rows.items()}
    assert acc["er"] > acc["naive"] + 0.1
    # the same table as running the grid in this process
    inline = invoke("compare", str(cfg), "--out", str(tmp_path / "grid1"), "--workers", "1", "--quiet")
    assert _table_rows(inline.output) == rows
    # an existing grid folder is refused unless --resume/--overwrite; --resume keeps finished runs
    again = invoke("compare", str(cfg), "--out", str(grid), "--quiet")
    assert again.exit_code == 2 and "--resume" in again.output
    resumed = invoke("compare", str(cfg), "--out", str(grid), "--resume", "--workers", "1", "--quiet")
    assert resumed.exit_code == 0 and _table_rows(resumed.output) == rows


def test_pool_workers_share_out_the_cores(monkeypatch):
    from lifelong.experiment import grid

    monkeypatch.setattr(grid, "available_cores", lambda: 16)
    assert grid.default_workers(40) == 16 and grid.default_workers(3) == 3
    assert grid.worker_threads(16) == 1 and grid.worker_threads(3) == 5 and grid.worker_threads(1) == 16
    monkeypatch.setattr(grid, "available_cores", lambda: 2)
    assert grid.worker_threads(4) == 1  # never fewer than one thread


def test_compare_on_a_local_ray_instance(pool_grid, tmp_path):
    ray = pytest.importorskip("ray", reason="the [distributed] extra (ray) is not installed")
    cfg, _, pool_output = pool_grid
    try:
        res = CliRunner().invoke(main, ["compare", str(cfg), "--out", str(tmp_path / "ray"), "--executor", "ray",
                                        "--workers", "2", "--quiet"], catch_exceptions=False)
    finally:
        if ray.is_initialized():
            ray.shutdown()
    if res.exit_code == 2 and "cannot start or reach" in res.output:
        pytest.skip(f"Ray cannot start in this sandbox: {res.output.strip()[:300]}")
    assert res.exit_code == 0, res.output
    assert _table_rows(res.output) == _table_rows(pool_output)  # same numbers as the process pool
    assert len(_table_rows(res.output)) == 2


def test_compare_reports_an_unreachable_ray_address(tmp_path):
    pytest.importorskip("ray")
    cfg = write(tmp_path, GRID)
    res = invoke("compare", str(cfg), "--out", str(tmp_path / "x"), "--executor", "ray", "--address",
                 "127.0.0.1:1", "--quiet")
    assert res.exit_code == 2 and "cannot start or reach the Ray cluster at 127.0.0.1:1" in res.output


def test_demo_runs_a_small_comparison(tmp_path):
    res = invoke("demo", "--out", str(tmp_path / "demo"), "--seeds", "1", "--epochs", "1", "--workers", "2", "--quiet")
    assert res.exit_code == 0, res.output
    rows = _table_rows(res.output)
    assert list(rows) == ["naive", "ewc", "lwf", "er", "der++"]
    assert (tmp_path / "demo" / "report.html").exists()
