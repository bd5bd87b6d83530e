"""Users' own ``transformers.TrainerCallback``s on lifelong's loop.

People who train with Hugging Face's ``Trainer`` already have callbacks: a
TensorBoard/MLflow/W&B reporter, early stopping, a custom logger.
:class:`TrainerCallbackAdapter` is a lifelong :class:`~lifelong.engine.callbacks.Callback`
that forwards the loop's events to them, so they work unchanged with
``train_stream`` (and ``lifelong run``)::

    from transformers.integrations import TensorBoardCallback

    hf = TrainerCallbackAdapter([TensorBoardCallback(), MyCallback()], output_dir="runs/tb")
    train_stream(stream, model, recipe, cfg, callbacks=[hf])

What the callbacks see (a real ``TrainingArguments`` and ``TrainerState``):

* ``state.global_step`` is the run's global step: one increasing axis over all
  tasks (it never restarts at a task); ``state.epoch`` is task progress as a
  float (``2.5`` = half-way through the third task); ``state.log_history``
  holds every log, as the Trainer keeps it;
* ``on_init_end`` and ``on_train_begin`` when the stream starts;
  ``on_epoch_begin`` / ``on_epoch_end`` around each task (a task is the
  loop's "epoch"); ``on_step_begin`` before and ``on_step_end`` after every
  optimiser step;
* ``on_log`` with ``{"loss", "learning_rate", "task", "epoch"}`` every
  ``log_every`` steps (default ``train.log_every``, or ``args.logging_steps``
  when ``args`` are given), and whenever a callback sets ``control.should_log``;
* at each task end, ``on_log`` then ``on_evaluate`` (as ``Trainer.evaluate``
  does) with the accuracy row: ``eval_acc/<task name>`` for every task,
  ``eval_average_accuracy`` and ``eval_forgetting`` (from
  :mod:`lifelong.assessment`, over the tasks learned so far);
* ``on_train_end`` when the stream ends (also when it stops early), so
  reporters close their writers.

Not sent, because the loop has no such moment: ``on_substep_end``,
``on_pre_optimizer_step``, ``on_optimizer_step``, ``on_save``, ``on_predict``,
``on_prediction_step``, ``on_push_begin``.

``TrainerControl`` requests: ``should_log`` logs now. ``should_training_stop``
ends the run: when the engine's :class:`~lifelong.engine.context.Context` has a
``stop`` field the adapter sets it to the reason and the loop stops at the
next step boundary, after a checkpoint; otherwise the adapter raises
:class:`TrainingStopped` (a ``KeyboardInterrupt``, which the loop and
``lifelong run`` already treat as "stop, keep the results so far, resumable"):
at once when set during a step, and at the next task's start when set at a
task end (so the finished task's checkpoint is written first).
``should_evaluate``, ``should_save`` and ``should_epoch_stop`` are not acted on
(evaluation is ``train.eval_every``, checkpoints ``train.checkpoint_every``):
the first request of each warns once, never silently.

The per-step cost is a few attribute writes and the callbacks' own
``on_step_begin``/``on_step_end``.
"""

from __future__ import annotations

import math
import os
import tempfile
import warnings
from typing import Any, Sequence

from lifelong.assessment import average_accuracy, forgetting
from lifelong.engine.callbacks import Callback
from lifelong.errors import ConfigError, RunStopped, require

#: ``TrainerControl`` flags the Trainer's ``CallbackHandler`` clears before an event
_RESETS = {"on_train_begin": ("should_training_stop",), "on_epoch_begin": ("should_epoch_stop",),
           "on_step_begin": ("should_log", "should_evaluate", "should_save"), "on_log": ("should_log",),
           "on_evaluate": ("should_evaluate",), "on_save": ("should_save",)}

#: requests the loop does not act on, with what to use instead
_NOT_ACTED_ON = {
    "should_evaluate": "the loop assesses every task at each task end and every train.eval_every steps",
    "should_save": "the loop checkpoints at each task end and every train.checkpoint_every steps",
    "should_epoch_stop": "a task's length is train.steps or train.epochs",
}


#: a ``TrainerCallback`` set ``control.should_training_stop``: the run stops, keeping its results
TrainingStopped = RunStopped


