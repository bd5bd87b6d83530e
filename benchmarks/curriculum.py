"""Data curricula within tasks on split-mnist1d: do they help, and when not?

split-mnist1d (5 tasks x 2 classes), task-incremental so the figure is about
learning each task rather than forgetting; an MLP trained with Adam (lr 1e-3,
a well-tuned default: "Curriculum Learning with Adam: The Devil Is in the
Wrong Details" warns that curricula often only compensate for poor optimiser
settings). Difficulty comes from the ``transfer`` scorer (a fresh copy of the
model trained briefly on the task, cross-fitted over 2 folds). Compared:
vanilla (uniform), linear pacing (easy first), anti (hard first),
random-order pacing (same amounts of data, random order), cyclical and
self-paced (hard weighting, loss threshold growing from 0.5). Reported over 5
seeds (2 with --quick), mean and 95% confidence interval (t distribution):
final average accuracy, and the steps each task needs to reach 80% test
accuracy (measured every 10 steps; tasks that never reach it count as the
task's full step budget).

    python benchmarks/curriculum.py            # full (a few minutes on 2 cores)
    python benchmarks/curriculum.py --quick    # smoke version

Last line: ``curriculum_minus_vanilla_acc: <linear - vanilla final accuracy>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lifelong.assessment import average_accuracy
from lifelong.curriculum import SCHEDULES
from lifelong.curriculum.scorers import SCORERS
from lifelong.data.benchmarks import make_benchmark
from lifelong.engine import Recipe, TrainConfig, seed_everything, train_stream
from lifelong.models import build_model
from lifelong.registry import build

TARGET = 0.8
METHODS = {
    "vanilla": ("uniform", {}),
    "curriculum (linear)": ("linear", {"start": 0.2, "full_at": 0.6}),
    "anti": ("anti", {"start": 0.2, "full_at": 0.6}),
    "random-order": ("random-order", {"start": 0.2, "full_at": 0.6}),
    "cyclical": ("cyclical", {"period": 0.25, "start": 0.2}),
    "self-paced": ("self-paced", {"lam": 0.5, "growth": 1.2, "grow_every": 20}),
}
# t quantiles (two-sided 95%) by degrees of freedom
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def run(label: str, seed: int, steps: int, train: int) -> dict:
    stream = make_benchmark("split-mnist1d", seed=seed, scenario="task", train_size=train, test_size=1000)
    seed_everything(seed)
    model = build_model("mlp", stream, hidden=(128, 128))
    name, params = METHODS[label]
    schedule = build(SCHEDULES, name, params)
    scorer = build(SCORERS, "transfer", {"steps": 100}) if schedule.needs_difficulty else None
    cfg = TrainConfig(steps=steps, batch_size=32, optimizer="adam", lr=1e-3, seed=seed, eval_every=10,
                      log_every=10, device="cpu")
    t0 = time.perf_counter()
    result = train_stream(stream, model, Recipe(name=label, curriculum=schedule, scorer=scorer), cfg)
    seconds = time.perf_counter() - t0
    to_target = []
    for k in range(len(stream)):
        hits = [c["step"] - k * steps for c in result.curves
                if c["task"] == k and c["eval_task"] == k and c["accuracy"] >= TARGET]
        to_target.append(min(hits) if hits else steps)
    return {"acc": average_accuracy(result.accuracy, result.row_tasks),
            "steps": statistics.fmean(to_target), "seconds": seconds}


def ci(values: list[float]) -> str:
    m = statistics.fmean(values)
    if len(values) < 2:
        return f"{m:.3f}"
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / len(values) ** 0.5
    return f"{m:.3f} ± {half:.3f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke version")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    steps, train = (100, 2000) if args.quick else (300, 4000)
    rows = {label: [run(label, s, steps, train) for s in seeds] for label in METHODS}
    print(f"split-mnist1d, 5 tasks x 2 classes, task-incremental; {steps} steps/task, batch 32, Adam 1e-3; "
          f"{len(seeds)} seeds, mean ± 95% CI")
    print(f"{'schedule':22s} {'final avg accuracy':>20s} {f'steps to {TARGET:.0%} (of {steps})':>24s} {'s/run':>7s}")
    for label, runs in rows.items():
        print(f"{label:22s} {ci([r['acc'] for r in runs]):>20s} {ci([r['steps'] for r in runs]):>24s} "
              f"{statistics.fmean(r['seconds'] for r in runs):>7.1f}")
    diff = statistics.fmean(r["acc"] for r in rows["curriculum (linear)"]) - statistics.fmean(r["acc"] for r in rows["vanilla"])
    print(f"curriculum_minus_vanilla_acc: {diff:+.3f}")


if __name__ == "__main__":
    main()
