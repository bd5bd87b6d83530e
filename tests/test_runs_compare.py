"""Comparison tables: mean ± sample std by label, checked against numbers worked out by hand."""

from __future__ import annotations

import pytest
from rich.console import Console

from lifelong.engine.result import RunResult
from lifelong.runs import RunDir
from lifelong.runs.compare import (
    RunEntry,
    Stat,
    compare,
    compare_dirs,
    html_table,
    label_of,
    markdown_table,
    rich_table,
)


def two_task(a0: float, f0: float, d1: float, wall: float) -> RunResult:
    # R = [[a0, 0.1], [f0, d1]]: ACC = (f0 + d1)/2, forgetting = a0 - f0, BWT = f0 - a0, FWT = 0.1 - 0.1 = 0
    return RunResult(task_names=["t0", "t1"], accuracy=[[a0, 0.1], [f0, d1]], row_tasks=[[0], [0, 1]],
                     baseline=[0.1, 0.1], wall_seconds=wall)


def entries() -> list[RunEntry]:
    return [
        RunEntry("naive", two_task(0.9, 0.5, 0.9, 10.0), {"seed": 0}),  # ACC 0.7, F 0.4
        RunEntry("joint", RunResult(task_names=["t0", "t1"], accuracy=[[0.95, 0.85]], row_tasks=[[0, 1]],
                                    wall_seconds=30.0), {"seed": 0}),  # ACC 0.9, F undefined
        RunEntry("naive", two_task(0.8, 0.6, 0.8, 12.0), {"seed": 1}),  # ACC 0.7, F 0.2
        RunEntry("naive", two_task(1.0, 0.7, 0.9, 14.0), {"train": {"seed": 2}}),  # ACC 0.8, F 0.3
    ]


def test_mean_and_sample_std_by_hand():
    rows = compare(entries())
    assert [r.label for r in rows] == ["naive", "joint"]  # first-seen order
    naive, joint = rows
    assert naive.runs == 3 and naive.seeds == [0, 1, 2]
    # ACC 0.7, 0.7, 0.8: mean 2.2/3; deviations -1/30, -1/30, 2/30 -> var = (6/900)/2 -> std = sqrt(1/300)
    assert naive.stats["average_accuracy"].mean == pytest.approx(2.2 / 3)
    assert naive.stats["average_accuracy"].std == pytest.approx((1 / 300) ** 0.5)
    # forgetting 0.4, 0.2, 0.3: mean 0.3, std sqrt((0.01+0.01+0)/2) = 0.1
    assert naive.stats["forgetting"].mean == pytest.approx(0.3)
    assert naive.stats["forgetting"].std == pytest.approx(0.1)
    assert naive.stats["bwt"].mean == pytest.approx(-0.3)
    assert naive.stats["fwt"].mean == pytest.approx(0.0)
    # wall 10, 12, 14: mean 12, std 2
    assert naive.stats["wall_seconds"].mean == pytest.approx(12.0)
    assert naive.stats["wall_seconds"].std == pytest.approx(2.0)
    assert naive.cells() == ["naive", "3", "0.733 ± 0.058", "0.300 ± 0.100", "-0.300 ± 0.100", "0.000 ± 0.000",
                             "12.0 ± 2.0 s"]
    # a single run has no std; undefined metrics show a dash
    assert joint.stats["average_accuracy"] == Stat(pytest.approx(0.9), None, 1)
    assert joint.cells() == ["joint", "1", "0.900", "—", "—", "—", "30.0 s"]


def test_stat_skips_undefined_values():
    s = Stat.of([0.2, None, float("nan"), 0.4])
    assert s.n == 2 and s.mean == pytest.approx(0.3) and s.std == pytest.approx(0.02 ** 0.5)  # deviations ±0.1, n-1 = 1
    assert Stat.of([None]).format() == "—"


