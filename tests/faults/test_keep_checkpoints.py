"""A diverged run stays recoverable: the last K checkpoints are kept and `--from-checkpoint` picks an earlier one."""

from __future__ import annotations

import os

import pytest
import yaml
from click.testing import CliRunner
from faultkit import config, kept_steps, metrics

from lifelong.cli import main


def _invoke(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def diverged(tmp_path_factory):
    """lr=5 makes the weights explode in the first task: by step 10 their norm is 1e4x the initial one (the loss
    turns NaN only at step 49). The engine refuses to checkpoint them and stops there; of the checkpoints every
    2 steps before it, the newest 3 are kept."""
    folder = tmp_path_factory.mktemp("diverged")
    cfg = folder / "c.yaml"
    cfg.write_text(yaml.safe_dump(config(lr=5.0, checkpoint_every=2)))
    res = _invoke("run", str(cfg), "--out", str(folder / "run"), "--quiet")
    return folder / "run", res


def test_the_error_lists_the_kept_checkpoints(diverged):
    run, res = diverged
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert "weights exploded" in res.output and "by step 10" in res.output
    assert kept_steps(run) == [8, 6, 4]
    assert "8 (newest, last.pt), 6, 4" in res.output and "--from-checkpoint" in res.output
    assert os.path.samefile(run / "checkpoints" / "last.pt", run / "checkpoints" / "step-8.pt")
    assert "checkpoints kept: run steps 8" in (run / "log.txt").read_text()


def test_an_unknown_checkpoint_is_refused_with_the_list(diverged):
    run, _ = diverged
    res = _invoke("run", "--resume", str(run), "--from-checkpoint", "5", "--quiet")
    assert res.exit_code == 2 and "5" in res.output and "8 (newest, last.pt), 6, 4" in res.output
    assert "Traceback" not in res.output


def test_resume_from_an_earlier_checkpoint_with_a_smaller_rate_finishes(diverged):
    run, _ = diverged
    res = _invoke("run", "--resume", str(run), "--from-checkpoint", "4", "--lr", "0.05", "--quiet")
    assert res.exit_code == 0, res.output
    m = metrics(run)
    assert m["complete"] is True and len(m["accuracy_matrix"]) == 3
    log = (run / "log.txt").read_text()
    assert "resumed from the checkpoint of run step 4; later checkpoints dropped: 8, 6" in log
    assert "resuming run run from task 0 step 4" in log
    steps = kept_steps(run)
    assert len(steps) == 3 and steps[0] == 180  # the newest three of the resumed run
    assert os.path.samefile(run / "checkpoints" / "last.pt", run / "checkpoints" / f"step-{steps[0]}.pt")


def test_keep_is_configurable(tmp_path):
    data = config(steps=20, checkpoint_every=5)
    data["checkpoints"] = {"keep": 1}
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(data))
    res = _invoke("run", str(cfg), "--out", str(tmp_path / "run"), "--quiet")
    assert res.exit_code == 0, res.output
    assert sorted(os.listdir(tmp_path / "run" / "checkpoints")) == ["last.pt", "step-60.pt"]
