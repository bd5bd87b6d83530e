"""Grids over any config value (a ``grid:`` section): expansion, names and labels, refused keys, the
vectorised/process split, and a tiny real continual pre-training grid (ratios x LR schedules) through the CLI."""

from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from lifelong.config import apply_overrides, validate
from lifelong.errors import ConfigError
from lifelong.runs.compare import label_of

ROOT = Path(__file__).resolve().parents[1]
BASE = {
    "benchmark": {"name": "split-digits", "params": {"n_tasks": 2, "classes_per_task": 2}},
    "model": {"name": "mlp", "params": {"hidden": [16]}},
    "train": {"steps": 3, "batch_size": 16, "lr": 0.05, "momentum": 0.9},
    "device": "cpu",
}
TRAIN_AXIS = [{"label": "rewarm", "lr_scheduler": "cosine", "lr_scheduler_scope": "task"},
              {"label": "one-decay", "lr_scheduler": "cosine", "lr_scheduler_scope": "stream"},
              {"lr_scheduler": "warmup_stable_decay", "warmup_ratio": 0.2}]


def _grid(**grid):
    return validate({**BASE, "strategy": ["naive", "ewc"], "seeds": [0, 1], "grid": grid})


def test_expansion_order_names_and_labels():
    cfg = _grid(**{"train.lr": [0.05, 0.1], "train.momentum": [0.0]})
    cells = cfg.expand()
    assert cfg.n_runs == len(cells) == 8 and cfg.is_grid
    # strategies, then the grid axes in the order written, then seeds; a one-value axis is not in the names
    assert [n for n, _ in cells] == [
        "naive-lr=0.05-seed0", "naive-lr=0.05-seed1", "naive-lr=0.1-seed0", "naive-lr=0.1-seed1",
        "ewc-lr=0.05-seed0", "ewc-lr=0.05-seed1", "ewc-lr=0.1-seed0", "ewc-lr=0.1-seed1"]
    by_name = dict(cells)
    one = by_name["ewc-lr=0.1-seed1"]
    assert (one.train.lr, one.train.momentum, one.seed, one.strategy_label) == (0.1, 0.0, 1, "ewc")
    assert one.grid is None and not one.is_grid and one.name == "ewc-lr=0.1-seed1"
    assert one.grid_point.label == "ewc lr=0.1"
    assert one.grid_point.axes == {"train.lr": "lr=0.1", "train.momentum": "momentum=0.0"}
    # the seeds of a cell share its label; different cells have different labels
    labels = [c.grid_point.label for _, c in cells]
    assert labels[0] == labels[1] == "naive lr=0.05" and len(set(labels)) == 4
    assert cfg.grid_summary() == "grid: 2 strategies × 2 lr values × 1 momentum × 2 seeds = 8 runs"


def test_a_section_axis_merges_mappings_and_names_runs_by_label_or_pairs():
    cfg = _grid(train=TRAIN_AXIS, **{"benchmark.params.n_tasks": [2, 3]})
    cells = dict(cfg.expand())
    assert len(cells) == 2 * 3 * 2 * 2
    rewarm = cells["naive-rewarm-n_tasks=3-seed0"]
    # merged into train: the base settings stay, the axis's settings replace theirs, the label is not a field
    assert rewarm.train.lr == 0.05 and rewarm.train.momentum == 0.9 and rewarm.train.steps == 3
    assert (rewarm.train.lr_scheduler, rewarm.train.lr_scheduler_scope) == ("cosine", "task")
    assert rewarm.benchmark.params == {"n_tasks": 3, "classes_per_task": 2}
    wsd = cells["naive-lr_scheduler=warmup_stable_decay,warmup_ratio=0.2-n_tasks=2-seed1"]
    assert wsd.train.lr_scheduler == "warmup_stable_decay" and wsd.train.warmup_ratio == 0.2
    assert wsd.grid_point.label == "naive lr_scheduler=warmup_stable_decay,warmup_ratio=0.2 n_tasks=2"
    assert cfg.grid_summary() == "grid: 2 strategies × 3 train variants × 2 n_tasks values × 2 seeds = 24 runs"
    # a mapping merges into a nested mapping too (benchmark.params keeps classes_per_task)
    nested = validate({**BASE, "grid": {"benchmark.params": [{"n_tasks": 3}, {"n_tasks": 2, "label": "two"}]}})
    (n1, c1), (n2, c2) = nested.expand()
    assert (n1, n2) == ("naive-n_tasks=3-seed0", "naive-two-seed0")
    assert c1.benchmark.params == {"n_tasks": 3, "classes_per_task": 2}


