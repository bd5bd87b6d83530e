"""Teachers on a pool with unlearnable tasks.

A synthetic pool of 8 four-way classification tasks over the same 20-d inputs,
trained jointly (one phase, ``pool: joint``) by a shared MLP with a head per
task (task-incremental masking). Tasks 0-3 are learnable (labels from a random
two-layer teacher network, with 0-15% label noise); tasks 4-7 are unlearnable
(random labels). Each task is described by one continuous parameter, its label
noise (what ALP-GMM sees).

A teacher should spend few samples on the unlearnable tasks, at most half of
their uniform share, while reaching at least the accuracy of uniform sampling
on the learnable ones. The figures: the share of samples drawn from
unlearnable tasks (mean of the logged sampling probabilities over training),
and the mean test accuracy on the learnable tasks; 3 seeds (1 with --quick).

    python benchmarks/teachers.py            # full (a few minutes on 2 cores)
    python benchmarks/teachers.py --quick    # smoke version

Last line: ``unlearnable_share_lp: <share of learning-progress>/<uniform share>``
expressed as the fraction of the uniform share.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from lifelong.curriculum import SCHEDULES
from lifelong.data.examples import Examples
from lifelong.data.task import Stream, Task
from lifelong.engine import Recipe, TrainConfig, seed_everything, train_stream
from lifelong.models import build_model
from lifelong.registry import build
from lifelong.runs.compare import Stat

LEARNABLE, UNLEARNABLE, CLASSES, DIM = 4, 4, 4, 20


def make_stream(seed: int, train: int, test: int) -> Stream:
    g = torch.Generator().manual_seed(1000 + seed)
    tasks = []
    noises = [0.0, 0.05, 0.1, 0.15] + [1.0] * UNLEARNABLE
    for k, noise in enumerate(noises):
        w1, w2 = torch.randn(DIM, 16, generator=g), torch.randn(16, CLASSES, generator=g)
        x = torch.randn(train + test, DIM, generator=g)
        y = torch.argmax(torch.relu(x @ w1) @ w2, 1)
        flip = torch.rand(train + test, generator=g) < noise
        y = torch.where(flip, torch.randint(CLASSES, (train + test,), generator=g), y) + CLASSES * k
        tasks.append(Task(f"{'learn' if noise < 1 else 'noise'}{k}", Examples(x=x[:train], y=y[:train]),
                          Examples(x=x[train:], y=y[train:]), tuple(range(CLASSES * k, CLASSES * (k + 1))),
                          {"params": [noise]}))
    return Stream("teachers-synthetic", tasks, "task", CLASSES * len(noises), (DIM,))


TEACHERS = {
    "uniform (mixture)": ("mixture", {}),
    "learning-progress": ("learning-progress", {"variant": "online"}),
    "learning-progress window": ("learning-progress", {"variant": "window"}),
    "alp-gmm": ("alp-gmm", {}),
    "ucb": ("ucb", {}),
}


def run(name: str, params: dict, seed: int, steps: int, train: int) -> tuple[float, float, float]:
    stream = make_stream(seed, train, 500)
    seed_everything(seed)
    model = build_model("mlp", stream, hidden=(64, 64))
    cfg = TrainConfig(steps=steps, batch_size=32, optimizer="adam", lr=1e-3, seed=seed, log_every=10, device="cpu")
    schedule = build(SCHEDULES, name, params)
    t0 = time.perf_counter()
    result = train_stream(stream, model, Recipe(name=name, curriculum=schedule, pool="joint"), cfg)
    seconds = time.perf_counter() - t0
    unlearn = [t.name for t in stream.tasks if t.name.startswith("noise")]
    shares = [sum(row.get(f"p/{n}", 0.0) for n in unlearn) for row in result.schedule_log if "p/" + unlearn[0] in row]
    share = statistics.fmean(shares)
    acc = statistics.fmean(result.accuracy[-1][:LEARNABLE])
    return share, acc, seconds


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke version")
    args = ap.parse_args()
    seeds = [0] if args.quick else [0, 1, 2]
    steps, train = (300, 500) if args.quick else (1500, 2000)
    torch.set_num_threads(1)
    uniform_share = UNLEARNABLE / (LEARNABLE + UNLEARNABLE)
    rows = {}
    for label, (name, params) in TEACHERS.items():
        out = [run(name, params, s, steps, train) for s in seeds]
        rows[label] = ([o[0] for o in out], [o[1] for o in out], [o[2] for o in out])

    def ms(v):
        return Stat.of(v).format()

    print(f"{len(seeds)} seed(s), {steps} steps, batch 32, {LEARNABLE} learnable + {UNLEARNABLE} random-label tasks; "
          f"uniform share of unlearnable = {uniform_share:.2f}")
    print(f"{'teacher':28s} {'unlearnable share':>20s} {'/ uniform share':>16s} {'learnable acc':>18s} {'s/run':>7s}")
    base_acc = statistics.fmean(rows["uniform (mixture)"][1])
    for label, (share, acc, secs) in rows.items():
        print(f"{label:28s} {ms(share):>20s} {statistics.fmean(share) / uniform_share:>16.2f} {ms(acc):>18s} "
              f"{statistics.fmean(secs):>7.1f}")
    for label in ("learning-progress", "alp-gmm"):
        share, acc, _ = rows[label]
        ok = statistics.fmean(share) <= 0.5 * uniform_share and statistics.fmean(acc) >= base_acc - 0.005
        print(f"{label}: share <= half of uniform and accuracy >= uniform's: {'PASS' if ok else 'FAIL'}")
    print(f"unlearnable_share_lp: {statistics.fmean(rows['learning-progress'][0]) / uniform_share:.3f}")


if __name__ == "__main__":
    main()
