"""A run that diverges (NaN loss) can be continued at a lower learning rate."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from click.testing import CliRunner

from lifelong.cli import main

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "split-digits.yaml")


def test_nan_stop_then_resume_with_a_lower_learning_rate(tmp_path):
    out = tmp_path / "run"
    common = ["--quiet", "--set", "evaluation.eval_every=0", "--set", "benchmark.params.n_tasks=2"]
    res = CliRunner().invoke(main, ["run", EXAMPLE, "--out", str(out), "--strategy", "naive", "--steps", "6",
                                    "--lr", "1e12", *common])
    assert res.exit_code == 2 and "the loss became nan in task" in res.output
    assert json.loads((out / "metrics.json").read_text())["complete"] is False
    assert "--lr 1e+11" in (out / "log.txt").read_text()  # the log says how to continue

    # only the settings that get a diverged run going again may change on resume
    res = CliRunner().invoke(main, ["run", "--resume", str(out), "--epochs", "9", "--quiet"])
    assert res.exit_code == 2 and "only train.lr and train.grad_clip may change" in res.output

    res = CliRunner().invoke(main, ["run", "--resume", str(out), "--lr", "0.05", "--quiet"])
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete"] is True and len(metrics["accuracy_matrix"]) == 2
    assert metrics["accuracy_matrix"][-1][-1] > 0.6  # the last task was learned at the sane rate (chance < 0.5)
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["lr"] == 0.05
    assert "resumed with changed settings: train.lr=0.05" in (out / "log.txt").read_text()