def test_a_run_config_is_the_resolved_single_cell_and_runs_again_as_it_is():
    cfg = _grid(train=TRAIN_AXIS[:2])
    name, cell = cfg.expand()[3]
    data = yaml.safe_load(yaml.safe_dump(cell.resolved()))
    assert "grid" not in data and data["grid_point"]["label"] == "naive one-decay" and data["seed"] == 1
    again = validate(data)
    assert not again.is_grid and again.single() is again and again.resolved() == cell.resolved()
    # a grid: section of one cell is that cell for `lifelong run`
    single = validate({**BASE, "grid": {"train.lr": [0.2]}})
    assert not single.is_grid and single.single().train.lr == 0.2 and single.single().grid is None
    with pytest.raises(ConfigError, match="grid of 8 runs"):
        cfg.single()
    # an empty grid: section is no grid, and a config without one keeps its config.yaml as before
    empty = validate({**BASE, "grid": {}})
    assert empty.grid is None and "grid" not in empty.resolved() and "grid_point" not in empty.resolved()


@pytest.mark.parametrize("grid, expected", [
    ({"train.lrr": [0.1, 0.2]}, r"grid key 'train\.lrr' is not a config field: train has no field 'lrr'\. "
                                r"Did you mean 'train\.lr'"),
    ({"trian.lr": [0.1]}, r"the top level has no field 'trian'\. Did you mean 'train'"),
    ({"train": [{"label": "a", "lr_schedulr": "cosine"}]}, r"grid key 'train\.lr_schedulr'.*'train\.lr_scheduler'"),
    ({"benchmark.params.n_taks": [2, 3]}, r"grid key 'benchmark\.params\.n_taks'.*Did you mean 'n_tasks'"),
    ({"train.lr.x": [1]}, r"train\.lr holds a value, not a section"),
    ({"strategy": ["ewc"]}, r"grid key 'strategy' is not allowed: strategies are an axis of their own"),
    ({"seeds": [[0, 1]]}, r"grid key 'seeds' is not allowed"),
    ({"train.lr": 0.1}, r"values of grid key 'train\.lr' must be a non-empty list"),
    ({"train.lr": []}, r"values of grid key 'train\.lr' must be a non-empty list"),
    ({"train": [{"lr": 0.1}, 3]}, r"grid key 'train' is a section, so each of its values must be a mapping"),
    ({"train": [{"lr": 0.1}], "train.lr": [0.2]}, r"grid keys 'train' and 'train\.lr' overlap"),
    ({"train.lr": [0.1, 0.1]}, r"grid key 'train\.lr' has values with the same label \['lr=0\.1'\]"),
])
def test_a_bad_grid_key_is_refused_up_front_naming_it(grid, expected):
    with pytest.raises(ConfigError, match=expected):
        validate({**BASE, "grid": grid})


def test_a_bad_value_names_the_grid_cell_and_its_keys():
    cfg = validate({**BASE, "grid": {"train.lr": [0.1, 0.2],
                                     "train.lr_scheduler": ["cosine", "cosin"]}})
    with pytest.raises(ConfigError) as info:
        cfg.expand()
    msg = str(info.value)
    assert msg.startswith("grid cell 'lr=0.1 lr_scheduler=cosin' (train.lr=0.1, train.lr_scheduler=cosin) is not a "
                          "valid config: train.lr_scheduler 'cosin' is unknown; choose one of:")
    assert "\n" not in msg


