"""Users' transformers.TrainerCallbacks on lifelong's loop (TrainerCallbackAdapter): the events, one
increasing step axis across tasks, the accuracy row at each task end, and TensorBoard's own callback
writing one run whose scalars hold the accuracy matrix."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from lifelong.assessment import average_accuracy, forgetting  # noqa: E402
from lifelong.data.benchmarks import BENCHMARKS  # noqa: E402
from lifelong.engine import TrainConfig, train_stream  # noqa: E402
from lifelong.errors import ConfigError  # noqa: E402
from lifelong.hf.callbacks import TrainerCallbackAdapter, TrainingStopped  # noqa: E402
from lifelong.hf.models import tiny_causal_lm  # noqa: E402

STEPS, LOG = 6, 2


class Recorder(transformers.TrainerCallback):
    """Records every event with the step, epoch and the arguments it was given."""

    def __init__(self):
        self.events: list[tuple] = []
        self.args = None

    def _rec(self, name, args, state, **kw):
        self.args = args
        self.events.append((name, state.global_step, state.epoch, kw.get("logs"), kw.get("metrics"),
                            kw.get("model") is not None))

    def on_init_end(self, args, state, control, **kw):
        self._rec("init_end", args, state, **kw)

    def on_train_begin(self, args, state, control, **kw):
        self._rec("train_begin", args, state, **kw)

    def on_epoch_begin(self, args, state, control, **kw):
        self._rec("epoch_begin", args, state, **kw)

    def on_step_begin(self, args, state, control, **kw):
        self._rec("step_begin", args, state, **kw)

    def on_step_end(self, args, state, control, **kw):
        self._rec("step_end", args, state, **kw)

    def on_log(self, args, state, control, logs=None, **kw):
        self._rec("log", args, state, logs=dict(logs), **kw)

    def on_evaluate(self, args, state, control, metrics=None, **kw):
        self._rec("evaluate", args, state, metrics=dict(metrics), **kw)

    def on_epoch_end(self, args, state, control, **kw):
        self._rec("epoch_end", args, state, **kw)

    def on_train_end(self, args, state, control, **kw):
        self._rec("train_end", args, state, **kw)

    def names(self, name):
        return [e for e in self.events if e[0] == name]


@pytest.fixture(scope="module")
def stream():
    return BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=32, test_size=12, max_digits=1,
                                              skills=["add", "sub", "mul"], general_size=0)


def _cfg(**kw):
    base = dict(steps=STEPS, batch_size=8, optimizer="adamw", lr=5e-3, device="cpu", seed=0, eval_batch_size=32,
                log_every=LOG)
    base.update(kw)
    return TrainConfig(**base)


def _model(stream):
    return tiny_causal_lm(stream, hidden=16, heads=2, layers=1, seed=0)


def test_events_follow_the_trainer_and_one_step_axis(stream, tmp_path):
    rec = Recorder()
    result = train_stream(stream, _model(stream), config=_cfg(),
                          callbacks=[TrainerCallbackAdapter([rec], output_dir=tmp_path)])
    n = len(stream)
    assert result.complete and len(result.accuracy) == n
    kinds = [e[0] for e in rec.events]
    assert kinds[:3] == ["init_end", "train_begin", "epoch_begin"] and kinds[-1] == "train_end"
    # a real TrainingArguments from the TrainConfig
    assert isinstance(rec.args, transformers.TrainingArguments)
    assert rec.args.output_dir == str(tmp_path) and rec.args.learning_rate == 5e-3
    assert rec.args.per_device_train_batch_size == 8
    # every optimiser step: begin before, end after; one global axis 1..n*STEPS over all tasks
    assert [e[1] for e in rec.names("step_end")] == list(range(1, n * STEPS + 1))
    assert [e[1] for e in rec.names("step_begin")] == list(range(0, n * STEPS))
    assert all(e[5] for e in rec.names("step_end"))  # the model is passed
    for a, b in zip(kinds, kinds[1:]):
        if a == "step_begin":
            assert b == "step_end"
    # epoch = task progress
    ends = rec.names("step_end")
    assert ends[STEPS // 2 - 1][2] == pytest.approx(0.5) and ends[-1][2] == pytest.approx(float(n))
    assert [e[2] for e in rec.names("epoch_begin")] == [0.0, 1.0, 2.0]
    # loss logs every LOG steps with the learning rate and the task
    train_logs = [e for e in rec.names("log") if "loss" in e[3]]
    assert [e[1] for e in train_logs] == list(range(LOG, n * STEPS + 1, LOG))
    assert all(set(e[3]) == {"loss", "learning_rate", "task", "epoch"} for e in train_logs)
    assert [e[3]["task"] for e in train_logs] == [i // (STEPS // LOG) for i in range(len(train_logs))]
    assert all(e[3]["learning_rate"] == pytest.approx(5e-3) for e in train_logs)
    assert [e[3]["loss"] for e in train_logs] == pytest.approx(
        [r["loss"] for r in result.losses], rel=1e-6)
    # the accuracy row at each task end, logged then evaluated, at the task's last global step
    evals = rec.names("evaluate")
    assert [e[1] for e in evals] == [STEPS * (i + 1) for i in range(n)]
    names = stream.task_names
    for i, e in enumerate(evals):
        m = e[4]
        assert [m[f"eval_acc/{t}"] for t in names] == pytest.approx(result.accuracy[i])
        assert m["eval_average_accuracy"] == pytest.approx(average_accuracy(result.accuracy[: i + 1]))
        if i == 0:
            assert "eval_forgetting" not in m
        else:
            assert m["eval_forgetting"] == pytest.approx(forgetting(result.accuracy[: i + 1]))
    eval_logs = [e for e in rec.names("log") if "eval_acc/" + names[0] in e[3]]
    assert len(eval_logs) == n and kinds.index("evaluate") == kinds.index("log", kinds.index("epoch_end")) + 1


def test_tensorboard_callback_writes_one_run_with_the_accuracy_matrix(stream, tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from transformers.integrations import TensorBoardCallback

    logdir = tmp_path / "tb"
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(logdir))
    result = train_stream(stream, _model(stream), config=_cfg(),
                          callbacks=[TrainerCallbackAdapter([TensorBoardCallback()], output_dir=tmp_path / "out")])
    files = list(logdir.glob("events.out.tfevents.*"))
    assert len(files) == 1  # one run for the whole stream, not one per task
    acc = EventAccumulator(str(logdir))
    acc.Reload()
    tags = acc.Tags()["scalars"]
    n = len(stream)
    for tag in tags:  # one strictly increasing step axis, never restarting at a task
        points = sorted({(ev.step, ev.value) for ev in acc.Scalars(tag)})
        steps = [step for step, _ in points]
        # (train/epoch is logged with the loss and again with the task-end evaluation, as the Trainer
        # does: the same value at the same step, not a second axis)
        assert steps == sorted(set(steps)) and [ev.step for ev in acc.Scalars(tag)] == sorted(
            ev.step for ev in acc.Scalars(tag)), tag
    loss_steps = [ev.step for ev in acc.Scalars("train/loss")]
    assert loss_steps == list(range(LOG, n * STEPS + 1, LOG))
    matrix = [[None] * n for _ in range(n)]
    for j, name in enumerate(stream.task_names):
        events = acc.Scalars(f"eval/acc/{name}")
        assert [ev.step for ev in events] == [STEPS * (i + 1) for i in range(n)]
        for i, ev in enumerate(events):
            matrix[i][j] = ev.value
    assert [v for row in matrix for v in row] == pytest.approx([v for row in result.accuracy for v in row], abs=1e-6)
    assert len(acc.Scalars("eval/forgetting")) == n - 1
    assert "args" in "".join(acc.Tags()["tensors"])  # TensorBoardCallback's own on_train_begin ran


def test_report_to_builds_the_integration_callbacks(tmp_path):
    pytest.importorskip("tensorboard")
    from transformers.integrations import TensorBoardCallback

    adapter = TrainerCallbackAdapter(report_to="tensorboard", output_dir=tmp_path)
    assert [type(c) for c in adapter.callbacks] == [TensorBoardCallback]


def test_should_training_stop_ends_the_run_keeping_results(stream, tmp_path):
    class StopAt(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == STEPS + 2:
                control.should_training_stop = True

    rec = Recorder()
    with pytest.raises(TrainingStopped, match="should_training_stop") as info:
        train_stream(stream, _model(stream), config=_cfg(),
                     callbacks=[TrainerCallbackAdapter([StopAt(), rec], output_dir=tmp_path)])
    result = info.value.result
    assert not result.complete and len(result.accuracy) == 1 and result.task_steps == [STEPS]
    assert any("should_training_stop" in note for note in result.notes)
    assert rec.events[-1][0] == "train_end" and rec.events[-1][1] == STEPS + 2


def test_stop_at_a_task_end_waits_for_the_task_end_checkpoint(stream, tmp_path):
    class StopAfterFirstTask(transformers.TrainerCallback):
        def on_evaluate(self, args, state, control, metrics=None, **kw):
            control.should_training_stop = True

    saved = []
    with pytest.raises(TrainingStopped) as info:
        train_stream(stream, _model(stream), config=_cfg(), checkpointer=lambda s: saved.append(s["phase"]),
                     callbacks=[TrainerCallbackAdapter([StopAfterFirstTask()], output_dir=tmp_path)])
    assert info.value.result.task_steps == [STEPS] and len(saved) == 1  # the first task's end was checkpointed


def test_unsupported_requests_warn_once(stream, tmp_path):
    class WantsSave(transformers.TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            control.should_save = True

    with pytest.warns(UserWarning, match="should_save.*checkpoint_every") as record:
        train_stream(stream, _model(stream), config=_cfg(steps=2),
                     callbacks=[TrainerCallbackAdapter([WantsSave()], output_dir=tmp_path)])
    assert sum("should_save" in str(w.message) for w in record) == 1


def test_user_args_and_bad_callbacks(stream, tmp_path):
    args = transformers.TrainingArguments(output_dir=str(tmp_path), logging_steps=3, report_to=[])
    rec = Recorder()
    train_stream(stream, _model(stream), config=_cfg(), callbacks=[TrainerCallbackAdapter([rec], args=args)])
    assert rec.args is args
    assert [e[1] for e in rec.names("log") if "loss" in e[3]] == list(range(3, len(stream) * STEPS + 1, 3))
    with pytest.raises(ConfigError, match="TrainerCallback"):
        TrainerCallbackAdapter([object()])
    with pytest.raises(ConfigError, match="TrainingArguments"):
        TrainerCallbackAdapter([rec], args={"output_dir": "x"})


def test_through_continual_trainer_one_axis_too(stream, tmp_path):
    """Passed to ContinualTrainer(callbacks=...), the adapter sees the run's global step, not the
    per-task step the wrapped Trainer's own state restarts from at each task."""
    from lifelong.hf.trainer import ContinualTrainer

    rec = Recorder()
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "t"), per_device_train_batch_size=8, learning_rate=5e-3, max_steps=STEPS,
        report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no", disable_tqdm=True, seed=0)
    trainer = transformers.Trainer(model=_model(stream), args=args)
    adapter = TrainerCallbackAdapter([rec], output_dir=tmp_path / "cb", log_every=LOG)
    result = ContinualTrainer(trainer, stream, seed=0, eval_batch_size=32, callbacks=[adapter]).fit()
    n = len(stream)
    assert [e[1] for e in rec.names("step_end")] == list(range(1, n * STEPS + 1))
    assert [e[1] for e in rec.names("evaluate")] == [STEPS * (i + 1) for i in range(n)]
    assert [e[4][f"eval_acc/{stream.task_names[-1]}"] for e in rec.names("evaluate")] == pytest.approx(
        [row[-1] for row in result.accuracy])