class TrainerCallbackAdapter(Callback):
    """Forward lifelong's loop events to ``transformers.TrainerCallback``s.

    ``callbacks``: TrainerCallback instances (or classes, instantiated without
    arguments). ``report_to``: integration names as in ``TrainingArguments``
    (``"tensorboard"``, ``"mlflow"``, ``"wandb"``...), whose callbacks are added
    as the Trainer would. ``args``: the ``TrainingArguments`` the callbacks
    see; by default built from the run's ``TrainConfig`` (learning rate,
    per-device batch, accumulation, seed, gradient clipping, logging steps)
    with ``output_dir`` (default: a new temporary folder; TensorBoard writes
    under ``output_dir/runs/...`` unless ``TENSORBOARD_LOGGING_DIR`` is set).
    ``log_every``: steps between loss logs (0 = none). ``processing_class``:
    the tokenizer handed to the callbacks (the Trainer's ``processing_class``).
    """

    def __init__(self, callbacks: Sequence[Any] = (), *, report_to: str | Sequence[str] | None = None,
                 args: Any = None, output_dir: str | os.PathLike | None = None, log_every: int | None = None,
                 processing_class: Any = None):
        transformers = require("transformers", "llm", "TrainerCallbackAdapter")
        self._tf = transformers
        cbs = [cb() if isinstance(cb, type) else cb for cb in callbacks]
        if report_to:
            from transformers.integrations import get_reporting_integration_callbacks

            names = [report_to] if isinstance(report_to, str) else list(report_to)
            cbs += [cls() for cls in get_reporting_integration_callbacks(names)]
        bad = [type(cb).__name__ for cb in cbs if not isinstance(cb, transformers.TrainerCallback)]
        if bad:
            raise ConfigError(f"TrainerCallbackAdapter takes transformers.TrainerCallback instances; got {bad}. "
                              "Pass lifelong callbacks to train_stream(callbacks=...) directly.")
        if log_every is not None and int(log_every) < 0:
            raise ConfigError(f"TrainerCallbackAdapter: log_every must be >= 0; got {log_every}.")
        if args is not None and not isinstance(args, transformers.TrainingArguments):
            raise ConfigError(f"TrainerCallbackAdapter: args must be a transformers.TrainingArguments; "
                              f"got {type(args).__name__}.")
        self.callbacks = cbs
        self.user_args, self.output_dir, self.processing_class = args, output_dir, processing_class
        self._log_every = log_every
        self.log_every = 0
        self.args: Any = None
        self.state: Any = None
        self.control: Any = None
        self.stop_reason: str | None = None
        self._ctx: Any = None
        self._result: Any = None
        self._pending_stop = False
        self._warned: set[str] = set()

    # -- what the callbacks see -------------------------------------------------------
    def _make_args(self, ctx) -> Any:
        cfg = ctx.config
        out = str(self.output_dir) if self.output_dir is not None else tempfile.mkdtemp(prefix="lifelong-hf-cb-")
        world = max(1, _world_size())
        extra: dict[str, Any] = {}
        try:
            from accelerate.state import PartialState
        except ImportError:  # pragma: no cover - transformers' Trainer needs accelerate
            PartialState = None
        if PartialState is not None and PartialState._shared_state:
            # a live accelerate state (e.g. ContinualTrainer's Trainer, or accelerate launch) is reused: new
            # TrainingArguments would otherwise reset it under the running Trainer
            extra["accelerator_config"] = {"use_configured_state": True}
        return self._tf.TrainingArguments(
            output_dir=out, learning_rate=float(cfg.lr), per_device_train_batch_size=max(1, cfg.batch_size // world),
            gradient_accumulation_steps=int(cfg.gradient_accumulation_steps), seed=int(cfg.seed),
            max_steps=int(cfg.steps) if cfg.steps > 0 else -1, num_train_epochs=float(cfg.epochs),
            weight_decay=float(cfg.weight_decay), max_grad_norm=float(cfg.clip_norm),
            warmup_steps=int(cfg.warmup_steps), logging_steps=int(cfg.log_every) or 500,
            per_device_eval_batch_size=int(cfg.eval_batch_size), report_to=[], save_strategy="no",
            use_cpu=ctx.device.type == "cpu", disable_tqdm=True, **extra)

    def _estimate_max_steps(self, ctx) -> int:
        """Steps of the run: those taken, the current task's plan, and an estimate for the tasks after it
        (exact for a sequential stream with ``train.steps``)."""
        cfg, stream = ctx.config, ctx.stream
        done = ctx.global_step - ctx.step
        left = 0
        for task in stream.tasks[ctx.task_index + 1:]:
            left += cfg.steps if cfg.steps > 0 else math.ceil(
                cfg.epochs * math.ceil(task.train.size / cfg.batch_size) / cfg.gradient_accumulation_steps)
        return int(done + max(ctx.total_steps, ctx.step) + left)

    def _call(self, event: str, **kwargs: Any) -> Any:
        control = self.control
        for flag in _RESETS.get(event, ()):
            setattr(control, flag, False)
        ctx = self._ctx
        for cb in self.callbacks:
            out = getattr(cb, event)(self.args, self.state, control, model=ctx.model,
                                     processing_class=self.processing_class, optimizer=ctx.optimizer,
                                     lr_scheduler=None, train_dataloader=None, eval_dataloader=None, **kwargs)
            if out is not None:  # a callback may return a new control (as in the Trainer)
                control = out
        self.control = control
        return control

    def _log(self, logs: dict[str, Any]) -> None:
        """As ``Trainer.log``: add the epoch, keep it in ``log_history``, send ``on_log``."""
        logs = dict(logs)
        logs["epoch"] = self.state.epoch
        self.state.log_history.append({**logs, "step": self.state.global_step})
        self._call("on_log", logs=logs)

    def metrics(self, row: list[float]) -> dict[str, float]:
        """The accuracy row as evaluation metrics: per task, average accuracy and forgetting so far."""
        names = self._ctx.stream.task_names
        out = {f"eval_acc/{names[j]}": float(a) for j, a in enumerate(row) if a is not None}
        acc = self._result.accuracy if self._result is not None else [row]
        row_tasks = self._result.row_tasks if self._result is not None and self._result.row_tasks else None
        avg = average_accuracy(acc, row_tasks)
        if avg is not None and math.isfinite(avg):
            out["eval_average_accuracy"] = float(avg)
        fgt = forgetting(acc, row_tasks)
        if fgt is not None and math.isfinite(fgt):
            out["eval_forgetting"] = float(fgt)
        return out

    # -- control requests -------------------------------------------------------------
    def _requests(self, where: str) -> None:
        for flag, instead in _NOT_ACTED_ON.items():
            if getattr(self.control, flag, False) and flag not in self._warned:
                self._warned.add(flag)
                warnings.warn(f"a TrainerCallback set control.{flag} ({where}); lifelong's loop does not act on it: "
                              f"{instead}.", stacklevel=3)
        if self.control.should_training_stop and self.stop_reason is None:
            names = ", ".join(type(cb).__name__ for cb in self.callbacks)
            self.stop_reason = (f"a TrainerCallback ({names}) set control.should_training_stop in {where} at run step "
                                f"{self._ctx.global_step}")
            if hasattr(self._ctx, "stop"):  # the engine stops at the next step boundary, after a checkpoint
                self._ctx.stop = self.stop_reason
            elif where == "on_step_end":
                raise TrainingStopped(self.stop_reason)
            else:
                self._pending_stop = True  # after the task-end checkpoint: at the next task's start

    # -- the loop's events ------------------------------------------------------------
    def on_stream_start(self, ctx, result) -> None:
        tf = self._tf
        self._ctx, self._result = ctx, result
        self.args = self.user_args if self.user_args is not None else self._make_args(ctx)
        if self._log_every is not None:
            self.log_every = int(self._log_every)
        else:
            self.log_every = int(self.args.logging_steps) if self.user_args is not None else int(ctx.config.log_every)
        rank, local = _ranks()
        self.state = tf.TrainerState(is_local_process_zero=local == 0, is_world_process_zero=rank == 0)
        s = self.state
        s.global_step = int(ctx.global_step)
        s.epoch = float(len(result.task_steps))
        s.max_steps = self._estimate_max_steps(ctx)
        s.num_train_epochs = len(ctx.stream)
        s.logging_steps = self.log_every
        s.train_batch_size = int(ctx.config.batch_size)
        self.control = tf.TrainerControl()
        self.stop_reason, self._pending_stop, self._warned = None, False, set()
        self._call("on_init_end")
        self._call("on_train_begin")

    def on_task_start(self, ctx) -> None:
        if self._pending_stop:
            self._pending_stop = False
            raise TrainingStopped(self.stop_reason or "a TrainerCallback asked training to stop")
        s = self.state
        s.global_step = int(ctx.global_step)
        s.epoch = ctx.task_index + ctx.step / max(ctx.total_steps, 1)
        s.max_steps = self._estimate_max_steps(ctx)
        self._call("on_epoch_begin")
        if ctx.step < ctx.total_steps:
            self._call("on_step_begin")

    def on_step_end(self, ctx, loss: float) -> None:
        s = self.state
        s.global_step = int(ctx.global_step)
        s.epoch = ctx.task_index + ctx.step / max(ctx.total_steps, 1)
        control = self._call("on_step_end")
        if control.should_log or (self.log_every and ctx.step % self.log_every == 0):
            opt = ctx.optimizer
            lr = float(opt.param_groups[0]["lr"]) if opt is not None else float(ctx.config.lr)
            self._log({"loss": float(loss), "learning_rate": lr, "task": ctx.task_index})
        self._requests("on_step_end")
        if ctx.step < ctx.total_steps:
            self._call("on_step_begin")

    def on_task_end(self, ctx, row: list[float]) -> None:
        s = self.state
        s.global_step = int(ctx.global_step)
        s.epoch = float(ctx.task_index + 1)
        self._call("on_epoch_end")
        if row:
            metrics = self.metrics(row)
            self._log(metrics)
            self._call("on_evaluate", metrics=metrics)
        self._requests("on_task_end")

    def on_stream_end(self, ctx, result) -> None:
        if self.state is None:
            return
        self.state.global_step = int(ctx.global_step)
        self._pending_stop = False
        if self.stop_reason is not None and self.stop_reason not in result.notes:
            result.notes.append(self.stop_reason)
        self._call("on_train_end")


def _ranks() -> tuple[int, int]:
    import torch.distributed as dist

    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else int(os.environ.get("RANK", 0))
    return rank, int(os.environ.get("LOCAL_RANK", 0))


def _world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


__all__ = ["TrainerCallbackAdapter", "TrainingStopped"]
