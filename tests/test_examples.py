"""Every example config validates, and every one that needs no download runs end to end on a reduced budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lifelong.config import apply_overrides, load_config, read_yaml, registry, validate
from lifelong.experiment import run_experiment

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
#: benchmarks that download data through torchvision: validated, not run
DOWNLOADS = {"split-mnist", "permuted-mnist", "split-cifar10", "split-cifar100"}
#: examples that are not run here (none: the language-model ones run with a tiny local model)
SKIP_RUN: set[str] = set()
ALL = sorted(p.name for p in EXAMPLES.glob("*.yaml"))


def test_examples_cover_every_offline_benchmark_and_every_strategy():
    benchmarks, strategies = set(), set()
    for name in ALL:
        cfg = load_config(EXAMPLES / name)
        benchmarks.add(cfg.benchmark.name)
        for s in cfg.strategy:
            strategies.update(s.parts)
    assert {"split-digits", "permuted-digits", "split-mnist1d", "permuted-mnist1d"} <= benchmarks
    assert DOWNLOADS <= benchmarks
    assert set(registry("strategy").names()) <= strategies


@pytest.mark.parametrize("name", ALL)
def test_example_validates(name):
    cfg = load_config(EXAMPLES / name)
    assert cfg.expand()


def reduced(name: str) -> dict:
    """The example with a small budget: a few steps per task, fewer/smaller tasks, cheap Fisher estimates."""
    data = read_yaml(EXAMPLES / name)
    over = ["train.steps=12", "train.batch_size=32", "train.checkpoint_every=5", "train.log_every=2",
            "evaluation.eval_every=6", "evaluation.eval_batch_size=256", "device=cpu"]
    bench = data.get("benchmark", {}).get("name")
    if bench in ("permuted-digits", "permuted-mnist1d"):
        over.append("benchmark.params.n_tasks=3")
    if bench in ("split-mnist1d", "permuted-mnist1d"):
        over += ["benchmark.params.train_size=600", "benchmark.params.test_size=200"]
    if bench == "arithmetic-skills":
        over += ["benchmark.params.train_size=200", "benchmark.params.test_size=40"]
    data = apply_overrides(data, over)
    strategies = data.get("strategy")
    for s in strategies if isinstance(strategies, list) else [strategies]:
        if isinstance(s, dict) and s.get("name") in ("ewc", "online-ewc"):
            s.setdefault("params", {})["samples"] = 32
    return data


def cells(name: str):
    """One run per distinct strategy/curriculum of a grid (seed variation adds nothing here)."""
    grid = validate(reduced(name), source=name)
    seen, out = set(), []
    for run_name, cfg in grid.expand():
        key = (cfg.strategy_label, cfg.curriculum_label)
        if key not in seen:
            seen.add(key)
            out.append((run_name, cfg))
    return out


RUNNABLE = [n for n in ALL if n not in SKIP_RUN and load_config(EXAMPLES / n).benchmark.name not in DOWNLOADS]


@pytest.mark.parametrize("name", RUNNABLE)
def test_example_runs_on_a_reduced_budget(name, tmp_path):
    for run_name, cfg in cells(name):
        out = tmp_path / run_name
        result, metrics = run_experiment(cfg, out, progress=False)
        n_tasks = len(result.task_names)
        joint = cfg.strategy[0].name == "joint"
        assert result.complete and metrics["complete"]
        assert len(result.accuracy) == (1 if joint else n_tasks)
        assert all(0.0 <= a <= 1.0 for row in result.accuracy for a in row)
        assert result.task_steps == [12] * len(result.accuracy)
        if cfg.benchmark.name == "arithmetic-skills":
            # 12 steps teach a language model no exact answers yet, but its loss must fall
            first, last = result.losses[0]["loss"], result.losses[-1]["loss"]
            assert last < 0.9 * first, (name, run_name, first, last)
        else:
            # the learner learned: after 12 steps some task is well above the 10-class chance level (0.1);
            # MNIST-1D is the harder data set (a CNN needs hundreds of steps for 0.9)
            floor = 0.2 if "mnist1d" in cfg.benchmark.name else 0.35
            assert max(result.accuracy[-1]) > floor, (name, run_name, result.accuracy[-1])
        m = json.loads((out / "metrics.json").read_text())
        assert m["average_accuracy"] == pytest.approx(metrics["average_accuracy"])
        assert (out / "checkpoints" / "last.pt").exists() and (out / "config.yaml").exists()
