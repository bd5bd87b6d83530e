"""Spaced review: quizzes on held-out memory items drive a per-task memory
model, and predicted forgetting decides what to review and how much.

The model, per task (memory group), measured in training steps:

* Leitner box b (0..``boxes``-1): a passed quiz moves the task up a box, a
  failed one back to box 0; the box gives a review interval
  ``base_interval`` * 2^b.
* Stability S and retrievability R, in the spirit of FSRS: predicted recall
  after e steps since the task was last studied is R = (1 + F e / S)^C with
  F = 19/81, C = -0.5 (so R = 0.9 when e = S). A passed quiz multiplies S by
  1 + ``gain``; a failed one by ``lapse``, or lowers it further to the value
  at which the curve predicts the recall the quiz just measured (at least
  ``min_stability``), so heavy forgetting shows at once.

Every ``quiz_every`` steps the loop assesses the model on ``quiz_size`` held-out
memory items per task (they get weight 0 and are never trained on) and
reports per-task accuracy. Recall is that accuracy relative to the best the
task has shown on quizzes; a quiz passes when recall >= ``pass_at``.

A quiz is a measurement, so the prediction never exceeds it: predicted recall
is the smaller of the curve since the task was last studied and the last
quiz's recall decayed along the curve since that quiz. Without this bound a
replayed ``dose`` restarted the curve at R = 1 even when the following quizzes
still found the task forgotten (class-incremental streams forget a class
within a few dozen steps), and review fell back to ``min_fraction`` exactly
when it was needed. ``bound_by_quiz=False`` restores the unbounded curve.

A task is *due* when its interval has elapsed or its predicted recall fell
below ``retention``. Review is shared among the memory's items: ``spread`` of
it uniformly over every task's items (as uniform replay does), the rest over
due tasks in proportion to 1 - R (falling recall first). ``spread`` keeps
tasks that are not due yet from being starved until their quiz fails; with
``spread=0`` review goes to due tasks only, with ``spread=1`` spaced review
decides only *how much* to review, not what. The default 0.5 keeps the
priority while giving every task at least half its uniform share: on
class-incremental split-mnist1d (benchmarks/review.py) exclusive priority
scored below uniform allocation at the same budget (plausibly because every
old class must stay in the batch to keep the shared classifier from favouring
the newest classes). A task counts as studied again (its clock restarts) once
``dose`` of its items have been replayed.

The share of each batch taken from memory follows forgetting instead of a fixed ratio: ``min_fraction`` when
nothing is due, rising linearly with the largest 1 - R among due tasks up to
``max_fraction`` when that reaches 1 - ``retention``.
"""

from __future__ import annotations

import math
from typing import ClassVar

import torch
from torch import Tensor

from lifelong.curriculum.base import Feedback, PoolView, ReviewSchedule
from lifelong.curriculum.common import check, check_fraction, check_positive_int, group_names
from lifelong.curriculum.registry import SCHEDULES
from lifelong.curriculum.review.power_law import start_ages

FACTOR = 19.0 / 81.0
DECAY = -0.5


def retrievability(elapsed: float, stability: float) -> float:
    """FSRS-style power forgetting curve: R = (1 + F e / S)^C, R(S) = 0.9."""
    return (1.0 + FACTOR * max(0.0, elapsed) / stability) ** DECAY


