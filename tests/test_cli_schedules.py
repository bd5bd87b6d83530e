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


def test_difficulty_scores_are_kept_with_the_run_at_start_and_each_refresh(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", EXAMPLE, "--out", str(out), "--quiet", "--steps", "4",
                                    "--curriculum", "linear", "--scorer", "loss",
                                    "--set", "curriculum.scorer_params.refresh_every=2",
                                    "--set", "benchmark.params.n_tasks=2", "--set", "train.checkpoint_every=0",
                                    "--set", "evaluation.eval_every=0"])
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in (out / "scores").iterdir())
    # computed at each task start, refreshed at steps 2 and 4 of each task
    assert files == [f"task{t}-step{s}.csv" for t in (0, 1) for s in (0, 2, 4)]
    rows = (out / "scores" / "task1-step2.csv").read_text().splitlines()
    assert rows[0] == "pool_index,task,difficulty"
    assert {r.split(",")[1] for r in rows[1:]} == {"1"} and all(float(r.split(",")[2]) >= 0 for r in rows[1:])