def test_grid_axes_from_the_command_line():
    data = apply_overrides(BASE, ["grid.train.lr=[0.1,0.01]", "grid.evaluation.eval_every=[0,2]"])
    assert data["grid"] == {"train.lr": [0.1, 0.01], "evaluation.eval_every": [0, 2]}
    assert validate(data).n_runs == 4


def test_label_of_groups_by_grid_cell_by_default():
    cell = {"strategy": {"name": "naive", "label": "naive"}, "grid_point": {"label": "naive ratio=0.05 rewarm"},
            "train": {"lr": 0.1}}
    assert label_of(cell) == "naive ratio=0.05 rewarm"
    assert label_of(cell, "strategy") == "naive" and label_of(cell, "train.lr") == "0.1"
    assert label_of({"strategy": {"name": "ewc", "label": None}}) == "ewc"  # a run outside a grid: its strategy


def test_validation_loss_columns_appear_only_for_runs_that_measure_them():
    from lifelong.engine.result import RunResult
    from lifelong.runs.compare import RunEntry, compare, markdown_table, validation_losses

    log = [{"step": 4, "task": 0, "general/val_loss": 3.0, "domain/0/val_loss": 2.4},
           {"step": 6, "task": 0, "general/token_share": 0.1},
           {"step": 8, "task": 1, "general/val_loss": 2.5, "domain/0/val_loss": 2.2, "domain/1/val_loss": 1.8}]
    assert validation_losses(log) == {"general_val_loss": 2.5, "domain_val_loss": pytest.approx(2.0)}
    assert validation_losses([{"step": 1, "lr": 0.1}]) == {}
    summary = {"average_accuracy": 0.5, "forgetting": 0.0, "bwt": 0.0, "fwt": 0.0, "wall_seconds": 1.0}
    entries = [RunEntry("a", RunResult(["t"], schedule_log=log), summary=summary),
               RunEntry("a", RunResult(["t"], schedule_log=log[:1]), summary=summary)]
    (row,) = compare(entries)
    assert row.cells()[-2:] == ["2.750 ± 0.354", "2.200 ± 0.283"]
    assert markdown_table([row]).splitlines()[0].endswith("| general val loss | domain val loss |")
    (plain,) = compare([RunEntry("b", RunResult(["t"]), summary=summary)])
    assert len(plain.cells()) == 7


def test_vectorised_stacks_take_scalar_axes_and_leave_the_others_to_processes():
    from lifelong.experiment.grid import _vectorised_jobs

    def split(**grid):
        cfg = validate({**BASE, "strategy": "naive", "seeds": [0, 1], "grid": grid})
        jobs = [(n, c.model_dump(mode="json"), f"/nonexistent/{n}") for n, c in cfg.expand()]
        stacked, rest = _vectorised_jobs(jobs, resume=False, console=None)
        return sorted(n for n, *_ in stacked), sorted(n for n, *_ in rest)

    # learning rates stack (one stack per... all four runs share model, data and batch schedule)
    stacked, rest = split(**{"train.lr": [0.05, 0.1]})
    assert len(stacked) == 4 and rest == []
    # a different model shape: one stack per shape, each with its two seeds
    stacked, rest = split(**{"model.params.hidden": [[16], [32]]})
    assert len(stacked) == 4 and rest == []
    from lifelong.vectorized import vectorizable

    cfgs = [c for _, c in validate({**BASE, "seeds": [0, 1], "grid": {"model.params.hidden": [[16], [32]]}}).expand()]
    groups, _ = vectorizable(cfgs)
    assert sorted(map(sorted, groups)) == [[0, 1], [2, 3]]
    # learning-rate schedules and batch sizes differ in what a stack shares: processes, or one stack per value
    stacked, rest = split(train=TRAIN_AXIS[:2])
    assert stacked == [] and len(rest) == 4
    groups, reasons = vectorizable([c for _, c in validate({**BASE, "seeds": [0], "grid": {
        "train.batch_size": [8, 16]}}).expand()])
    assert sorted(map(sorted, groups)) == [[0], [1]] and not reasons  # groups of one go to processes


