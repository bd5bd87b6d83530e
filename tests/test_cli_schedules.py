"""Schedules are selectable by name on the command line, like strategies."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from lifelong.cli import main

EXAMPLE = str(Path(__file__).resolve().parents[1] / "examples" / "split-digits.yaml")


def test_curriculum_scorer_and_review_flags_reach_the_resolved_config(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", EXAMPLE, "--out", str(out), "--quiet",
                                    "--steps", "3", "--curriculum", "self-paced", "--scorer", "loss",
                                    "--review", "spaced-review", "--set", "train.checkpoint_every=0",
                                    "--set", "evaluation.eval_every=0"])
    assert res.exit_code == 0, res.output
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["curriculum"]["name"] == "self-paced" and cfg["curriculum"]["scorer"] == "loss"
    assert cfg["review"]["name"] == "spaced-review"


def test_unknown_schedule_name_on_the_command_line_is_one_clear_error(tmp_path):
    res = CliRunner().invoke(main, ["run", EXAMPLE, "--out", str(tmp_path / "r"),
                                    "--curriculum", "selfpaced"])
    assert res.exit_code == 2
    assert "curriculum.name: unknown schedule 'selfpaced'. Did you mean 'self-paced'?" in res.output
    assert "Traceback" not in res.output
