"""Does the cost per task stay flat as tasks accumulate?

A 50-task permuted-digits stream with experience replay (reservoir buffer of
500, half of each batch replayed) for every buffer policy. For each, the
median training time and peak memory of the last 10 tasks are compared with
those of the first 10; the target is that the last 10 stay within 20% of the
first 10 (ratio <= 1.20).

    python benchmarks/long_stream.py            # 50 tasks
    python benchmarks/long_stream.py --quick    # 20 tasks, smoke version
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lifelong.curriculum import SCHEDULES
from lifelong.data.benchmarks import make_benchmark
from lifelong.engine import Recipe, TrainConfig, seed_everything, train_stream
from lifelong.memory import BUFFERS
from lifelong.models import build_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tasks", type=int, default=None)
    args = ap.parse_args()
    n_tasks = args.tasks or (20 if args.quick else 50)
    window = 5 if args.quick else 10
    torch.set_num_threads(1)
    stream = make_benchmark("permuted-digits", seed=0, n_tasks=n_tasks)
    cfg = TrainConfig(epochs=1, batch_size=32, lr=0.05, momentum=0.9, seed=0, log_every=0)
    worst = 0.0
    print(f"{n_tasks} tasks of permuted-digits, replay buffer 500, ratio 0.5; medians of the first and last {window} tasks")
    print(f"{'buffer':<16}{'first s/task':>13}{'last s/task':>12}{'time ratio':>11}"
          f"{'first MB':>10}{'last MB':>9}{'mem ratio':>10}{'final acc':>10}{'total s':>9}")
    for policy in ("reservoir", "class-balanced", "herding"):
        seed_everything(0)
        model = build_model("mlp", stream, hidden=[256, 256])
        recipe = Recipe(name="er", memory=BUFFERS.get(policy)(capacity=500, seed=0),
                        review=SCHEDULES.get("replay")(0.5))
        t0 = time.perf_counter()
        r = train_stream(stream, model, recipe, cfg)
        total = time.perf_counter() - t0
        # task 0 has nothing to replay (smaller batches): start the first window at task 1
        first_t = statistics.median(r.task_seconds[1:window + 1])
        last_t = statistics.median(r.task_seconds[-window:])
        first_m = statistics.median(r.task_peak_memory[1:window + 1]) / 2**20
        last_m = statistics.median(r.task_peak_memory[-window:]) / 2**20
        tr, mr = last_t / first_t, last_m / first_m
        worst = max(worst, tr, mr)
        acc = sum(r.accuracy[-1]) / len(r.accuracy[-1])
        print(f"{policy:<16}{first_t:>13.4f}{last_t:>12.4f}{tr:>11.3f}{first_m:>10.1f}{last_m:>9.1f}{mr:>10.3f}"
              f"{acc:>10.3f}{total:>9.1f}")
    print(f"long_stream_worst_ratio: {worst:.3f}")


if __name__ == "__main__":
    main()
