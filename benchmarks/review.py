"""Review schedules on a 10-task class-incremental stream, same memory budget.

split-mnist1d with one new class per task (10 tasks, class-incremental: at
test time the model chooses among every class seen so far), an MLP, a
reservoir memory of 500 examples shared by all methods. Compared: no review,
uniform replay (half of each batch from memory), power-law review (same
share, old tasks weighted by (age + 1)^-1) and spaced review (quizzes on 5
held-out memory items per task; forgetting sets the review share between 5%
and 60%). Reported: final average accuracy and average forgetting over 5 seeds
(2 with --quick), and the share of training rows that came from memory.

    python benchmarks/review.py            # full (a few minutes on 2 cores)
    python benchmarks/review.py --quick    # smoke version

Last line: ``spaced_minus_replay_acc: <difference in final average accuracy>``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lifelong.assessment import average_accuracy, forgetting
from lifelong.curriculum import SCHEDULES
from lifelong.data.benchmarks import make_benchmark
from lifelong.engine import Recipe, TrainConfig, seed_everything, train_stream
from lifelong.memory import BUFFERS
from lifelong.models import build_model
from lifelong.registry import build

METHODS = {
    "no review": None,
    "replay 0.5": ("replay", {"ratio": 0.5}),
    "power-law-review 0.5": ("power-law-review", {"ratio": 0.5, "alpha": 1.0}),
    "spaced-review": ("spaced-review", {}),
}


def run(label: str, seed: int, steps: int, train_size: int) -> dict:
    stream = make_benchmark("split-mnist1d", seed=seed, classes_per_task=1, train_size=train_size, test_size=1000)
    seed_everything(seed)
    model = build_model("mlp", stream, hidden=(128, 128))
    spec = METHODS[label]
    review = build(SCHEDULES, spec[0], spec[1]) if spec else None
    memory = build(BUFFERS, "reservoir", {"capacity": 500, "seed": seed})
    cfg = TrainConfig(steps=steps, batch_size=32, optimizer="adam", lr=1e-3, seed=seed, log_every=10, device="cpu")
    t0 = time.perf_counter()
    result = train_stream(stream, model, Recipe(name=label, memory=memory, review=review), cfg)
    seconds = time.perf_counter() - t0
    fracs = [row["review/review_fraction"] for row in result.schedule_log if "review/review_fraction" in row]
    return {"acc": average_accuracy(result.accuracy, result.row_tasks),
            "forgetting": forgetting(result.accuracy, result.row_tasks),
            "review": statistics.fmean(fracs) if fracs else 0.0, "seconds": seconds}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke version")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    steps, train = (60, 2000) if args.quick else (200, 4000)
    rows = {label: [run(label, s, steps, train) for s in seeds] for label in METHODS}

    def ms(values):
        return f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"

    print(f"split-mnist1d, 10 tasks x 1 class, class-incremental; {steps} steps/task, batch 32, reservoir memory 500, "
          f"{len(seeds)} seeds (mean ± sd)")
    print(f"{'review schedule':24s} {'final avg accuracy':>20s} {'forgetting':>18s} {'memory share':>13s} {'s/run':>7s}")
    for label, runs in rows.items():
        print(f"{label:24s} {ms([r['acc'] for r in runs]):>20s} {ms([r['forgetting'] for r in runs]):>18s} "
              f"{statistics.fmean(r['review'] for r in runs):>13.2f} {statistics.fmean(r['seconds'] for r in runs):>7.1f}")
    diff = statistics.fmean(r["acc"] for r in rows["spaced-review"]) - statistics.fmean(r["acc"] for r in rows["replay 0.5"])
    print(f"spaced_minus_replay_acc: {diff:+.3f}")


if __name__ == "__main__":
    main()
