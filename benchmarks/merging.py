"""Merging as consolidation: naive, EWC, replay, weight averaging, MagMax and EMA.

Two streams, 3 seeds each (0-2), every method trained with the same steps:

* split-digits, 5 tasks x 2 classes, **class-incremental**, MLP (128
  hidden), SGD 0.05 with momentum 0.9, batch 32, 150 steps per task.
  Class-incremental is the scenario where there is forgetting to undo: in
  the task-incremental one (the task's classes told at test time) this MLP
  keeps almost everything even when fine-tuned naively (0.986 average
  accuracy, forgetting 0.003 in a smoke run), so every method ties and a
  merge has nothing to recover; that grid is printed too, as a control.
  In class-incremental learning each task's output rows are trained only by
  that task and then pushed down by the next ones: averaging or maximum-
  magnitude selection of the task-end weights brings old rows back.
* ``arithmetic-skills`` (add, sub, mul; 1-2 digits; 1000 problems per skill),
  a tiny GPT-2 (2 layers, hidden 64) from random initialisation, AdamW 3e-3,
  batch 32, 200 steps per skill; exact-match accuracy (domain-incremental:
  one model, no heads).

Methods: naive fine-tuning; EWC (lambda 100 on digits, 1000 on the LM; 256 /
128 samples for the Fisher); ER (reservoir memory of 200 rows, half of every
batch replayed); ``average`` and ``magmax`` (sequential fine-tuning, the
merge assessed after each task: ``train_from='live'``); ``average/merged``
(each task trains on from the average: ``train_from='merged'``); ``ema``
(decay chosen so the average spans a fair part of a task: 0.98 on digits
with 150 steps, 0.99 on the LM with 200).

Reported per method: final average accuracy and average forgetting (mean ±
sd over seeds) and wall seconds per run.

    python benchmarks/merging.py           # full: about 8 minutes on 2 busy cores
    python benchmarks/merging.py --quick   # smoke: 1 seed, fewer steps

Last line: ``magmax_minus_naive_acc: <MagMax - naive final average accuracy,
averaged over the two main streams (class-incremental split-digits and
arithmetic-skills)>``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import torch

from lifelong.assessment import average_accuracy, forgetting
from lifelong.data.benchmarks import make_benchmark
from lifelong.engine import TrainConfig, seed_everything, train_stream
from lifelong.models import build_model
from lifelong.runs.compare import Stat
from lifelong.strategies import build_strategy, compose

METHODS = ("naive", "ewc", "er", "average", "average/merged", "magmax", "ema")


def recipe(method: str, lm: bool, seed: int):
    if method == "average/merged":
        return build_strategy("average", {"train_from": "merged"})
    if method == "ewc":
        return build_strategy("ewc", {"lambda": 1000.0 if lm else 100.0, "samples": 128 if lm else 256,
                                      "fisher_batch": 8 if lm else 1})
    if method == "er":
        return compose([("er", {"memory_size": 200, "ratio": 0.5, "seed": seed})])
    if method == "ema":
        return build_strategy("ema", {"decay": 0.99 if lm else 0.98})
    return build_strategy(method)


def run_digits(method: str, seed: int, steps: int, scenario: str) -> dict[str, float]:
    stream = make_benchmark("split-digits", seed=seed, scenario=scenario)
    seed_everything(seed)
    model = build_model("mlp", stream, hidden=[128])
    cfg = TrainConfig(steps=steps, batch_size=32, lr=0.05, momentum=0.9, seed=seed, device="cpu", log_every=0)
    return _measure(stream, model, recipe(method, False, seed), cfg)


def run_lm(method: str, seed: int, steps: int, train_size: int) -> dict[str, float]:
    from lifelong.hf.models import tiny_causal_lm

    stream = make_benchmark("arithmetic-skills", seed=seed, skills=["add", "sub", "mul"], min_digits=1,
                            max_digits=2, train_size=train_size, test_size=200, general_size=0)
    model = tiny_causal_lm(stream, arch="gpt2", layers=2, hidden=64, heads=4, seed=seed)
    cfg = TrainConfig(steps=steps, batch_size=32, optimizer="adamw", lr=3e-3, seed=seed, device="cpu",
                      log_every=0, eval_batch_size=256)
    seed_everything(seed)
    return _measure(stream, model, recipe(method, True, seed), cfg)


def _measure(stream, model, rec, cfg) -> dict[str, float]:
    t0 = time.perf_counter()
    result = train_stream(stream, model, rec, cfg)
    return {"acc": average_accuracy(result.accuracy, result.row_tasks),
            "forgetting": forgetting(result.accuracy, result.row_tasks),
            "seconds": time.perf_counter() - t0}


def ms(values) -> str:
    """Mean ± sample std over the seeds (the comparison table's format; NaN left out, "—" when none)."""
    return Stat.of(values).format()


def table(title: str, rows: dict[str, list[dict[str, Any]]]) -> None:
    print(title)
    print(f"  {'method':15s} {'final avg accuracy':>20s} {'forgetting':>16s} {'s/run':>7s}")
    for method, runs in rows.items():
        print(f"  {method:15s} {ms([r['acc'] for r in runs]):>20s} {ms([r['forgetting'] for r in runs]):>16s} "
              f"{statistics.fmean(r['seconds'] for r in runs):>7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke version: 1 seed, fewer steps, no task-IL grid")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [0] if args.quick else [0, 1, 2]
    d_steps, lm_steps, lm_train = (40, 60, 300) if args.quick else (150, 200, 1000)
    t_all = time.perf_counter()

    digits = {m: [run_digits(m, s, d_steps, "class") for s in seeds] for m in METHODS}
    table(f"split-digits, 5 tasks x 2 classes, class-incremental; {d_steps} steps/task; seeds {seeds}", digits)
    if not args.quick:
        til = {m: [run_digits(m, s, d_steps, "task") for s in seeds] for m in METHODS}
        table(f"split-digits, task-incremental (control: little to forget); {d_steps} steps/task; seeds {seeds}",
              til)
    lm = {m: [run_lm(m, s, lm_steps, lm_train) for s in seeds] for m in METHODS}
    table(f"arithmetic-skills (add, sub, mul), tiny GPT-2; {lm_steps} steps/skill; seeds {seeds}", lm)

    def gain(rows):
        return statistics.fmean(r["acc"] for r in rows["magmax"]) - statistics.fmean(r["acc"] for r in rows["naive"])

    print(f"magmax - naive: split-digits class-IL {gain(digits):+.3f}, arithmetic-skills {gain(lm):+.3f}; "
          f"total {time.perf_counter() - t_all:.0f} s")
    print(f"magmax_minus_naive_acc: {(gain(digits) + gain(lm)) / 2:.3f}")


if __name__ == "__main__":
    main()