def test_renderers():
    rows = compare(entries())
    md = markdown_table(rows, label="strategy")
    lines = md.strip().splitlines()
    assert lines[0] == "| strategy | runs | avg accuracy | forgetting | BWT | FWT | wall time |"
    assert lines[1] == "|:---|---:|---:|---:|---:|---:|---:|"
    assert lines[2] == "| naive | 3 | 0.733 ± 0.058 | 0.300 ± 0.100 | -0.300 ± 0.100 | 0.000 ± 0.000 | 12.0 ± 2.0 s |"
    html = html_table(rows, label="strategy")
    assert "<th>strategy</th>" in html and "<td class=num>0.733 ± 0.058</td>" in html
    console = Console(record=True, width=160)
    console.print(rich_table(rows, title="split", label="strategy"))
    text = console.export_text()
    assert "0.733 ± 0.058" in text and "joint" in text and "strategy" in text


def test_html_escapes_labels():
    rows = compare([RunEntry("<b>x|y</b>", two_task(0.9, 0.5, 0.9, 1.0))])
    assert "&lt;b&gt;x|y&lt;/b&gt;" in html_table(rows)
    assert "x\\|y" in markdown_table(rows)


def test_label_of():
    cfg = {"strategy": {"name": "ewc", "lambda": 10}, "curriculum": "pacing", "train": {"optimizer": "sgd"}}
    assert label_of(cfg) == "ewc"
    assert label_of(cfg, "curriculum") == "pacing"
    assert label_of(cfg, "train.optimizer") == "sgd"
    assert label_of(cfg, ["strategy", "curriculum"]) == "ewc / pacing"
    assert label_of(cfg, "memory", default="run-7") == "run-7"


def test_compare_dirs_groups_written_runs(tmp_path):
    dirs = []
    for i, (strategy, args) in enumerate([("ewc", (0.9, 0.5, 0.9, 10.0)), ("ewc", (0.8, 0.6, 0.8, 12.0)),
                                          ("naive", (1.0, 0.7, 0.9, 14.0))]):
        rd = RunDir(tmp_path / f"r{i}")
        rd.write_config({"strategy": strategy, "seed": i})
        rd.write_result(two_task(*args))
        dirs.append(rd.path)
    rows = compare_dirs(dirs)
    assert [(r.label, r.runs) for r in rows] == [("ewc", 2), ("naive", 1)]
    assert rows[0].stats["average_accuracy"].mean == pytest.approx(0.7)
    assert rows[0].stats["forgetting"].std == pytest.approx((0.02) ** 0.5)  # F 0.4, 0.2
    assert rows[1].stats["forgetting"].mean == pytest.approx(0.3)


def test_runs_are_grouped_by_their_label_not_merged_by_name(tmp_path):
    # what a grid writes for two ratios of one strategy: same name, distinct labels
    dirs = []
    for i, (ratio, args) in enumerate([(0.3, (0.9, 0.5, 0.9, 10.0)), (0.7, (0.8, 0.6, 0.8, 12.0)),
                                       (0.3, (1.0, 0.7, 0.9, 14.0))]):
        rd = RunDir(tmp_path / f"r{i}")
        rd.write_config({"strategy": {"name": "er", "params": {"ratio": ratio}, "label": f"er[ratio={ratio}]"},
                         "curriculum": {"name": "linear", "label": None}, "seed": i})
        rd.write_result(two_task(*args))
        dirs.append(rd.path)
    rows = compare_dirs(dirs)
    assert [(r.label, r.runs) for r in rows] == [("er[ratio=0.3]", 2), ("er[ratio=0.7]", 1)]
    assert label_of({"curriculum": {"name": "linear", "label": None}}, "curriculum") == "linear"
    assert label_of({"strategy": [{"name": "ewc"}, {"name": "er", "label": "er-small"}]}) == "ewc+er-small"
    # the terminal table shows the brackets (they are not rich markup)
    console = Console(record=True, width=160)
    console.print(rich_table(rows, label="strategy"))
    text = console.export_text()
    assert "er[ratio=0.3]" in text and "er[ratio=0.7]" in text
