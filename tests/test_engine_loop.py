"""The training loop on small synthetic streams: behaviour, errors, resume."""

from __future__ import annotations

import io

import pytest
import torch

from lifelong.curriculum import SCHEDULES, Feedback, PoolView, Schedule
from lifelong.data import Examples, Stream, Task
from lifelong.engine import Callback, History, Recipe, TrainConfig, seed_everything, train_stream
from lifelong.engine.pool import Pool
from lifelong.errors import DataError, TrainingError
from lifelong.memory.base import Memory
from lifelong.models import build_model


def blobs(n_tasks: int = 3, classes_per_task: int = 2, n: int = 60, dim: int = 8, seed: int = 0,
          scenario: str = "class") -> Stream:
    """Gaussian blobs, one per class; well separated so a linear model learns each task."""
    g = torch.Generator().manual_seed(seed)
    n_classes = n_tasks * classes_per_task
    centres = torch.randn(n_classes, dim, generator=g) * 3
    tasks = []
    for t in range(n_tasks):
        cls = tuple(range(t * classes_per_task, (t + 1) * classes_per_task))

        def make(m):
            y = torch.tensor(cls).repeat_interleave(m)
            x = centres[y] + torch.randn(len(y), dim, generator=g)
            return Examples(x=x, y=y)

        tasks.append(Task(f"t{t}", make(n // classes_per_task), make(20), cls))
    return Stream("blobs", tasks, scenario, n_classes, (dim,))


class Slots(Memory):
    """First-come buffer: enough for loop tests (the real buffers are tested elsewhere)."""

    def select(self, data, ctx=None):
        free = max(0, self.capacity - self.filled)
        k = min(free, data.size)
        return torch.arange(self.filled, self.filled + k), torch.arange(k)


def run(stream, recipe=None, seed=0, **cfg):
    seed_everything(seed)
    model = build_model("mlp", stream, hidden=[32])
    cfg.setdefault("epochs", 4)
    cfg.setdefault("lr", 0.05)
    return train_stream(stream, model, recipe or Recipe(), TrainConfig(seed=seed, **cfg))


def test_matrix_shape_rows_and_baseline():
    s = blobs()
    r = run(s)
    assert len(r.accuracy) == 3 and all(len(row) == 3 for row in r.accuracy)
    assert r.row_tasks == [[0], [0, 1], [0, 1, 2]]
    assert r.baseline == []  # class-incremental: forward transfer is undefined (see the loop)
    assert r.complete and r.task_steps == [8, 8, 8]  # 60 samples / 32 per batch * 4 epochs
    # class-incremental: tasks not yet seen are unreachable (their classes are masked)
    assert r.accuracy[0][1] == 0.0 and r.accuracy[0][2] == 0.0
    # each task is learned right after training on it
    assert all(r.accuracy[i][i] > 0.9 for i in range(3))


def test_same_seed_same_numbers_and_different_seed_differs():
    s = blobs()
    a, b, c = (run(s, seed=k, log_every=1) for k in (3, 3, 4))
    assert a.accuracy == b.accuracy and a.losses == b.losses
    assert a.losses != c.losses


def test_task_incremental_masks_to_task_classes():
    s = blobs(scenario="task")
    r = run(s)
    # with the task identity known, earlier tasks stay far above chance even without replay
    assert min(r.accuracy[-1]) > 0.8


def test_joint_has_one_row_over_all_tasks():
    r = run(blobs(), Recipe(pool="joint"), epochs=10)
    assert len(r.accuracy) == 1 and r.row_tasks == [[0, 1, 2]]
    assert min(r.accuracy[0]) > 0.8


def test_replay_batches_mix_memory_rows():
    seen_tasks = []

    class Spy(Callback):
        pass

    class CountingReplay(type(SCHEDULES.get("replay")(0.5))):
        needs_feedback = True

        def update(self, fb: Feedback) -> None:
            seen_tasks.extend(fb.groups.tolist())

    s = blobs()
    r = run(s, Recipe(memory=Slots(40), review=CountingReplay(0.5)))
    # replayed rows come from earlier tasks only, and review happens from task 2 on
    assert seen_tasks and set(seen_tasks) <= {0, 1}
    assert r.complete


def test_pool_gathers_across_sources_in_order():
    s = blobs(n_tasks=3)
    pool = Pool(list(s.tasks), ("x", "y"), torch.device("cpu"))
    idx = torch.tensor([5, 70, 0, 130, 61, 119])
    got = pool.take(idx)
    allx = torch.cat([t.train["x"] for t in s.tasks])
    assert torch.equal(got["x"], allx[idx])
    assert got["task"].tolist() == [0, 1, 0, 2, 1, 1]


def test_empty_task_is_refused_with_its_name():
    s = blobs()
    s.tasks[1].train = Examples(x=torch.zeros(0, 8), y=torch.zeros(0, dtype=torch.long))
    with pytest.raises(DataError, match="t1.*empty train set"):
        run(s)


def test_labels_outside_declared_classes_are_refused():
    s = blobs()
    s.tasks[0].train = s.tasks[0].train.with_fields(y=torch.full((60,), 5))
    with pytest.raises(DataError, match=r"labels \[5\] outside its declared classes \[0, 1\]"):
        run(s)


def test_mismatched_input_shapes_are_refused():
    s = blobs()
    s.tasks[2].test = Examples(x=torch.zeros(20, 9), y=torch.tensor(s.tasks[2].classes).repeat(10))
    with pytest.raises(DataError, match=r"shape \(9,\).*expects \(8,\)"):
        run(s)


def test_nan_loss_stops_with_task_and_step_and_keeps_results():
    s = blobs()
    s.tasks[1].train = s.tasks[1].train.with_fields(x=torch.full((60, 8), float("nan")))
    saved = []
    seed_everything(0)
    model = build_model("mlp", s, hidden=[16])
    with pytest.raises(TrainingError, match=r"task 't1' \(#1\) at step 0") as info:
        train_stream(s, model, Recipe(), TrainConfig(epochs=1), checkpointer=saved.append)
    partial = info.value.result
    assert len(partial.accuracy) == 1 and not partial.complete  # task 0's row survived
    # the last checkpoint is task 0's end, not the diverged step
    assert saved and saved[-1]["phase"] == 1 and saved[-1]["step"] == 0


class Tape(Callback):
    def __init__(self):
        self.buf = []

    @staticmethod
    def freeze(state):
        b = io.BytesIO()
        torch.save(state, b)
        return b.getvalue()


def _load(blob):
    return torch.load(io.BytesIO(blob), weights_only=False)


@pytest.mark.parametrize("stop_at", [(1, 3), (2, 0)])
def test_resume_mid_task_gives_identical_results(stop_at):
    """Checkpoint at every step, 'kill' at a given (task, step), resume: same matrix."""
    s = blobs()

    def recipe():
        return Recipe(memory=Slots(40), review=SCHEDULES.get("replay")(0.5))

    cfg = dict(epochs=2, checkpoint_every=1, optimizer="adam", lr=0.01)
    states = []
    seed_everything(0)
    model = build_model("mlp", s, hidden=[32])
    full = train_stream(s, model, recipe(), TrainConfig(**cfg),
                        checkpointer=lambda st: states.append(Tape.freeze(st)))
    chosen = next(_load(b) for b in states if (_load(b)["phase"], _load(b)["step"]) == stop_at)
    seed_everything(123)  # a fresh process would not share the first run's RNG
    model2 = build_model("mlp", s, hidden=[32])
    resumed = train_stream(s, model2, recipe(), TrainConfig(**cfg), resume=chosen)
    assert resumed.accuracy == full.accuracy
    assert resumed.losses == full.losses
    assert resumed.complete


def test_callbacks_observe_task_boundaries():
    h = History()
    s = blobs()
    seed_everything(0)
    train_stream(s, build_model("mlp", s, hidden=[8]), Recipe(), TrainConfig(), callbacks=[h])
    assert [e[:2] for e in h.events] == [("task_start", 0), ("task_end", 0), ("task_start", 1),
                                          ("task_end", 1), ("task_start", 2), ("task_end", 2)]


class HardFirst(Schedule):
    """Only the items marked hardest are drawn: proves difficulty reaches the schedule."""

    needs_difficulty = True

    def weights(self, step):
        d = self.pool.difficulty
        return (d == d.max()).float()


def test_schedule_weights_decide_what_is_drawn():
    s = blobs(n_tasks=1)
    diff = torch.zeros(60)
    diff[:7] = 1.0
    s.tasks[0].train = s.tasks[0].train.with_fields(difficulty=diff)
    drawn = []

    class Spy(HardFirst):
        needs_feedback = True

        def update(self, fb):
            drawn.extend(fb.indices.tolist())

    run(s, Recipe(curriculum=Spy()), epochs=1)
    assert drawn and set(drawn) <= set(range(7))


def test_curves_and_loss_logs_follow_their_cadence():
    s = blobs()
    r = run(s, eval_every=2, log_every=1)
    assert {c["step"] for c in r.curves} == set(range(2, 25, 2))
    assert len(r.losses) == 24


def test_pool_view_groups_for_cumulative_pools():
    s = blobs()
    pool = Pool(list(s.tasks[:2]), ("x", "y"), torch.device("cpu"))
    v = pool.view()
    assert isinstance(v, PoolView) and v.num_groups == 2 and v.group_sizes().tolist() == [60, 60]


def test_baseline_for_forward_transfer_outside_the_class_scenario():
    from lifelong.assessment import forward_transfer, summarize

    r = run(blobs(scenario="task"))
    assert len(r.baseline) == 3 and all(0.0 <= b <= 1.0 for b in r.baseline)
    assert summarize(r)["fwt"] == forward_transfer(r.accuracy, r.baseline, r.row_tasks)
    assert summarize(run(blobs()))["fwt"] is None  # class scenario


def test_review_pools_know_how_long_ago_each_task_was_studied():
    from lifelong.engine.loop import _task_ages
    from lifelong.engine.result import RunResult

    r = RunResult(task_names=list("abcd"), task_steps=[100, 100, 100])
    assert _task_ages(r, [[0], [1], [2], [3]], 4) == [200.0, 100.0, 0.0, float("inf")]
    assert _task_ages(r, [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]], 4) == [0.0, 0.0, 0.0, float("inf")]


def test_schedule_log_has_one_row_per_logged_step():
    r = run(blobs(), Recipe(memory=Slots(40), review=SCHEDULES.get("replay")(0.5)), log_every=4)
    keys = [(row["step"], row["task"]) for row in r.schedule_log]
    assert len(keys) == len(set(keys))