@SCHEDULES.register("spaced-review")
class SpacedReview(ReviewSchedule):
    """Spaced repetition: quizzes drive Leitner boxes and an FSRS-like recall model; forgetting sets the review share."""

    name: ClassVar[str] = "spaced-review"
    needs_feedback: ClassVar[bool] = True
    #: the per-task memory model and clock carry over between tasks; the quiz items and names come from start()
    state_attrs: ClassVar[tuple[str, ...]] = ReviewSchedule.state_attrs + (
        "tasks", "clock_base", "quizzes", "_started", "_now", "names", "quiz", "trainable")

    def __init__(self, quiz_every: int = 50, quiz_size: int = 5, boxes: int = 5, base_interval: int = 100,
                 initial_stability: float = 200.0, retention: float = 0.9, pass_at: float = 0.9,
                 gain: float = 1.0, lapse: float = 0.5, min_stability: float = 10.0, dose: int = 32,
                 min_fraction: float = 0.05, max_fraction: float = 0.6, spread: float = 0.5,
                 bound_by_quiz: bool = True) -> None:
        super().__init__(min_fraction)
        self.quiz_every = check_positive_int("quiz_every", quiz_every)
        self.quiz_size = check_positive_int("quiz_size", quiz_size)
        self.boxes = check_positive_int("boxes", boxes)
        self.base_interval = check_positive_int("base_interval", base_interval)
        self.initial_stability = check_fraction("initial_stability", initial_stability, 0.0, math.inf,
                                                low_open=True, high_open=True)
        self.retention = check_fraction("retention", retention, 0.0, 1.0, low_open=True, high_open=True)
        self.pass_at = check_fraction("pass_at", pass_at)
        self.gain = check_fraction("gain", gain, 0.0, math.inf, high_open=True)
        self.lapse = check_fraction("lapse", lapse, 0.0, 1.0, low_open=True)
        self.min_stability = check_fraction("min_stability", min_stability, 0.0, math.inf, low_open=True, high_open=True)
        self.dose = check_positive_int("dose", dose)
        self.min_fraction = check_fraction("min_fraction", min_fraction, 0.0, 1.0, high_open=True)
        self.max_fraction = check_fraction("max_fraction", max_fraction, 0.0, 1.0, high_open=True)
        self.spread = check_fraction("spread", spread)
        self.bound_by_quiz = bool(bound_by_quiz)
        check(self.min_fraction <= self.max_fraction,
              f"min_fraction ({min_fraction}) must not exceed max_fraction ({max_fraction}).")
        # per task name: box, stability, last (studied), ref (best quiz), dose; after a quiz also measured (its recall), measured_at
        self.tasks: dict[str, dict[str, float]] = {}
        self.clock_base = 0
        self.quizzes = 0
        self._started = False
        self._now = 0

    # -- life cycle ------------------------------------------------------
    def start(self, pool: PoolView, total_steps: int, seed: int = 0) -> None:
        if self._started:
            self.clock_base += self.total_steps
        super().start(pool, total_steps, seed)
        self._started = True
        self._now = 0
        self.names = group_names(pool)
        sizes = pool.group_sizes()
        ages = start_ages(pool, self.total_steps)
        for g in range(pool.num_groups):
            if int(sizes[g]) > 0 and self.names[g] not in self.tasks:
                self.tasks[self.names[g]] = {"box": 0.0, "stability": self.initial_stability,
                                             "last": self.clock_base - float(ages[g]), "ref": 0.0, "dose": 0.0}
        gen = torch.Generator().manual_seed(self.seed)
        quiz = []
        for g in range(pool.num_groups):
            members = torch.nonzero(pool.groups == g).flatten()
            k = min(self.quiz_size, len(members) // 2)
            if k > 0:
                quiz.append(members[torch.randperm(len(members), generator=gen)[:k]])
        self.quiz = torch.sort(torch.cat(quiz)).values if quiz else torch.zeros(0, dtype=torch.long)
        self.trainable = torch.ones(pool.size)
        self.trainable[self.quiz] = 0.0

    def quiz_indices(self) -> Tensor | None:
        """Memory items held out for quizzes (never trained on)."""
        return self.quiz if len(self.quiz) else None

    # -- the memory model -----------------------------------------------
    def now(self, step: int | None = None) -> float:
        return float(self.clock_base + (self._now if step is None else step))

    def recall(self, name: str, step: int | None = None) -> float:
        """Predicted recall: the curve since last studied, bounded by the last quiz decayed since it was taken."""
        s = self.tasks[name]
        now = self.now(step)
        curve = retrievability(now - s["last"], s["stability"])
        if not self.bound_by_quiz or "measured_at" not in s:  # no quiz yet
            return curve
        return min(curve, s["measured"] * retrievability(now - s["measured_at"], s["stability"]))

    def interval(self, name: str) -> float:
        """Steps between reviews: the shorter of the Leitner interval and the time for R to reach ``retention``."""
        s = self.tasks[name]
        to_retention = s["stability"] * (self.retention ** (1.0 / DECAY) - 1.0) / FACTOR
        return min(self.base_interval * 2.0 ** s["box"], to_retention)

    def due(self, name: str, step: int | None = None) -> bool:
        s = self.tasks[name]
        return self.now(step) - s["last"] >= self.interval(name) or self.recall(name, step) < self.retention

    def _present(self) -> list[int]:
        sizes = self.pool.group_sizes()  # type: ignore[union-attr]
        # only tasks known since start(): the loop's memory may have grown under the view
        return [g for g in range(self.pool.num_groups)  # type: ignore[union-attr]
                if int(sizes[g]) > 0 and self.names[g] in self.tasks]

    def group_need(self, step: int | None = None) -> tuple[Tensor, bool]:
        """Per-group review need 1 - R (zero for groups not due), and whether any group is due."""
        need = torch.zeros(self.pool.num_groups, dtype=torch.float64)  # type: ignore[union-attr]
        due = torch.zeros(self.pool.num_groups, dtype=torch.bool)  # type: ignore[union-attr]
        for g in self._present():
            need[g] = 1.0 - self.recall(self.names[g], step)
            due[g] = self.due(self.names[g], step)
        if bool(due.any()):
            return torch.where(due, need, torch.zeros_like(need)), True
        return need, False

    def fraction(self, step: int) -> float:
        self._now = int(step)
        need, any_due = self.group_need(step)
        if not any_due:
            return self.min_fraction
        level = min(1.0, float(need.max()) / (1.0 - self.retention))
        return self.min_fraction + (self.max_fraction - self.min_fraction) * level

    def weights(self, step: int) -> Tensor:
        assert self.pool is not None, "call start() first"
        need, _ = self.group_need(max(step, self._now))
        need = need + 1e-6 * torch.tensor([1.0 if int(s) > 0 else 0.0 for s in self.pool.group_sizes()],
                                          dtype=torch.float64)
        counts = torch.zeros(self.pool.num_groups, dtype=torch.float64).index_add_(0, self.pool.groups, self.trainable.double())
        known = torch.zeros(self.pool.num_groups, dtype=torch.bool)
        known[self._present()] = True
        need = torch.where(known & (counts > 0), need, torch.zeros_like(need))
        share = need / need.sum() if float(need.sum()) > 0 else need
        if self.spread > 0:  # the uniform part: every known task's trainable items alike
            items = torch.where(known, counts, torch.zeros_like(counts))
            if float(items.sum()) > 0:
                share = (1.0 - self.spread) * share + self.spread * items / items.sum()
        per_item = torch.where(counts > 0, share / counts.clamp_min(1), torch.zeros_like(share))
        w = (per_item[self.pool.groups] * self.trainable.double()).float()
        return w if float(w.sum()) > 0 else self.trainable.clone()

    def update(self, feedback: Feedback) -> None:
        if feedback.scores is not None:
            self._now = int(feedback.step)
            self.quizzes += 1
            for g, acc in feedback.scores.items():
                if 0 <= int(g) < len(self.names) and self.names[int(g)] in self.tasks:
                    self.quiz_result(self.names[int(g)], float(acc))
            return
        if feedback.groups is None:
            return
        counts = torch.bincount(feedback.groups.long(), minlength=self.pool.num_groups)  # type: ignore[union-attr]
        for g in torch.nonzero(counts).flatten().tolist():
            name = self.names[g]
            if name not in self.tasks:
                continue
            s = self.tasks[name]
            s["dose"] += float(counts[g])
            if s["dose"] >= self.dose:
                s["last"], s["dose"] = self.now(feedback.step), 0.0

    def quiz_result(self, name: str, accuracy: float) -> bool:
        """Apply one quiz outcome to a task's memory model; return whether it passed."""
        s = self.tasks[name]
        s["ref"] = max(s["ref"], accuracy)
        recall = accuracy / s["ref"] if s["ref"] > 0 else 0.0
        s["measured"], s["measured_at"] = min(1.0, recall), self.now()
        passed = recall >= self.pass_at
        if passed:
            s["box"] = float(min(s["box"] + 1, self.boxes - 1))
            s["stability"] *= 1.0 + self.gain
        else:
            s["box"] = 0.0
            # the stability at which the curve predicts the recall just observed after the elapsed time
            elapsed = max(1.0, self.now() - s["last"])
            r = min(max(recall, 0.01), 0.99)
            fitted = FACTOR * elapsed / (r ** (1.0 / DECAY) - 1.0)
            s["stability"] = max(self.min_stability, min(s["stability"] * self.lapse, fitted))
        return passed

    def log(self) -> dict[str, float]:
        if self.pool is None:
            return {}
        out: dict[str, float] = {"review_fraction": self.fraction(self._now)}
        for g in self._present():
            name = self.names[g]
            out[f"interval/{name}"] = self.interval(name)
            out[f"recall/{name}"] = self.recall(name)
        return out