def test_a_trainers_report_to_gets_one_run_with_the_matrix(stream, tmp_path, monkeypatch):
    """report_to=["tensorboard"] on the wrapped Trainer: one event file for the 3-task stream, one step
    axis, the accuracy matrix logged at each task end (not one run per task restarting at step 1)."""
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from lifelong.hf.trainer import ContinualTrainer

    logdir = tmp_path / "tb"
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(logdir))
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "t"), per_device_train_batch_size=8, learning_rate=5e-3, max_steps=STEPS,
        report_to=["tensorboard"], use_cpu=True, logging_strategy="steps", logging_steps=LOG, save_strategy="no",
        disable_tqdm=True, seed=0)
    trainer = transformers.Trainer(model=_model(stream), args=args)
    result = ContinualTrainer(trainer, stream, seed=0, eval_batch_size=32).fit()
    files = list(logdir.rglob("events.out.tfevents.*"))
    assert len(files) == 1, files
    acc = EventAccumulator(str(files[0].parent))
    acc.Reload()
    loss_steps = [ev.step for ev in acc.Scalars("train/loss")]
    assert loss_steps == sorted(loss_steps) and loss_steps[-1] > STEPS  # past the first task: one axis
    last = stream.task_names[-1]
    assert [ev.value for ev in acc.Scalars(f"eval/acc/{last}")] == pytest.approx([row[-1] for row in result.accuracy])
