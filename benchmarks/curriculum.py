"""Data curricula within tasks, on split-mnist1d and on arithmetic skills: do they help, and when not?

Two settings, each comparing vanilla (uniform), linear pacing (easy first),
anti (hard first), random-order pacing (same amounts of data, random order),
cyclical and self-paced (hard weighting, growing loss threshold), with the same
pacing parameters (start 0.2, all data in at 60% of each task) in both:

* ``mnist1d``: split-mnist1d (5 tasks x 2 classes), task-incremental so the
  figure is about learning each task rather than forgetting; an MLP trained
  with Adam (lr 1e-3, a well-tuned default: "Curriculum Learning with Adam:
  The Devil Is in the Wrong Details" warns that curricula often only
  compensate for poor optimiser settings). Difficulty comes from the
  ``transfer`` scorer (a fresh copy of the model trained briefly on the task,
  cross-fitted over 2 folds). Self-paced threshold starts at 0.5 (x1.2 every
  20 steps). Target: 80% test accuracy, measured every 10 steps.
* ``arithmetic``: ``arithmetic-skills`` (add, then sub, then mul; 1- and
  2-digit operands, 1000 training problems per skill, exact-match answers),
  a tiny GPT-2 (2 layers, hidden 48, 4 heads, character tokenizer), AdamW
  lr 3e-3 (the setting of examples/arithmetic-lm.yaml), 400 steps per skill.
  Difficulty is given by the data (digit count; scorer ``given``), so half of
  the pool is "easy" and linear pacing starts on 1-digit problems only.
  Self-paced threshold starts at 1.0 (token cross-entropy; x1.1 every 20
  steps). Target: 25% exact match on the skill's test set, measured every
  20 steps. Skills are learned one after another by plain fine-tuning, so the
  accuracy after the last skill mostly measures forgetting, which no data
  order within a task addresses; the primary figure is therefore the accuracy
  on each skill right after it was learned (``plasticity``), and the final
  average accuracy is shown beside it.

Reported over 5 seeds (2 with --quick), mean and 95% confidence interval (t
distribution): accuracy, and the steps each task needs to reach the target
(tasks that never reach it count as the task's full step budget).

    python benchmarks/curriculum.py                    # both settings (about 6 minutes of CPU; 8.6 wall on 2 busy cores)
    python benchmarks/curriculum.py --task arithmetic  # one setting
    python benchmarks/curriculum.py --quick            # smoke version

Last lines: ``arithmetic_curriculum_minus_vanilla_acc: <linear - vanilla
accuracy right after learning each skill>`` (when arithmetic runs), then
``curriculum_minus_vanilla_acc: <linear - vanilla final average accuracy on
split-mnist1d>`` (when mnist1d runs) -- the script's headline is its last line.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from lifelong.assessment import average_accuracy, plasticity
from lifelong.curriculum import SCHEDULES
from lifelong.curriculum.scorers import SCORERS
from lifelong.data.benchmarks import make_benchmark
from lifelong.engine import Recipe, TrainConfig, seed_everything, train_stream
from lifelong.models import build_model
from lifelong.registry import build

PACED = {"start": 0.2, "full_at": 0.6}


def methods(self_paced_lam: float, self_paced_growth: float) -> dict[str, tuple[str, dict]]:
    return {
        "vanilla": ("uniform", {}),
        "curriculum (linear)": ("linear", dict(PACED)),
        "anti": ("anti", dict(PACED)),
        "random-order": ("random-order", dict(PACED)),
        "cyclical": ("cyclical", {"period": 0.25, "start": 0.2}),
        "self-paced": ("self-paced", {"lam": self_paced_lam, "growth": self_paced_growth, "grow_every": 20}),
    }


#: per setting: stream, model, scorer, training and target
SETTINGS = {
    "mnist1d": {
        "title": "split-mnist1d, 5 tasks x 2 classes, task-incremental; MLP 128-128, batch 32, Adam 1e-3",
        "methods": methods(0.5, 1.2), "target": 0.8, "eval_every": 10, "steps": 300, "quick_steps": 100,
        "scorer": ("transfer", {"steps": 100}),
    },
    "arithmetic": {
        "title": "arithmetic-skills add->sub->mul, 1-2 digits, 1000 problems/skill; GPT-2 2x48, batch 32, AdamW 3e-3",
        "methods": methods(1.0, 1.1), "target": 0.25, "eval_every": 20, "steps": 400, "quick_steps": 150,
        "scorer": ("given", {}),
    },
}
# t quantiles (two-sided 95%) by degrees of freedom
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def make_run(task: str, seed: int, quick: bool):
    """Stream, model and train config of one run of ``task``."""
    setting = SETTINGS[task]
    steps = setting["quick_steps"] if quick else setting["steps"]
    if task == "mnist1d":
        stream = make_benchmark("split-mnist1d", seed=seed, scenario="task", train_size=2000 if quick else 4000,
                                test_size=1000)
        seed_everything(seed)
        model = build_model("mlp", stream, hidden=(128, 128))
        cfg = TrainConfig(steps=steps, batch_size=32, optimizer="adam", lr=1e-3, seed=seed,
                          eval_every=setting["eval_every"], log_every=10, device="cpu")
    else:
        stream = make_benchmark("arithmetic-skills", seed=seed, skills=["add", "sub", "mul"], min_digits=1,
                                max_digits=2, train_size=1000, test_size=200)
        seed_everything(seed)
        model = build_model("tiny-causal-lm", stream, arch="gpt2", layers=2, hidden=48, heads=4, seed=seed)
        cfg = TrainConfig(steps=steps, batch_size=32, optimizer="adamw", lr=3e-3, seed=seed,
                          eval_every=setting["eval_every"], eval_batch_size=256, log_every=0, device="cpu")
    return stream, model, cfg


def steps_to_target(curves: list[dict], num_tasks: int, steps: int, target: float) -> list[int]:
    """Per task, the first step of its own training at which its test accuracy reached ``target``
    (``steps`` when it never did). Curves are indexed by the run's global step."""
    out = []
    for k in range(num_tasks):
        hits = [c["step"] - k * steps for c in curves
                if c["task"] == k and c["eval_task"] == k and c["accuracy"] >= target]
        out.append(min(hits) if hits else steps)
    return out


