"""Overhead of lifelong's loop against hand-written PyTorch loops, for every strategy.

For each strategy (naive, er, ewc, lwf, si, agem, der++, gdumb, cumulative,
joint) both loops train the same model (same initial weights) on the same
data in the same batches (domain-incremental permuted-digits), side by side
in one process, alternating which goes first over several rounds; the figure
is the ratio of the medians of their times. Target: at most 1.10 for
every strategy (1.05 for naive).

Both loops run on one torch thread, so the process's CPU time is the work
each loop does; ``--clock cpu`` (the default) compares CPU times, which stay
fair when other processes share the machine (a descheduled process loses wall
time, not CPU time); ``--clock wall`` compares wall times, as on a quiet
machine. Both are printed.

The hand-written loops are what a careful user writes for one method: plain
tensors, ``torch.optim.SGD``, ``loss.item()`` per step, the accuracy matrix
(every task assessed before training and after each task), the method's
extra terms written inline. The replay buffers' selection policies
(reservoir, class-balanced) are the library's classes in both loops: they
are data structures, not loop machinery, and writing them again here would
only test a re-implementation. Each strategy's row says whether both loops
end with the same weights (the same job, not only the same time).

    python benchmarks/overhead.py                 # every strategy (several minutes)
    python benchmarks/overhead.py --quick         # smoke version
    python benchmarks/overhead.py --only ewc,si   # some strategies
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import time
from types import SimpleNamespace

import torch
import torch.nn.functional as F

from lifelong.data.benchmarks import make_benchmark
from lifelong.engine import TrainConfig, seed_everything, train_stream
from lifelong.memory import BUFFERS
from lifelong.models import build_model
from lifelong.strategies import build_strategy

STRATEGIES = ["naive", "er", "ewc", "lwf", "si", "agem", "der++", "gdumb", "cumulative", "joint"]
MEMORY = 200


@torch.no_grad()
def accuracy_row(model, stream) -> list[float]:
    model.eval()
    row = [float((model(t.test["x"]).argmax(1) == t.test["y"]).float().mean()) for t in stream.tasks]
    model.train()
    return row


class Batches:
    """Shuffled epochs with a seeded generator, batch after batch (what DataLoader(shuffle=True) does)."""

    def __init__(self, n: int, batch_size: int, seed: int):
        self.n, self.b, self.gen = n, batch_size, torch.Generator().manual_seed(seed)
        self.perm, self.pos = None, n

    def next(self) -> torch.Tensor:
        parts, need = [], self.b
        while need:
            if self.pos >= self.n:
                self.perm, self.pos = torch.randperm(self.n, generator=self.gen), 0
            take = min(need, self.n - self.pos)
            parts.append(self.perm[self.pos:self.pos + take])
            self.pos += take
            need -= take
        return parts[0] if len(parts) == 1 else torch.cat(parts)


def quadratic(model, weight: dict, anchor: dict) -> torch.Tensor:
    return sum((weight[n] * (p - anchor[n]) ** 2).sum() for n, p in model.named_parameters())


def fisher(model, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Diagonal empirical Fisher: mean of squared per-example gradients."""
    params = dict(model.named_parameters())
    out = {n: torch.zeros_like(p) for n, p in params.items()}
    model.eval()
    for i in range(len(y)):
        loss = F.cross_entropy(model(x[i:i + 1]), y[i:i + 1], reduction="none").mean()
        for (n, _), g in zip(params.items(), torch.autograd.grad(loss, list(params.values()))):
            out[n] += g ** 2
    model.train()
    return {n: f / len(y) for n, f in out.items()}


def clocks() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def since(t0: tuple[float, float]) -> tuple[float, float]:
    """(wall, cpu) seconds since ``t0 = clocks()``."""
    wall, cpu = clocks()
    return wall - t0[0], cpu - t0[1]