# ----------------------------------------------------------------------------- a real grid

pytest_llm = pytest.mark.skipif(importlib.util.find_spec("transformers") is None
                                or importlib.util.find_spec("pyarrow") is None,
                                reason="the [llm] extra (transformers, pyarrow) is not installed")


def _corpus_module():
    spec = importlib.util.spec_from_file_location("make_cpt_corpus", ROOT / "examples" / "make_cpt_corpus.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["make_cpt_corpus"] = mod
    spec.loader.exec_module(mod)
    return mod


def _corpus(tmp_path: Path) -> Path:
    _corpus_module().write(tmp_path / "cpt", rows=60)
    return tmp_path / "cpt"


@pytest_llm
def test_a_tiny_grid_of_ratios_and_lr_schedules_runs_one_row_per_cell(tmp_path, monkeypatch):
    from lifelong.cli import main

    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path / "cache"))
    data_dir = _corpus(tmp_path)
    example = yaml.safe_load((ROOT / "examples" / "llm" / "continual-pretraining.yaml").read_text())
    example["benchmark"]["params"]["path"] = [str(data_dir / f"{t}.jsonl") for t in ("arith", "code", "chords")]
    example["benchmark"]["params"]["general"]["path"] = str(data_dir / "general.txt")
    example["model"]["params"].update(hidden=16, layers=1)
    example["train"].update(steps=8, batch_size=8, log_every=2)
    example["evaluation"]["eval_every"] = 4
    example["seeds"] = [0]
    example["grid"] = {"benchmark.params.general.ratio": [0.1, 0.3],
                       "train": [{"label": "rewarm", "lr_scheduler": "cosine", "lr_scheduler_scope": "task"},
                                 {"label": "one-decay", "lr_scheduler": "cosine", "lr_scheduler_scope": "stream"}]}
    cfg = tmp_path / "cpt.yaml"
    cfg.write_text(yaml.safe_dump(example))
    out = tmp_path / "runs"
    res = CliRunner().invoke(main, ["compare", str(cfg), "--out", str(out), "--workers", "1", "--quiet"],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert "grid: 2 ratios × 2 train variants × 1 seed = 4 runs" in res.output
    runs = sorted(p.name for p in out.iterdir() if p.is_dir())
    assert runs == ["naive-ratio=0.1-one-decay-seed0", "naive-ratio=0.1-rewarm-seed0",
                    "naive-ratio=0.3-one-decay-seed0", "naive-ratio=0.3-rewarm-seed0"]
    for name in runs:
        ratio, scope = (0.1 if "0.1" in name else 0.3), ("task" if "rewarm" in name else "stream")
        stored = yaml.safe_load((out / name / "config.yaml").read_text())
        assert "grid" not in stored and stored["name"] == name
        assert stored["benchmark"]["params"]["general"] == {"path": str(data_dir / "general.txt"), "ratio": ratio,
                                                            "schedule": "constant", "held_out": 0.2}
        assert (stored["train"]["lr_scheduler"], stored["train"]["lr_scheduler_scope"]) == ("cosine", scope)
        with open(out / name / "schedule.csv", newline="") as fh:
            log = list(csv.DictReader(fh))
        shares = [float(r["general/token_share"]) for r in log if r.get("general/token_share")]
        assert shares and shares[-1] == pytest.approx(ratio, abs=0.03), (name, shares[-1])
        assert any(r.get("general/val_loss") for r in log)  # the general validation loss, every eval_every steps
        # the schedule itself: re-warmed at each task start (task scope), or one decay over the stream
        lrs = [(int(r["task"]), float(r["lr"])) for r in log if r.get("lr")]
        last0 = [lr for t, lr in lrs if t == 0][-1]
        first1 = [lr for t, lr in lrs if t == 1][0]
        assert (first1 > last0) if scope == "task" else (first1 < last0), (name, lrs)
    # one row per cell, labelled by its axes' values, in the table, comparison.md and the report
    md = (out / "comparison.md").read_text().splitlines()
    cells = [line.split("|")[1].strip() for line in md[2:]]
    assert md[0].startswith("| grid cell |") and md[0].rstrip().endswith("| general val loss | domain val loss |")
    general = {c: float(line.split("|")[-3]) for c, line in zip(cells, md[2:])}
    assert all(0.0 < v < 10.0 for v in general.values())
    assert cells == ["naive ratio=0.1 rewarm", "naive ratio=0.1 one-decay", "naive ratio=0.3 rewarm",
                     "naive ratio=0.3 one-decay"]
    assert all(line.split("|")[2].strip() == "1" for line in md[2:])
    report = CliRunner().invoke(main, ["report", str(out), "--out", str(tmp_path / "r.html")], catch_exceptions=False)
    assert report.exit_code == 0 and "naive ratio=0.3 one-decay" in (tmp_path / "r.html").read_text()
    # one cell again with `lifelong run`: its config.yaml is a single run
    again = CliRunner().invoke(main, ["run", str(out / runs[0] / "config.yaml"), "--out", str(tmp_path / "one")],
                               catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert yaml.safe_load((tmp_path / "one" / "config.yaml").read_text())["grid_point"]["label"] == \
        "naive ratio=0.1 one-decay"


def test_a_scalar_axis_trains_as_one_stack_and_keeps_its_cells_apart(tmp_path):
    from lifelong.experiment import run_grid

    grid = validate({**BASE, "seeds": [0, 1], "grid": {"train.lr": [0.05, 0.2]}})
    outcome = run_grid(grid, tmp_path / "runs", workers=1, progress=False)
    assert not outcome.failed and len(outcome.runs) == 4
    rows, entries = outcome.rows()
    assert [(r.label, r.runs) for r in rows] == [("naive lr=0.05", 2), ("naive lr=0.2", 2)]
    stored = yaml.safe_load((tmp_path / "runs" / "naive-lr=0.2-seed1" / "config.yaml").read_text())
    assert stored["train"]["lr"] == 0.2 and stored["grid_point"]["label"] == "naive lr=0.2" and "grid" not in stored
    assert "vectorised" in (tmp_path / "runs" / "naive-lr=0.2-seed1" / "log.txt").read_text()
    # the same numbers as running each cell in a process of its own
    alone = run_grid(grid, tmp_path / "alone", workers=1, progress=False, vectorize=False)
    assert [r.stats["average_accuracy"].mean for r in alone.rows()[0]] == \
        pytest.approx([r.stats["average_accuracy"].mean for r in rows], abs=1e-6)


def test_the_shipped_example_is_what_its_generator_writes_and_a_30_run_grid(tmp_path):
    from lifelong.config import load_config

    shipped = ROOT / "examples" / "data" / "cpt"
    written = _corpus_module().write(tmp_path / "cpt", rows=300)
    assert [p.name for p in written] == ["general.txt", "arith.jsonl", "code.jsonl", "chords.jsonl"]
    for p in written:
        assert p.read_bytes() == (shipped / p.name).read_bytes()
    assert sum(p.stat().st_size for p in shipped.iterdir()) < 300_000
    cfg = load_config(ROOT / "examples" / "llm" / "continual-pretraining.yaml")
    assert cfg.grid_summary() == "grid: 5 ratios × 3 train variants × 2 seeds = 30 runs"
    cells = cfg.expand()
    assert cells[0][0] == "naive-ratio=0.0-rewarm-seed0" and cells[-1][0] == "naive-ratio=0.5-wsd-seed1"
    schedules = {(c.train.lr_scheduler, c.train.lr_scheduler_scope) for _, c in cells}
    assert schedules == {("cosine", "task"), ("cosine", "stream"), ("warmup_stable_decay", "stream")}
    assert sorted({c.benchmark.params["general"]["ratio"] for _, c in cells}) == [0.0, 0.05, 0.1, 0.25, 0.5]
