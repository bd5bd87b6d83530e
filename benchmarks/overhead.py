"""Overhead of lifelong's loop against a hand-written PyTorch loop.

Both train the same model (same initial weights) on the same data in the same
batches (naive fine-tuning, domain-incremental permuted-digits), side by side
in one process, alternating which goes first over several rounds; the figure
is the ratio of the medians of their wall times. Target: at most 1.05.

    python benchmarks/overhead.py            # full (a minute or two)
    python benchmarks/overhead.py --quick    # smoke version
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
import torch.nn.functional as F

from lifelong.data.benchmarks import make_benchmark
from lifelong.engine import Recipe, TrainConfig, seed_everything, train_stream
from lifelong.models import build_model


@torch.no_grad()
def accuracy_row(model, stream) -> list[float]:
    model.eval()
    row = [float((model(t.test["x"]).argmax(1) == t.test["y"]).float().mean()) for t in stream.tasks]
    model.train()
    return row


def hand_written(stream, model, cfg: TrainConfig) -> float:
    """What a careful user writes by hand for a continual-learning run: the same
    batches, SGD, loss.item() for logging, and the accuracy matrix (all tasks
    assessed before training and after each task)."""
    t0 = time.perf_counter()
    model.adapt(sorted({c for t in stream.tasks for c in t.classes}))
    matrix = [accuracy_row(model, stream)]
    for phase, task in enumerate(stream.tasks):
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        x_all, y_all = task.train["x"], task.train["y"]
        n = len(y_all)
        gen = torch.Generator().manual_seed(cfg.seed * 100_003 + phase)  # the loop's batch order
        steps = cfg.epochs * -(-n // cfg.batch_size)
        perm, pos, running = None, n, 0.0
        for _ in range(steps):
            parts, need = [], cfg.batch_size
            while need:
                if pos >= n:
                    perm, pos = torch.randperm(n, generator=gen), 0
                take = min(need, n - pos)
                parts.append(perm[pos:pos + take])
                pos += take
                need -= take
            idx = parts[0] if len(parts) == 1 else torch.cat(parts)
            x, y = x_all[idx], y_all[idx]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            running += loss.item()
        matrix.append(accuracy_row(model, stream))
    return time.perf_counter() - t0


def ours(stream, model, cfg: TrainConfig) -> float:
    t0 = time.perf_counter()
    train_stream(stream, model, Recipe(), cfg)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    args = ap.parse_args()
    rounds = args.rounds or (2 if args.quick else 7)
    torch.set_num_threads(1)  # both loops on one core: less noise from the machine
    stream = make_benchmark("permuted-digits", seed=0, n_tasks=3 if args.quick else 5)
    cfg = TrainConfig(epochs=1 if args.quick else 3, batch_size=64, lr=0.05, momentum=0.9, seed=0, log_every=0)
    seed_everything(0)
    init = build_model("mlp", stream, hidden=[512, 512])
    times = {"hand-written": [], "lifelong": []}
    steps = cfg.epochs * sum(-(-t.num_train // cfg.batch_size) for t in stream.tasks)
    # accuracy check: both loops must end with the same weights (same work, not just same time)
    a, b = copy.deepcopy(init), copy.deepcopy(init)
    hand_written(stream, a, cfg)
    ours(stream, b, cfg)
    same = all(torch.allclose(p, q, atol=1e-5) for p, q in zip(a.parameters(), b.parameters()))
    for r in range(rounds):
        order = ["hand-written", "lifelong"] if r % 2 == 0 else ["lifelong", "hand-written"]
        for name in order:
            m = copy.deepcopy(init)
            times[name].append((hand_written if name == "hand-written" else ours)(stream, m, cfg))
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{'loop':<14}{'median s':>10}{'min s':>10}{'steps/s':>10}")
    for k in times:
        print(f"{k:<14}{med[k]:>10.3f}{min(times[k]):>10.3f}{steps / med[k]:>10.0f}")
    print(f"same final weights: {same}  ({steps} steps x {rounds} rounds, MLP 64-512-512-10, batch 64)")
    print(f"overhead_ratio: {med['lifelong'] / med['hand-written']:.3f}")


if __name__ == "__main__":
    main()
