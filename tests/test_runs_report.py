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


def test_continual_pretraining_section_from_real_runs_at_three_ratios(tmp_path, monkeypatch):
    """Three tiny GPT-2 runs of the text benchmark with a general corpus at r = 0, 0.2, 0.5: the report has
    the continual pre-training section with the measured-vs-predicted curves (one figure per ratio), the
    final-loss-against-ratio plot, the CMR statement for each tolerance and the fits' error tables."""
    pytest.importorskip("transformers")
    pytest.importorskip("pyarrow")
    pytest.importorskip("scipy")
    import json

    import numpy as np

    from lifelong.assessment.study import curves_of_entry
    from lifelong.config import validate
    from lifelong.experiment import run_experiment
    from lifelong.runs.compare import load_entries

    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path / "cache"))
    rows = [{"text": f"{a}+{b}={a + b}" if i % 2 else f"x{a}y{b}", "task": "sum" if i % 2 else "tag"}
            for i, (a, b) in enumerate((i * 7 % 97, i * 13 % 89) for i in range(60))]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    words = "the cat sees a dog and the bird walks to the old house near a river".split()
    corpus = tmp_path / "general.txt"
    corpus.write_text("\n".join(" ".join(words[(i * 3 + j) % len(words)] for j in range(3 + i % 5))
                                for i in range(80)) + "\n", encoding="utf-8")
    dirs = []
    for ratio in (0.0, 0.2, 0.5):
        cfg = validate({
            "benchmark": {"name": "text", "params": {"path": str(data), "text_field": "text", "test_fraction": 0.25, "tasks": ["tag", "sum"],
                                                     "general": {"path": str(corpus), "ratio": ratio,
                                                                 "held_out": 0.2}}},
            "model": {"name": "tiny-causal-lm", "params": {"hidden": 32, "layers": 1, "heads": 2}},
            "train": {"steps": 15, "batch_size": 8, "lr": 5e-3, "optimizer": "adamw", "lr_scheduler": "cosine",
                      "warmup_ratio": 0.1, "log_every": 1},
            "evaluation": {"eval_every": 1}, "device": "cpu", "seed": 0})
        run_experiment(cfg, tmp_path / f"r{ratio}", progress=False)
        dirs.append(tmp_path / f"r{ratio}")
    # the engine's own schedule, rebuilt from the config, is the rate the run logged (row at s: rate of step s + 1)
    entry = load_entries(dirs[1:2], "benchmark.params.general.ratio")[0]
    c = curves_of_entry(entry)
    assert c.lr_source == "scheduler" and c.ratio == 0.2 and c.base_general is not None and c.total_steps == 30
    logged = {int(r["step"]): float(r["lr"]) for r in entry.result.schedule_log
              if isinstance(r.get("lr"), (int, float))}
    assert [logged[s] for s in range(1, 15)] == pytest.approx(c.lrs[1:15].tolist())
    assert np.all(np.diff(c.tokens) > 0)

    text = write_report(dirs, tmp_path / "report.html", by="benchmark.params.general.ratio",
                        tolerance=[0.1, 0.5]).read_text(encoding="utf-8")
    assert '<section id="cpt">' in text and "Continual pre-training" in text
    section = text.split('<section id="cpt">')[1].split("</section>")[0]
    images = re.findall(r'src="data:image/png;base64,', section)
    assert len(images) == 4  # one measured-vs-predicted figure per ratio, and the ratio plot
    assert section.count("dashed; dotted line: the fit boundary") == 3
    assert "Critical mixture ratio" in section and section.count("general share <b>r* = ") == 2
    assert "within <b>0.1</b> nats" in section and "within <b>0.5</b> nats" in section
    assert "CPT loss-curve law: prediction errors" in section and "Mixture law: predicted final losses" in section
    assert "scored in sample" in section  # three ratios: too few to hold half out
    # a report over runs without a general corpus has no such section
    plain = write_report(write_runs(tmp_path / "plain"), tmp_path / "plain.html").read_text(encoding="utf-8")
    assert '<section id="cpt">' not in plain


def test_continual_pretraining_section_says_why_when_there_is_too_little_to_fit(tmp_path):
    """One run with a general corpus, validated only at its task ends: curves are drawn, the fits are
    listed as not fitted with their reasons, and nothing fails."""
    r = result(0.9, 0.5, 10.0)
    r.schedule_log = [{"step": s, "task": min(s // 20, 1), "general/val_loss": 2.0 + 0.01 * s,
                       "domain/0/val_loss": 3.0 - 0.01 * s, "domain/1/val_loss": 3.1 - 0.01 * s} for s in (0, 20, 40)]
    rd = RunDir(tmp_path / "one")
    rd.write_config({"strategy": "er", "seed": 0, "train": {"steps": 20, "lr": 0.01},
                     "benchmark": {"name": "text", "params": {"general": {"ratio": 0.25}}}})
    rd.write_result(r)
    text = write_report([rd.path], tmp_path / "r.html", tolerance=0.2).read_text(encoding="utf-8")
    section = text.split('<section id="cpt">')[1].split("</section>")[0]
    assert "Not fitted, and why" in section and "eval_every" in section and "general/tokens" in section
    assert "No critical mixture ratio" in section
    assert len(re.findall(r'src="data:image/png;base64,', section)) == 2
    with pytest.raises(ConfigError, match="tolerance"):
        write_report([rd.path], tmp_path / "bad.html", tolerance=-1)


def test_cli_report_takes_several_tolerances_after_one_flag(tmp_path):
    from click.testing import CliRunner

    from lifelong.cli import main

    dirs = write_runs(tmp_path)
    res = CliRunner().invoke(main, ["report", *map(str, dirs), "--out", str(tmp_path / "r.html"),
                                    "--tolerance", "0.1", "0.5"])
    assert res.exit_code == 0, res.output
    assert "report of 3 run(s)" in res.output
    res = CliRunner().invoke(main, ["report", *map(str, dirs), "--out", str(tmp_path / "r.html"), "--tolerance", "-1"])
    assert res.exit_code != 0 and "tolerance must be" in res.output