def hand_written(stream, model, cfg: TrainConfig, strategy: str) -> tuple[float, float]:
    """One strategy's continual-learning run, written out by hand; (wall, cpu) seconds."""
    t0 = clocks()
    seed = cfg.seed
    model.adapt(sorted({c for t in stream.tasks for c in t.classes}))
    matrix = [accuracy_row(model, stream)]
    memory = None
    if strategy in ("er", "agem", "der++", "gdumb"):
        memory = BUFFERS.get("class-balanced" if strategy == "gdumb" else "reservoir")(capacity=MEMORY, seed=seed)
    n_tasks = len(stream.tasks)
    phases = [list(range(n_tasks))] if strategy == "joint" else \
        [list(range(i + 1)) for i in range(n_tasks)] if strategy == "cumulative" else [[i] for i in range(n_tasks)]
    importance, anchor, constant = {}, {}, 0.0  # ewc (merged quadratic) and si
    teacher = None
    for phase, tasks in enumerate(phases):
        task = stream.tasks[tasks[-1]]
        rows = {"x": torch.cat([stream.tasks[i].train["x"] for i in tasks]),
                "y": torch.cat([stream.tasks[i].train["y"] for i in tasks])}
        if strategy == "gdumb":
            from lifelong.data.examples import Examples

            memory.add(Examples(x=task.train["x"], y=task.train["y"], task=torch.full((task.num_train,), task.index)),
                       SimpleNamespace(stream=stream))  # the buffer balances by task in a domain-incremental stream
            for m in model.modules():
                if m is not model and hasattr(m, "reset_parameters"):
                    m.reset_parameters()
            rows = {"x": memory.examples["x"], "y": memory.examples["y"]}
        x_all, y_all = rows["x"], rows["y"]
        opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        task_seed = seed * 100_003 + phase
        batches = Batches(len(y_all), cfg.batch_size, task_seed)
        replay_gen = torch.Generator().manual_seed(task_seed + 7)
        replaying = strategy == "er" and len(memory) > 0
        if strategy == "lwf" and phase >= 1:
            teacher = copy.deepcopy(model).eval()
        if strategy == "si":
            start = {n: p.detach().clone() for n, p in model.named_parameters()}
            prev = {n: p.detach().clone() for n, p in model.named_parameters()}
            omega = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
        steps = cfg.epochs * math.ceil(len(y_all) / cfg.batch_size)
        running = 0.0
        for _ in range(steps):
            idx = batches.next()
            x, y = x_all[idx], y_all[idx]
            if replaying:
                w = torch.ones(len(memory), dtype=torch.float64)
                r = torch.multinomial(w, cfg.batch_size, replacement=len(memory) < cfg.batch_size, generator=replay_gen)
                x, y = torch.cat([x, memory.examples["x"][r]]), torch.cat([y, memory.examples["y"][r]])
            out = model(x)
            loss = F.cross_entropy(out, y)
            if strategy == "ewc" and importance:
                loss = loss + 0.5 * 100.0 * (quadratic(model, importance, anchor) + constant)
            if strategy == "si" and importance:
                loss = loss + 1.0 * quadratic(model, importance, anchor)
            if strategy == "lwf" and teacher is not None:
                with torch.no_grad():
                    old = teacher(x)
                loss = loss + 1.0 * F.kl_div(F.log_softmax(out / 2.0, 1), F.log_softmax(old / 2.0, 1),
                                             reduction="batchmean", log_target=True) * 4.0
            if strategy == "der++" and len(memory) > 0:
                m = torch.randint(len(memory), (min(cfg.batch_size, len(memory)),))
                mse = ((model(memory.examples["x"][m]) - memory.examples["logits"][m]) ** 2)
                m2 = torch.randint(len(memory), (min(cfg.batch_size, len(memory)),))
                label = F.cross_entropy(model(memory.examples["x"][m2]), memory.examples["y"][m2], reduction="none")
                loss = loss + (0.2 * (mse.sum() / mse.numel()) + 0.5 * label.mean())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if strategy == "agem" and len(memory) > 0:
                m = torch.randint(len(memory), (min(64, len(memory)),))
                ref = F.cross_entropy(model(memory.examples["x"][m]), memory.examples["y"][m], reduction="none").mean()
                params = list(model.parameters())
                g = torch.cat([p.grad.reshape(-1) for p in params])
                g_ref = torch.cat([r.reshape(-1) for r in torch.autograd.grad(ref, params)])
                dot = torch.dot(g, g_ref)
                g = torch.where(dot < 0, g - dot / torch.dot(g_ref, g_ref).clamp_min(1e-12) * g_ref, g)
                torch.nn.utils.vector_to_parameters(g, [p.grad for p in params])
            opt.step()
            if strategy == "si":
                with torch.no_grad():
                    for n, p in model.named_parameters():
                        omega[n].add_(-p.grad * (p - prev[n]))
                        prev[n].copy_(p)
            running += loss.item()
        if strategy == "ewc":
            g = torch.Generator().manual_seed(seed * 7919 + phase)
            pick = torch.randperm(task.num_train, generator=g)[:256]
            f = fisher(model, task.train["x"][pick], task.train["y"][pick])
            with torch.no_grad():
                for n, p in model.named_parameters():
                    w = p.detach().clone()
                    if n not in importance:
                        importance[n], anchor[n] = f[n].clone(), w
                        continue
                    a1, m1, a = importance[n], anchor[n], importance[n] + f[n]
                    safe = torch.where(a > 0, a, torch.ones_like(a))
                    constant += float((torch.where(a > 0, a1 * f[n] / safe, torch.zeros_like(a)) * (m1 - w) ** 2).sum())
                    importance[n], anchor[n] = a, torch.where(a > 0, (a1 * m1 + f[n] * w) / safe, w)
        if strategy == "si":
            with torch.no_grad():
                for n, p in model.named_parameters():
                    gain = (omega[n] / ((p - start[n]) ** 2 + 0.1)).clamp_min(0)
                    importance[n] = gain + importance[n] if n in importance else gain
                    anchor[n] = p.detach().clone()
        if strategy in ("er", "agem", "der++"):
            from lifelong.data.examples import Examples

            data = Examples(x=task.train["x"], y=task.train["y"], task=torch.full((task.num_train,), task.index))
            extras = None
            if strategy == "der++":
                def extras(chosen):
                    model.eval()
                    with torch.no_grad():
                        logits = model(chosen["x"])
                    model.train()
                    return {"logits": logits}
            memory.add(data, None, extras)
        matrix.append(accuracy_row(model, stream))
    return since(t0)


