"""Every schedule: deterministic sampler draws, rank-disjoint shards, checkpoint round trips."""

import io

import pytest
import torch

from lifelong.curriculum import SCHEDULES, ScheduleSampler
from lifelong.curriculum.base import Feedback, PoolView
from lifelong.registry import build

GROUPS = torch.arange(4).repeat_interleave(25)


def make_pool():
    return PoolView(100, GROUPS.clone(), 4, torch.linspace(0, 1, 100).flip(0).clone(), ["a", "b", "c", "d"],
                    {"params": [[0.0], [0.3], [0.6], [1.0]]})


def drive(schedule, sampler, steps, start_step=0):
    """Draw batches, feed synthetic feedback (and quizzes), return the batches."""
    out = []
    for s in range(start_step, start_step + steps):
        frac = schedule.fraction(s) if hasattr(schedule, "fraction") else None
        idx = sampler.next_batch()
        out.append(idx.clone())
        correct = (idx % 3 != 0) if s % 2 else (idx % 2 == 0)
        schedule.update(Feedback(s + 1, idx, (idx.float() / 100) + 0.01 * s, correct, GROUPS[idx]))
        if getattr(schedule, "quiz_every", 0) and (s + 1) % schedule.quiz_every == 0:
            schedule.update(Feedback(s + 1, scores={0: 0.5 + 0.01 * s % 0.5, 1: 0.9, 2: 0.3}))
        del frac
    return out


PARAMS = {"learning-progress": {"episode": 4}, "mastering-rate": {"episode": 4}, "alp-gmm": {"episode": 4, "fit_every": 4},
          "ucb": {"episode": 4}, "spaced-review": {"quiz_every": 5, "quiz_size": 2},
          "sequential": {"threshold": 0.5, "episode": 4}, "self-paced": {"grow_every": 3}}


@pytest.mark.parametrize("name", SCHEDULES.names())
def test_resume_from_state_gives_identical_batches(name):
    params = PARAMS.get(name, {})
    a = build(SCHEDULES, name, params)
    a.start(make_pool(), 40, seed=3)
    sa = ScheduleSampler(a, 8, seed=3)
    drive(a, sa, 12)
    buf = io.BytesIO()
    torch.save({"schedule": a.state_dict(), "sampler": sa.state_dict()}, buf)
    expected = drive(a, sa, 12, start_step=12)

    b = build(SCHEDULES, name, params)
    b.start(make_pool(), 40, seed=3)
    sb = ScheduleSampler(b, 8, seed=3)
    buf.seek(0)
    state = torch.load(buf, weights_only=False)
    b.load_state_dict(state["schedule"])
    sb.load_state_dict(state["sampler"])
    got = drive(b, sb, 12, start_step=12)
    assert all(torch.equal(x, y) for x, y in zip(expected, got)), name
    assert a.log().keys() == b.log().keys()


@pytest.mark.parametrize("name", ["uniform", "linear", "learning-progress", "annealed", "spaced-review"])
def test_same_seed_same_batches_and_ranks_are_disjoint(name):
    def run(seed, rank=0, world=1, batch=8):
        s = build(SCHEDULES, name, PARAMS.get(name, {}))
        s.start(make_pool(), 40, seed=seed)
        return drive(s, ScheduleSampler(s, batch, seed=seed, rank=rank, world_size=world), 6)

    first, again, other = run(1), run(1), run(2)
    assert all(torch.equal(x, y) for x, y in zip(first, again))
    assert any(not torch.equal(x, y) for x, y in zip(first, other))
    # two ranks of batch 4 see the two halves of the one global draw of 8
    r0, r1 = run(1, 0, 2, 4), run(1, 1, 2, 4)
    for g, x, y in zip(first[:1], r0[:1], r1[:1]):
        assert torch.equal(torch.cat([x, y]), g)
        assert not set(x.tolist()) & set(y.tolist())


def test_zero_weight_items_are_never_drawn():
    s = build(SCHEDULES, "linear", {"start": 0.1, "full_at": 1.0})
    s.start(make_pool(), 100, seed=0)
    sampler = ScheduleSampler(s, 16, seed=0)
    allowed = set(torch.nonzero(s.weights(0)).flatten().tolist())
    assert len(allowed) == 10
    assert set(sampler.next_batch().tolist()) <= allowed
