"""Schedules driven by the real training loop: difficulty scorers, teachers, quizzes and logs."""

import torch

from lifelong.curriculum import SCHEDULES
from lifelong.curriculum.scorers import SCORERS
from lifelong.data.examples import Examples
from lifelong.data.task import Stream, Task
from lifelong.engine import Recipe, TrainConfig, train_stream
from lifelong.memory import BUFFERS
from lifelong.models import build_model
from lifelong.registry import build


def tiny_stream(tasks=3, n=64):
    g = torch.Generator().manual_seed(0)
    out = []
    for k in range(tasks):
        x = torch.randn(n, 6, generator=g)
        y = (x[:, k] > 0).long() + 2 * k
        out.append(Task(f"t{k}", Examples(x=x, y=y, difficulty=x[:, k].abs().neg()),
                        Examples(x=x[:16], y=y[:16]), (2 * k, 2 * k + 1), {"params": [float(k)]}))
    return Stream("tiny", out, "class", 2 * tasks, (6,))


def cfg(**kw):
    return TrainConfig(steps=30, batch_size=8, optimizer="adam", lr=1e-2, log_every=5, device="cpu", **kw)


def test_paced_curriculum_with_a_refreshed_loss_scorer():
    s = tiny_stream()
    result = train_stream(s, build_model("mlp", s, hidden=(16,)),
                          Recipe(curriculum=build(SCHEDULES, "linear", {"start": 0.25, "full_at": 0.5}),
                                 scorer=build(SCORERS, "loss", {"refresh_every": 10})), cfg())
    fr = [row["available_fraction"] for row in result.schedule_log if row["task"] == 0]
    assert fr[0] < fr[-1] == 1.0
    assert len(result.accuracy) == 3


def test_teacher_over_a_cumulative_pool_logs_group_probabilities():
    s = tiny_stream()
    result = train_stream(s, build_model("mlp", s, hidden=(16,)),
                          Recipe(curriculum=build(SCHEDULES, "alp-gmm", {"episode": 4, "fit_every": 4}),
                                 pool="cumulative"), cfg())
    last = [row for row in result.schedule_log if row["task"] == 2][-1]
    assert abs(sum(last[f"p/t{k}"] for k in range(3)) - 1.0) < 1e-5


def test_spaced_review_gets_quizzes_from_the_loop():
    s = tiny_stream()
    review = build(SCHEDULES, "spaced-review", {"quiz_every": 5, "quiz_size": 2, "base_interval": 10})
    memory = build(BUFFERS, "reservoir", {"capacity": 40, "seed": 0})
    result = train_stream(s, build_model("mlp", s, hidden=(16,)), Recipe(memory=memory, review=review), cfg())
    assert review.quizzes == 12                    # tasks 1 and 2: steps 5, 10, ..., 30
    assert review.tasks["t0"]["stability"] != 200.0   # quiz results moved the memory model
    rows = [row for row in result.schedule_log if "review/interval/t0" in row]
    assert rows and all(0 <= row["review/recall/t0"] <= 1 for row in rows)
