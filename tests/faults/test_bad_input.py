"""Every bad input gets one message naming it: exit status 2, no traceback, no half-made run folder.

Each case is fed to the real command line (in process, through click's runner).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from faultkit import CONFIG, config

from lifelong.cli import main


def _with(**changes) -> dict:
    cfg = config()
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            cfg.setdefault(section, {})[field] = value
        else:
            cfg[section] = value
    return cfg


#: (case, YAML text or a config dict, extra arguments, what the message must name)
CASES = [
    ("unknown key", _with(train__epochz=1), [], "train.epochz"),
    ("wrong type", _with(train__lr="fast"), [], "train.lr"),
    ("unknown strategy", _with(strategy="ewcc"), [], "ewcc"),
    ("unknown benchmark", _with(benchmark={"name": "split-digitz"}), [], "split-digitz"),
    ("unknown parameter", _with(strategy={"name": "ewc", "params": {"lamda": 1}}), [], "lamda"),
    ("empty YAML", "", [], "is empty"),
    ("YAML of only a comment", "# nothing here\n", [], "is empty"),
    ("infinite learning rate", "train: {steps: 5, lr: .inf}\n", [], "train.lr"),
    ("NaN momentum", "train: {steps: 5, momentum: .nan}\n", [], "train.momentum"),
    ("non-finite strategy parameter", _with(strategy={"name": "ewc", "params": {"lamda": float("inf")}}), [],
     "strategy.params.lamda"),
    ("boolean epochs", "train: {epochs: true}\n", [], "train.epochs"),
    ("boolean seed", _with(seed=True), [], "seed"),
    ("boolean memory size", _with(memory={"size": False}), [], "memory.size"),
    ("missing device", _with(device="cuda:7"), [], "cuda:7"),
    ("unknown device", _with(device="tpu"), [], "tpu"),
    ("curriculum schedule as review (uniform)", _with(review={"name": "uniform"}, memory={"size": 20}), [],
     "review.name"),
    ("curriculum schedule as review (linear)", _with(review={"name": "linear"}, memory={"size": 20}), [], "linear"),
    ("review without memory", _with(review="replay"), [], "memory"),
    ("grid given to run", _with(strategy=["naive", "ewc"]), [], "compare"),
    ("bad YAML", "train: {lr: [\n", [], "line"),
    ("YAML python tag", "train: !!python/object/apply:os.system ['echo hi']\n", [], "config"),
    ("top level not a mapping", "- a\n- b\n", [], "mapping"),
    ("empty strategy list", _with(strategy=[]), [], "strategy"),
    ("empty seeds", _with(seeds=[]), [], "seeds"),
    ("no tasks", _with(benchmark={"name": "split-digits", "params": {"n_tasks": 0}}), [], "n_tasks"),
    ("bad override", CONFIG, ["--set", "train.lr"], "train.lr"),
    ("override of unknown field", CONFIG, ["--set", "train.nope=1"], "train.nope"),
    ("--from-checkpoint without --resume", CONFIG, ["--from-checkpoint", "3"], "--resume"),
]


def _invoke(args):
    return CliRunner().invoke(main, args, catch_exceptions=False)


@pytest.mark.parametrize("case,content,extra,named", CASES, ids=[c[0] for c in CASES])
def test_bad_config_is_refused_by_name(tmp_path, case, content, extra, named):
    path = tmp_path / "bad.yaml"
    path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    out = tmp_path / "run"
    res = _invoke(["run", str(path), "--out", str(out), "--quiet", *extra])
    assert res.exit_code == 2, (case, res.output)
    assert named in res.output, (case, res.output)
    assert "Traceback" not in res.output
    assert not out.exists(), f"{case}: a run folder was left behind: {sorted(p.name for p in out.iterdir())}"
    assert not (tmp_path / "index.sqlite").exists()  # nothing was registered either


@pytest.mark.parametrize("args,named", [
    (["run", "nope.yaml", "--out", "{tmp}/run"], "nope.yaml"),
    (["run", "--resume", "{tmp}/never-ran"], "never-ran"),
    (["run", "--resume", "{tmp}"], "config.yaml"),
    (["compare", "nope.yaml", "--out", "{tmp}/grid"], "nope.yaml"),
    (["runs", "--root", "{tmp}/nowhere"], "nowhere"),
    (["runs", "--reindex", "{tmp}/nowhere"], "nowhere"),
    (["report", "{tmp}/nowhere", "--out", "{tmp}/r.html"], "nowhere"),
])
def test_bad_paths_are_refused_by_name(tmp_path, args, named):
    res = _invoke([a.replace("{tmp}", str(tmp_path)) for a in args])
    assert res.exit_code == 2, res.output
    assert named in res.output and "Traceback" not in res.output
    assert not (tmp_path / "run").exists() and not (tmp_path / "grid").exists()


def test_a_failed_start_can_be_rerun_with_the_same_command(tmp_path):
    """`device: cuda:7` once refused, the same folder takes the corrected config (nothing blocks it)."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(_with(device="cuda:7")))
    out = tmp_path / "run"
    assert _invoke(["run", str(bad), "--out", str(out), "--quiet"]).exit_code == 2
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(config(steps=3, checkpoint_every=0)))
    res = _invoke(["run", str(good), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    log = (out / "log.txt").read_text()
    assert "cuda:7" not in log and log.count("starting run") == 1


def test_a_start_up_failure_in_an_empty_folder_leaves_it_empty(tmp_path, monkeypatch):
    """A failure after the folder was taken (here: the engine refuses the device) undoes the folder's content."""
    import lifelong.experiment.run as ex  # the module that uses what is patched
    from lifelong.errors import LifelongError

    out = tmp_path / "run"
    out.mkdir()
    monkeypatch.setattr(ex, "_check_device", lambda name: None)  # let the engine be the one to refuse

    def refuse(*a, **k):
        raise LifelongError("device 'cuda:7' was asked for but is not here (injected)")

    import lifelong.engine.loop as loop

    monkeypatch.setattr(loop, "train_stream", refuse)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(config(steps=3)))
    res = _invoke(["run", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 2 and "cuda:7" in res.output and "Traceback" not in res.output
    assert out.is_dir() and list(out.iterdir()) == []
    import sqlite3

    if (tmp_path / "index.sqlite").exists():
        with sqlite3.connect(tmp_path / "index.sqlite") as db:
            assert db.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)


def test_the_message_of_an_empty_config_says_what_a_config_needs(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    res = _invoke(["run", str(path), "--out", str(tmp_path / "run")])
    for section in ("benchmark", "model", "strategy"):
        assert section in res.output
