"""Review schedules on a 10-task class-incremental stream, same memory budget, and at equal review budget.

split-mnist1d with one new class per task (10 tasks, class-incremental: at
test time the model chooses among every class seen so far), an MLP, a
reservoir memory of 500 examples shared by all methods, 200 Adam steps per
task. Reported: final average accuracy and average forgetting (mean ± sd over
5 seeds, 0-4; 2 with --quick), and the measured share of training rows that
came from memory (the review fraction, sampled every 10 steps, tasks 2-10).

Part 1, the schedules at their own settings: no review, uniform replay (half
of each batch from memory), power-law review (same share, old tasks weighted
by (age + 1)^-1) and spaced review (quizzes on 5 held-out memory items per
task every 50 steps; forgetting sets the review share between 5% and 60%).

Part 2, equal budget. Spaced review decides both *how much* to review and
*what*, so its share differs from replay's 0.5. Compared at the same average
share: uniform replay and power-law review at the ratio spaced review actually
used (measured in part 1, rounded to 0.01); spaced review with its per-task
allocation exclusive (``spread=0``), shared half and half with a uniform one
(``spread=0.5``, the default) and switched off (``spread=1``: spaced review
only sets the amount); spaced review as it was before the quiz bound
(``bound_by_quiz=False, spread=0``) against replay at its own share; and the
per-task allocation alone at a fixed share of 0.5 (min = max fraction) against
replay 0.5.

The spaced-review defaults were chosen on seeds 100-104; the figures here use
seeds 0-4.

    python benchmarks/review.py            # full (about 2-3 minutes of CPU; 3.3 minutes wall on 2 busy cores)
    python benchmarks/review.py --quick    # smoke version

Last line: ``spaced_minus_replay_equal_budget_acc: <spaced review (defaults) -
uniform replay at spaced review's measured share, final average accuracy>``.
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
from lifelong.runs.compare import Stat

Spec = tuple[str, dict] | None

OWN_SETTINGS: dict[str, Spec] = {
    "no review": None,
    "replay 0.5": ("replay", {"ratio": 0.5}),
    "power-law-review 0.5": ("power-law-review", {"ratio": 0.5, "alpha": 1.0}),
    "spaced-review": ("spaced-review", {}),
}
BEFORE = ("spaced-review", {"bound_by_quiz": False, "spread": 0.0})


def run(spec: Spec, seed: int, steps: int, train_size: int) -> dict:
    stream = make_benchmark("split-mnist1d", seed=seed, classes_per_task=1, train_size=train_size, test_size=1000)
    seed_everything(seed)
    model = build_model("mlp", stream, hidden=(128, 128))
    review = build(SCHEDULES, spec[0], spec[1]) if spec else None
    memory = build(BUFFERS, "reservoir", {"capacity": 500, "seed": seed})
    cfg = TrainConfig(steps=steps, batch_size=32, optimizer="adam", lr=1e-3, seed=seed, log_every=10, device="cpu")
    t0 = time.perf_counter()
    label = spec[0] if spec else "none"
    result = train_stream(stream, model, Recipe(name=label, memory=memory, review=review), cfg)
    seconds = time.perf_counter() - t0
    fracs = [row["review/review_fraction"] for row in result.schedule_log if "review/review_fraction" in row]
    return {"acc": average_accuracy(result.accuracy, result.row_tasks),
            "forgetting": forgetting(result.accuracy, result.row_tasks),
            "review": statistics.fmean(fracs) if fracs else 0.0, "seconds": seconds}


def mean(runs: list[dict], key: str) -> float:
    return statistics.fmean(r[key] for r in runs)


def ms(values) -> str:
    """Mean ± sample std over the seeds (the comparison table's format; NaN left out, "—" when none)."""
    return Stat.of(values).format()


def table(rows: dict[str, list[dict]]) -> None:
    print(f"{'review schedule':46s} {'final avg accuracy':>20s} {'forgetting':>18s} {'memory share':>13s} {'s/run':>7s}")
    for label, runs in rows.items():
        print(f"{label:46s} {ms([r['acc'] for r in runs]):>20s} {ms([r['forgetting'] for r in runs]):>18s} "
              f"{mean(runs, 'review'):>13.3f} {mean(runs, 'seconds'):>7.1f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small smoke version")
    args = ap.parse_args()
    torch.set_num_threads(1)
    seeds = [0, 1] if args.quick else [0, 1, 2, 3, 4]
    steps, train = (60, 2000) if args.quick else (200, 4000)

    done: dict[str, list[dict]] = {}

    def runs(spec: Spec) -> list[dict]:
        """The runs of ``spec`` over the seeds (a spec already run, e.g. replay at a matched 0.50, is reused)."""
        key = repr(spec)
        if key not in done:
            done[key] = [run(spec, s, steps, train) for s in seeds]
        return done[key]

    own = {label: runs(spec) for label, spec in OWN_SETTINGS.items()}
    print(f"split-mnist1d, 10 tasks x 1 class, class-incremental; {steps} steps/task, batch 32, reservoir memory 500, "
          f"{len(seeds)} seeds {seeds} (mean ± sd)")
    print("part 1: each schedule at its own settings")
    table(own)

    share = round(mean(own["spaced-review"], "review"), 2)
    before = runs(BEFORE)
    share_before = round(mean(before, "review"), 2)
    equal = {
        f"replay {share:.2f}": runs(("replay", {"ratio": share})),
        f"power-law-review {share:.2f}": runs(("power-law-review", {"ratio": share, "alpha": 1.0})),
        "spaced-review spread=0 (priority only)": runs(("spaced-review", {"spread": 0.0})),
        "spaced-review spread=0.5 (default)": own["spaced-review"],
        "spaced-review spread=1 (amount only)": runs(("spaced-review", {"spread": 1.0})),
        "spaced-review before quiz bound (spread=0)": before,
        f"replay {share_before:.2f}": runs(("replay", {"ratio": share_before})),
        "replay 0.5 (from part 1)": own["replay 0.5"],
        "spaced-review fixed 0.5, spread=0": runs(("spaced-review", {"min_fraction": 0.5, "max_fraction": 0.5,
                                                                     "spread": 0.0})),
        "spaced-review fixed 0.5, spread=1": runs(("spaced-review", {"min_fraction": 0.5, "max_fraction": 0.5,
                                                                     "spread": 1.0})),
    }
    print()
    print(f"part 2: equal review budget (spaced review's measured share {share:.2f}; before the quiz bound "
          f"{share_before:.2f}; fixed 0.5)")
    table(equal)
    diff = mean(own["spaced-review"], "acc") - mean(equal[f"replay {share:.2f}"], "acc")
    print(f"spaced_minus_replay_equal_budget_acc: {diff:+.3f}")


if __name__ == "__main__":
    main()
