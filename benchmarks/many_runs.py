"""Many runs at once: a seeds x strategies grid run three ways, as a user would.

The grid: 8 seeds x {naive, er, ewc, der++} on class-incremental split-digits
and split-mnist1d (64 runs; MLP 256-256, one epoch per task, batch 32, SGD
0.05 with momentum 0.9; EWC with lambda 10: its default of 100 diverges on
split-mnist1d at this learning rate, in every way of running it), run

  (a) one process per run, one after the other (``lifelong run CONFIG --out DIR``),
  (b) through ``lifelong compare GRID --out DIR`` (its process pool),
  (c) vectorised: one process that builds every run and trains each group of
      stackable runs as one batched computation (``lifelong.vectorized.run_vectorized``),
      writing the same run folders.

Every way is timed from the outside (process start-up, imports and data
included; the data cache is warmed first so every way gets it). Every
process runs with ``--threads`` torch threads (default 1, through
OMP_NUM_THREADS): on a shared 2-core machine two threads per process spend
most of their time waiting for each other (a vectorised grid took 243 s with
2 threads against 14 s with 1 at a load average of 9). Printed: the
wall time of each, the speed-ups, and the largest difference between (a) and
(c) of any run's final accuracy (and of any entry of its accuracy matrix).
Last line: ``many_runs_speedup: X`` = (a) / (c).

    python benchmarks/many_runs.py              # the full grid (about 5 minutes on 2 cores)
    python benchmarks/many_runs.py --quick      # 2 seeds, split-digits only
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

STRATEGIES = ["naive", "er", {"name": "ewc", "params": {"lambda": 10.0}}, "der++"]
BENCHMARKS = ["split-digits", "split-mnist1d"]


def grid(benchmark: str, seeds: list[int]) -> dict:
    return {"benchmark": {"name": benchmark}, "model": {"name": "mlp"},
            "train": {"epochs": 1, "batch_size": 32, "lr": 0.05, "momentum": 0.9},
            "strategy": STRATEGIES, "seeds": seeds, "device": "cpu"}


def python() -> list[str]:
    return [sys.executable]


THREADS = "1"


def env() -> dict[str, str]:
    e = dict(os.environ)
    e["OMP_NUM_THREADS"] = THREADS
    src = str(Path(__file__).resolve().parents[1] / "src")
    e["PYTHONPATH"] = src + (os.pathsep + e["PYTHONPATH"] if e.get("PYTHONPATH") else "")
    return e


FAILED: list[str] = []


def run(cmd: list[str]) -> float:
    """Wall time of ``cmd``; a failing command is recorded (its runs keep their partial results) and shown."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env(), capture_output=True, text=True)
    if proc.returncode != 0:
        FAILED.append(f"{' '.join(cmd[-4:])}: {(proc.stderr or proc.stdout).strip().splitlines()[-1][:200]}")
    return time.perf_counter() - t0


def cells(grid_cfg: dict) -> list[tuple[str, dict]]:
    from lifelong.config import validate

    return [(name, cfg.resolved()) for name, cfg in validate(grid_cfg).expand()]


def way_a(grids: dict[str, dict], out: Path) -> float:
    """One `lifelong run` process per run, sequentially."""
    total = 0.0
    for bench, g in grids.items():
        for name, cfg in cells(g):
            path = out / "configs" / bench / f"{name}.yaml"
            path.parent.mkdir(parents=True, exist_ok=True)
            cfg.pop("out", None)
            path.write_text(yaml.safe_dump(cfg, sort_keys=False))
            total += run(python() + ["-m", "lifelong.cli", "run", str(path), "--out", str(out / bench / name),
                                     "--quiet"])
    return total


def way_b(grids: dict[str, dict], out: Path) -> float:
    """`lifelong compare` per benchmark grid."""
    total = 0.0
    for bench, g in grids.items():
        path = out / f"{bench}.yaml"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(g, sort_keys=False))
        total += run(python() + ["-m", "lifelong.cli", "compare", str(path), "--out", str(out / bench), "--quiet"])
    return total