def run(task: str, label: str, seed: int, quick: bool) -> dict:
    setting = SETTINGS[task]
    stream, model, cfg = make_run(task, seed, quick)
    name, params = setting["methods"][label]
    schedule = build(SCHEDULES, name, params)
    scorer = build(SCORERS, *setting["scorer"]) if schedule.needs_difficulty else None
    t0 = time.perf_counter()
    result = train_stream(stream, model, Recipe(name=label, curriculum=schedule, scorer=scorer), cfg)
    seconds = time.perf_counter() - t0
    to_target = steps_to_target(result.curves, len(stream), cfg.steps, setting["target"])
    return {"final": average_accuracy(result.accuracy, result.row_tasks),
            "learned": plasticity(result.accuracy, result.row_tasks),
            "steps": statistics.fmean(to_target), "seconds": seconds}


def ci(values: list[float]) -> str:
    m = statistics.fmean(values)
    if len(values) < 2:
        return f"{m:.3f}"
    half = T95.get(len(values) - 1, 1.96) * statistics.stdev(values) / len(values) ** 0.5
    return f"{m:.3f} ± {half:.3f}"


def report(task: str, seeds: list[int], quick: bool) -> dict[str, list[dict]]:
    setting = SETTINGS[task]
    steps = setting["quick_steps"] if quick else setting["steps"]
    rows = {label: [run(task, label, s, quick) for s in seeds] for label in setting["methods"]}
    target = f"steps to {setting['target']:.0%} (of {steps})"
    print(f"{setting['title']}; {steps} steps/task; {len(seeds)} seeds, mean ± 95% CI")
    if task == "mnist1d":
        print(f"{'schedule':22s} {'final avg accuracy':>20s} {target:>24s} {'s/run':>7s}")
        for label, runs in rows.items():
            print(f"{label:22s} {ci([r['final'] for r in runs]):>20s} {ci([r['steps'] for r in runs]):>24s} "
                  f"{statistics.fmean(r['seconds'] for r in runs):>7.1f}")
    else:
        print(f"{'schedule':22s} {'acc. right after learning':>26s} {'final avg accuracy':>20s} {target:>24s} "
              f"{'s/run':>7s}")
        for label, runs in rows.items():
            print(f"{label:22s} {ci([r['learned'] for r in runs]):>26s} {ci([r['final'] for r in runs]):>20s} "
                  f"{ci([r['steps'] for r in runs]):>24s} {statistics.fmean(r['seconds'] for r in runs):>7.1f}")
    print()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke version")
    ap.add_argument("--task", choices=["both", "mnist1d", "arithmetic"], default="both",
                    help="which setting to run (default: both, split-mnist1d first)")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    tasks = ["mnist1d", "arithmetic"] if args.task == "both" else [args.task]
    results = {task: report(task, seeds, args.quick) for task in tasks}

    def gap(rows: dict[str, list[dict]], key: str) -> float:
        return (statistics.fmean(r[key] for r in rows["curriculum (linear)"])
                - statistics.fmean(r[key] for r in rows["vanilla"]))

    if "arithmetic" in results:
        print(f"arithmetic_curriculum_minus_vanilla_acc: {gap(results['arithmetic'], 'learned'):+.3f}")
    if "mnist1d" in results:
        print(f"curriculum_minus_vanilla_acc: {gap(results['mnist1d'], 'final'):+.3f}")


if __name__ == "__main__":
    main()
