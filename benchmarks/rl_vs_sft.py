"""Forgetting under supervised vs policy-gradient fine-tuning on the same stream (issue 11 stretch).

"Reinforcement Fine-Tuning Naturally Mitigates Forgetting in Continual
Post-Training" reports that, taught a sequence of tasks, SFT forgets earlier
ones while reinforcement fine-tuning (RFT) keeps them. This script asks the
same question of a tiny model:

* stream: three string skills on 3-digit strings, one task each, a task
  letter in the prompt so they do not contradict each other:
  ``c382:`` -> ``382`` (copy), ``r382:`` -> ``283`` (reverse),
  ``s382:`` -> ``238`` (sort); 1000 strings per skill, 200 of them held
  out for the test (the same 200 for every skill); character tokenizer;
* model: a tiny GPT-2 (2 layers, hidden 64) from random initialisation;
  Adam 1e-3, batch 32, the same number of optimiser steps per task for both;
* SFT: every step is next-token cross-entropy on the reference answer;
* ReMax: the first ``warmup`` (60) steps of each task are the same SFT, the
  other 140 are ReMax (:mod:`lifelong.hf.rl`: 4 sampled completions per
  prompt at temperature 1, reward = exact match, baseline = the greedy
  completion's reward). A model from scratch earns no reward on a new skill
  without a supervised warm-up (with 1 sample and a 60-step warm-up the
  reward stays near 0 and ReMax collapses; 4 samples learn each skill). The
  warm-up is SFT, so the exact match of the earlier tasks is also measured
  when the next task's warm-up ends: the forgetting that the supervised part
  alone caused.

A second setting is closer to the paper's, whose base model already does
something on every task: a "base model" gets ``--base-steps`` (150) steps of
joint SFT on all three skills first (exact match about 0.3-0.9 on each), then
the same stream is taught by SFT or by ReMax *without* warm-up (2 seeds, to
stay within the time budget).

Reported per objective and setting (mean ± sd over seeds): the final exact
match of every task, the forgetting of the first two (best earlier exact match
minus final), its mean over the tasks the objective did learn (best >= 0.9),
the final average, the accuracy matrices and ReMax's sampled reward (schedule
log). Last lines: ``rl_minus_sft_forgetting_scratch`` and ``_base`` (ReMax's
mean forgetting minus SFT's; negative: ReMax forgot less), then
``rl_minus_sft_forgetting: <the from-scratch figure>`` (the setting of the
brief: SFT vs ReMax after a warm-up). Read them with the matrices: a task that
ReMax never learned has nothing to forget.

    python benchmarks/rl_vs_sft.py            # 3 + 2 seeds, about 3.5 minutes on 2 busy cores
    python benchmarks/rl_vs_sft.py --quick    # 1 seed each, fewer steps (smoke: ReMax collapses there)
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import zlib

import torch

from lifelong.assessment import average_accuracy, forgetting
from lifelong.data.task import Stream, Task
from lifelong.engine import TrainConfig, train_stream
from lifelong.engine.config import Recipe
from lifelong.hf.encoding import encode_pairs
from lifelong.hf.models import tiny_causal_lm
from lifelong.hf.objective import CausalLMObjective
from lifelong.runs.compare import Stat
from lifelong.hf.rl import PolicyGradientObjective
from lifelong.hf.tokenizer import CharTokenizer

SKILLS = {"copy": ("c", lambda s: s), "reverse": ("r", lambda s: s[::-1]), "sort": ("s", lambda s: "".join(sorted(s)))}


def skills_stream(names=("copy", "reverse", "sort")) -> Stream:
    tok = CharTokenizer("0123456789:crs", strict=True)
    strings = [f"{i:03d}" for i in range(1000)]
    test = [s for s in strings if zlib.crc32(s.encode()) % 5 == 0]  # a fixed 1/5 held out, seed-independent
    train = [s for s in strings if zlib.crc32(s.encode()) % 5 != 0]
    tasks = []
    for name in names:
        letter, fn = SKILLS[name]
        parts = [encode_pairs(tok, [f"{letter}{s}:" for s in split], [fn(s) for s in split], length=10,
                              source=f"{name}/{kind}") for kind, split in (("train", train), ("test", test))]
        tasks.append(Task(name, parts[0], parts[1], (), {}))
    return Stream("string-skills", tasks, scenario="domain", kind="lm", info={"tokenizer": tok, "max_length": 10})


_BASES: dict = {}


def base_model(stream: Stream, seed: int, base_steps: int):
    """The tiny GPT-2 of ``seed``, after ``base_steps`` of joint SFT on every skill when > 0 (a "base
    model" that already knows a little of each task, as the pretrained model of the paper does); cached."""
    key = (seed, base_steps)
    if key not in _BASES:
        model = tiny_causal_lm(stream, arch="gpt2", layers=2, hidden=64, heads=4, seed=seed)
        if base_steps:
            cfg = TrainConfig(steps=base_steps, batch_size=32, optimizer="adam", lr=1e-3, seed=seed + 1000,
                              device="cpu", log_every=0, eval_batch_size=256)
            r = train_stream(stream, model, Recipe(pool="joint"), cfg)
            model.base_accuracy = r.accuracy[-1]
        _BASES[key] = model
    return copy.deepcopy(_BASES[key])


def run(objective: str, seed: int, steps: int, warmup: int, samples: int = 1, base_steps: int = 0) -> dict:
    stream = skills_stream()
    model = base_model(stream, seed, base_steps)
    obj = CausalLMObjective(stream) if objective == "sft" else \
        PolicyGradientObjective(stream, warmup_steps=warmup, samples=samples, temperature=1.0)
    cfg = TrainConfig(steps=steps, batch_size=32, optimizer="adam", lr=1e-3, seed=seed, device="cpu",
                      log_every=max(1, (steps - warmup) // 3), eval_batch_size=256, eval_every=warmup or steps)
    t0 = time.perf_counter()
    r = train_stream(stream, model, config=cfg, objective=obj)
    rows = r.accuracy
    n = len(rows)
    forget = [max(rows[i][j] for i in range(j, n - 1)) - rows[-1][j] for j in range(n - 1)]
    rewards = [(x["task"], round(x["rl/reward"], 3)) for x in r.schedule_log if "rl/reward" in x]
    # exact match of task j when the next task's warm-up ends (step `warmup` of phase j + 1): what the
    # supervised part of the next task alone left of it
    at = {(c["step"], c["eval_task"]): c["accuracy"] for c in r.curves}
    after_warmup = [at.get(((j + 1) * steps + warmup, j), float("nan")) for j in range(n - 1)]
    return {"final": rows[-1], "forgetting": forgetting(rows, r.row_tasks), "per_task_forgetting": forget,
            "acc": average_accuracy(rows, r.row_tasks), "seconds": time.perf_counter() - t0, "rewards": rewards,
            "matrix": rows, "after_next_warmup": after_warmup,
            "base": getattr(model, "base_accuracy", None)}


def ms(values) -> str:
    """Mean ± sample std over the seeds (the comparison table's format; NaN left out, "—" when none)."""
    return Stat.of(values).format()


def report(title: str, results: dict, warmup: int) -> float:
    """Print one setting's table; return ReMax's mean forgetting minus SFT's."""
    names = list(SKILLS)
    print(title)
    print(f"  {'objective':9s} " + " ".join(f"{'final ' + n:>15s}" for n in names)
          + " " + " ".join(f"{'forget ' + n:>15s}" for n in names[:-1]) + f" {'avg forgetting':>15s}"
          f" {'final avg':>15s} {'s/run':>6s}")
    for m, runs in results.items():
        print(f"  {m:9s} " + " ".join(f"{ms(r['final'][j] for r in runs):>15s}" for j in range(len(names)))
              + " " + " ".join(f"{ms(r['per_task_forgetting'][j] for r in runs):>15s}" for j in range(len(names) - 1))
              + f" {ms(r['forgetting'] for r in runs):>15s} {ms(r['acc'] for r in runs):>15s}"
              f" {statistics.fmean(r['seconds'] for r in runs):>6.1f}")
    for m, runs in results.items():
        # forgetting of the (seed, task) pairs the objective did learn (best exact match >= 0.9 before the end)
        learned = [r["per_task_forgetting"][j] for r in runs for j in range(len(names) - 1)
                   if max(row[j] for row in r["matrix"][j:-1]) >= 0.9]
        print(f"  {m}: forgetting of the tasks it learned (best >= 0.9): {ms(learned)} over {len(learned)} of "
              f"{len(runs) * (len(names) - 1)} (seed, task) pairs")
    if warmup:
        print(f"  exact match of copy / reverse when the next task's first {warmup} steps end (SFT in both so "
              "far): " + ", ".join(f"{m} " + " / ".join(ms(r['after_next_warmup'][j] for r in runs)
                                                       for j in range(len(names) - 1)) for m, runs in results.items()))
    for m, runs in results.items():
        for r in runs:
            if r["base"] is not None and m == "sft":
                print(f"  base model (joint SFT) exact match: {[round(a, 3) for a in r['base']]}")
            print(f"  {m:5s} matrix {[[round(a, 3) for a in row] for row in r['matrix']]}"
                  + (f"; sampled reward (task, value) {r['rewards']}" if m == "remax" else ""))
    return statistics.fmean(r["forgetting"] for r in results["remax"]) - \
        statistics.fmean(r["forgetting"] for r in results["sft"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 seed, fewer steps")
    ap.add_argument("--steps", type=int, default=None, help="optimiser steps per task (default 200; quick 100)")
    ap.add_argument("--warmup", type=int, default=None, help="SFT steps per task before ReMax (default 60; quick 40)")
    ap.add_argument("--samples", type=int, default=4, help="ReMax completions sampled per prompt (default 4)")
    ap.add_argument("--base-steps", type=int, default=None,
                    help="joint SFT steps of the base model of the second setting (default 150; 0 = skip it)")
    ap.add_argument("--seeds", type=int, default=None, help="seeds of the first setting (default 3; quick 1)")
    ap.add_argument("--base-seeds", type=int, default=None, help="seeds of the second setting (default 2; quick 1)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    steps = args.steps or (100 if args.quick else 200)
    warmup = args.warmup if args.warmup is not None else (40 if args.quick else 60)
    base = args.base_steps if args.base_steps is not None else (60 if args.quick else 150)
    seeds = list(range(args.seeds or (1 if args.quick else 3)))
    t_all = time.perf_counter()
    headline = None
    if warmup > 0:
        results = {m: [run(m, s, steps, warmup, args.samples) for s in seeds] for m in ("sft", "remax")}
        headline = report(f"from scratch: copy -> reverse -> sort, tiny GPT-2; {steps} steps/task (ReMax: {warmup} "
                          f"SFT warm-up + {steps - warmup} ReMax, {args.samples} samples); seeds {seeds}",
                          results, warmup)
        print(f"rl_minus_sft_forgetting_scratch: {headline:+.3f}")
    if base > 0:
        bseeds = list(range(args.base_seeds or (1 if args.quick else 2)))
        results = {m: [run(m, s, steps, 0, args.samples, base) for s in bseeds] for m in ("sft", "remax")}
        diff = report(f"base model ({base} steps of joint SFT on all three skills), then copy -> reverse -> sort; "
                      f"{steps} steps/task, ReMax without warm-up, {args.samples} samples; seeds {bseeds}", results, 0)
        print(f"rl_minus_sft_forgetting_base: {diff:+.3f}")
        headline = diff if headline is None else headline
    print(f"total {time.perf_counter() - t_all:.0f} s")
    print(f"rl_minus_sft_forgetting: {headline:+.3f}")


if __name__ == "__main__":
    main()