def ours(stream, model, cfg: TrainConfig, strategy: str) -> tuple[float, float]:
    t0 = clocks()
    train_stream(stream, model, build_strategy(strategy), cfg)
    return since(t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=None)
    ap.add_argument("--only", default="", help="comma-separated strategies (default: all)")
    ap.add_argument("--clock", choices=("cpu", "wall"), default="cpu",
                    help="which time the ratio compares (both are printed)")
    args = ap.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    strategies = [s for s in args.only.split(",") if s] or STRATEGIES
    torch.set_num_threads(1)  # both loops on one core: less noise from the machine
    stream = make_benchmark("permuted-digits", seed=0, n_tasks=3 if args.quick else 5)
    cfg = TrainConfig(epochs=1 if args.quick else 3, batch_size=64, lr=0.05, momentum=0.9, seed=0, log_every=0,
                      device="cpu")
    seed_everything(0)
    init = build_model("mlp", stream, hidden=[512, 512])
    rows = []
    for strategy in strategies:
        # the same job: both loops must end with the same weights (same global RNG start for both)
        a, b = copy.deepcopy(init), copy.deepcopy(init)
        torch.manual_seed(1)
        hand_written(stream, a, cfg, strategy)
        torch.manual_seed(1)
        ours(stream, b, cfg, strategy)
        same = all(torch.allclose(p, q, atol=1e-5) for p, q in zip(a.parameters(), b.parameters()))
        times: dict[str, list[tuple[float, float]]] = {"hand": [], "ours": []}
        for r in range(rounds):
            for name in (["hand", "ours"] if r % 2 == 0 else ["ours", "hand"]):
                m = copy.deepcopy(init)
                torch.manual_seed(1)
                times[name].append((hand_written if name == "hand" else ours)(stream, m, cfg, strategy))
        wall = {k: statistics.median(t[0] for t in v) for k, v in times.items()}
        cpu = {k: statistics.median(t[1] for t in v) for k, v in times.items()}
        med = cpu if args.clock == "cpu" else wall
        rows.append((strategy, med["hand"], med["ours"], med["ours"] / med["hand"],
                     wall["ours"] / wall["hand"], cpu["ours"] / cpu["hand"], same))
        print(f"  {strategy}: hand {med['hand']:.3f}s ours {med['ours']:.3f}s ({args.clock}) ratio "
              f"{med['ours'] / med['hand']:.3f}; wall ratio {wall['ours'] / wall['hand']:.3f}, cpu ratio "
              f"{cpu['ours'] / cpu['hand']:.3f}; same weights {same}", flush=True)
    print(f"\n{'strategy':<12}{'hand s':>9}{'ours s':>9}{'ratio':>8}{'wall':>8}{'cpu':>8}  same final weights")
    for s, h, o, ratio, rw, rc, same in rows:
        print(f"{s:<12}{h:>9.3f}{o:>9.3f}{ratio:>8.3f}{rw:>8.3f}{rc:>8.3f}  {same}")
    print(f"({rounds} rounds alternating, medians of {args.clock} time; permuted-digits {len(stream)} tasks, "
          f"{cfg.epochs} epoch(s), MLP 64-512-512-10, batch 64, memory {MEMORY}; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the end)")
    naive = [r for r in rows if r[0] == "naive"]
    if naive:
        print(f"overhead_ratio: {naive[0][3]:.3f}")
    worst = max(rows, key=lambda r: r[3])
    print(f"overhead_worst_ratio: {worst[3]:.3f} ({worst[0]})")


if __name__ == "__main__":
    main()