def way_c(grids: dict[str, dict], out: Path) -> float:
    """One process: every run of every grid, vectorised."""
    path = out / "grids.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(grids))
    return run(python() + [__file__, "--vectorised-worker", str(path), str(out)])


def vectorised_worker(grids_path: str, out: str) -> None:
    from lifelong.config import validate
    from lifelong.vectorized import run_vectorized, vectorizable

    configs, dirs = [], []
    for bench, g in json.loads(Path(grids_path).read_text()).items():
        for name, cfg in validate(g).expand():
            configs.append(cfg)
            dirs.append(Path(out) / bench / name)
    groups, reasons = vectorizable(configs)
    if reasons:
        raise SystemExit(f"not vectorisable: {reasons}")
    report = run_vectorized(configs, dirs)
    failed = [str(d) for d, (ok, _, _) in zip(dirs, report) if not ok]
    print(f"{len(configs)} runs in {len(groups)} stacks; failed: {failed}")
    if failed:
        raise SystemExit(1)


def accuracy(path: Path) -> list[list[float]]:
    return json.loads((path / "metrics.json").read_text())["accuracy_matrix"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=None)
    ap.add_argument("--skip-b", action="store_true", help="skip `lifelong compare` (b)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads per process (OMP_NUM_THREADS)")
    ap.add_argument("--vectorised-worker", nargs=2, metavar=("GRIDS", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.vectorised_worker:
        vectorised_worker(*args.vectorised_worker)
        return
    global THREADS
    THREADS = str(args.threads)
    seeds = list(range(args.seeds or (2 if args.quick else 8)))
    benches = BENCHMARKS[:1] if args.quick else BENCHMARKS
    grids = {b: grid(b, seeds) for b in benches}
    n_runs = len(seeds) * len(STRATEGIES) * len(benches)
    # warm the data cache (every way then gets it, as a user's second run would)
    run(python() + ["-c", "from lifelong.data.benchmarks import make_benchmark as m; "
                    + "; ".join(f"m('{b}', 0)" for b in benches)])
    root = Path(tempfile.mkdtemp(prefix="many_runs-"))
    try:
        t = {"(a) one process per run": way_a(grids, root / "a")}
        if not args.skip_b:
            t["(b) lifelong compare"] = way_b(grids, root / "b")
        t["(c) vectorised"] = way_c(grids, root / "c")
        worst_final, worst_any, where = 0.0, 0.0, ""
        for bench, g in grids.items():
            for name, _ in cells(g):
                a, c = accuracy(root / "a" / bench / name), accuracy(root / "c" / bench / name)
                fa, fc = sum(a[-1]) / len(a[-1]), sum(c[-1]) / len(c[-1])
                d_any = max(abs(x - y) for ra, rc in zip(a, c) for x, y in zip(ra, rc))
                if abs(fa - fc) >= worst_final:
                    worst_final, where = abs(fa - fc), f"{bench}/{name}"
                worst_any = max(worst_any, d_any)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"{n_runs} runs ({len(seeds)} seeds x {len(STRATEGIES)} strategies x {len(benches)} benchmarks), "
          f"{cores} cores, {THREADS} torch thread(s) per process, load average {load:.1f} at the end")
    print(f"{'way':<26}{'wall s':>9}{'s/run':>8}{'speed-up vs (a)':>17}")
    base = t["(a) one process per run"]
    for k, v in t.items():
        print(f"{k:<26}{v:>9.1f}{v / n_runs:>8.2f}{base / v:>17.2f}")
    for f in FAILED:
        print(f"failed: {f}")
    print(f"largest |final accuracy (a) - (c)| over runs: {worst_final:.2e} ({where}); "
          f"largest difference of any accuracy-matrix entry: {worst_any:.2e}")
    print(f"many_runs_speedup: {base / t['(c) vectorised']:.2f}")


if __name__ == "__main__":
    main()
