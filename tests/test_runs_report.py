"""The HTML report: one self-contained file with the expected sections, images and numbers."""

from __future__ import annotations

import base64
import re

import pytest

from lifelong.engine.result import RunResult
from lifelong.errors import ConfigError
from lifelong.runs import RunDir
from lifelong.runs.report import schedule_groups, write_report


def result(a0: float, f0: float, wall: float, with_logs: bool = True) -> RunResult:
    r = RunResult(task_names=["even", "odd"], accuracy=[[a0, 0.1], [f0, 0.9]], row_tasks=[[0], [0, 1]],
                  baseline=[0.1, 0.1], task_seconds=[wall / 2, wall / 2], task_peak_memory=[2**20, 2**21],
                  task_steps=[20, 20], wall_seconds=wall, complete=True)
    if with_logs:
        r.curves = [{"step": s, "task": s // 20, "eval_task": j, "accuracy": 0.1 + 0.02 * s}
                    for s in (0, 10, 20, 30) for j in range(s // 20 + 1)]
        r.losses = [{"step": s, "task": s // 20, "loss": 2.0 / (1 + s)} for s in (0, 10, 20, 30)]
        r.schedule_log = [{"step": s, "task": s // 20, "available_fraction": 0.5 + 0.01 * s, "p/0": 1.0 - 0.01 * s,
                           "p/1": 0.01 * s, "review/interval": 4 + s} for s in (0, 10, 20, 30)]
    return r


def write_runs(tmp_path):
    dirs = []
    specs = [("ewc", 0, (0.9, 0.5, 10.0), None), ("ewc", 1, (0.8, 0.6, 12.0), None),
             ("lora <lm>", 0, (0.7, 0.7, 20.0), {"perplexity": {"even": 12.25, "odd": 30.5}})]
    for i, (strategy, seed, args, extra) in enumerate(specs):
        rd = RunDir(tmp_path / f"run{i}")
        rd.write_config({"strategy": strategy, "seed": seed})
        rd.write_result(result(*args, with_logs=i != 1), extra=extra)
        dirs.append(rd.path)
    return dirs


def test_report_is_self_contained_and_has_every_section(tmp_path):
    out = write_report(write_runs(tmp_path), tmp_path / "report.html", title="Split <digits>")
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>Split &lt;digits&gt;</title>" in text
    # nothing is fetched from anywhere: no URLs, scripts, external style sheets or fonts
    assert not re.search(r"https?://", text)
    assert "<script" not in text and "<link" not in text and "@import" not in text and "url(" not in text
    for anchor in ("comparison", "runs", "matrices", "forgetting", "average", "curves", "schedule", "extra"):
        assert f'<section id="{anchor}">' in text, anchor
    # images: forgetting + average + learning curves + loss + 2 schedule figures
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert len(images) == 6
    assert all(base64.b64decode(img)[:8] == b"\x89PNG\r\n\x1a\n" for img in images)
    # comparison numbers: ewc ACC (0.5+0.9)/2=0.7 and (0.6+0.9)/2=0.75 -> 0.725 ± 0.035; F 0.4, 0.2 -> 0.300 ± 0.141
    assert "0.725 ± 0.035" in text and "0.300 ± 0.141" in text and "11.0 ± 1.4 s" in text
    # the label is escaped, the LM run's extra metric shown
    assert "lora &lt;lm&gt;" in text and "lora <lm>" not in text
    assert "perplexity.even" in text and "12.250" in text and "30.500" in text


def test_report_without_logs_leaves_those_sections_out(tmp_path):
    rd = RunDir(tmp_path / "only")
    rd.write_config({"strategy": "naive"})
    rd.write_result(result(0.9, 0.4, 3.0, with_logs=False))
    text = write_report([rd.path], tmp_path / "r.html").read_text()
    assert '<section id="matrices">' in text and '<section id="curves">' not in text
    assert '<section id="schedule">' not in text and '<section id="extra">' not in text
    assert len(re.findall(r"data:image/png;base64", text)) == 2  # forgetting, average
    # the accuracy matrix is a colour-coded table: a value per cell, the colour from its value
    table = re.search(r'<table class="heatmap">.*?</table>', text, re.S).group(0)
    cells = re.findall(r'<td style="background:(#[0-9a-f]{6});color:(#[0-9a-f]{3})" title="([0-9.]+)">([0-9.]*)</td>',
                       table)
    assert [c[3] for c in cells] == ["0.90", "0.10", "0.40", "0.90"]
    assert cells[0][0] == cells[3][0] != cells[1][0]  # equal values, equal colours
    assert cells[1][1] == "#fff" and cells[0][1] == "#000"  # light text on the dark (low) end
    assert "<th>even</th><th>odd</th>" in table and "<th>even</th><td" in table and "<tr><th>odd</th><td" in table


def test_report_needs_runs(tmp_path):
    with pytest.raises(ConfigError, match="at least one run folder"):
        write_report([], tmp_path / "r.html")


def test_schedule_columns_are_grouped_by_stem_and_scale():
    rows = [{"step": 0, "task": 0, "available_fraction": 0.2, "review_fraction": 0.5, "p/0": 0.6, "p/1": 0.4,
             "interval_3": 7, "review/interval": 12, "name": "x"}]
    groups = schedule_groups(rows)
    assert list(groups.items()) == [
        ("fractions and probabilities", ["available_fraction", "review_fraction"]),
        ("p", ["p/0", "p/1"]),
        ("review/interval", ["review/interval"]),
        ("interval_3", ["interval_3"]),
    ]


def test_report_groups_runs_by_label(tmp_path):
    dirs = []
    for i, ratio in enumerate((0.3, 0.7)):
        rd = RunDir(tmp_path / f"er{i}")
        rd.write_config({"strategy": {"name": "er", "params": {"ratio": ratio}, "label": f"er[ratio={ratio}]"},
                         "seed": 0})
        rd.write_result(result(0.9 - 0.1 * i, 0.5, 10.0, with_logs=False))
        dirs.append(rd.path)
    text = write_report(dirs, tmp_path / "report.html").read_text(encoding="utf-8")
    assert "2 runs in 2 groups" in text
    assert "<td>er[ratio=0.3]</td>" in text and "<td>er[ratio=0.7]</td>" in text
