"""The training loop: one plain function, readable top to bottom.

The teaching logic (a phase's set-up, its step, its wrap-up) lives in
:mod:`lifelong.engine.phase`, shared with the ``transformers.Trainer``
driver; checkpoint capture and restore live in :mod:`lifelong.engine.checkpoint`.
This driver only runs the optimiser step itself::

    for each phase:  set up  ->  [draw, loss + penalties, backward, hooks, step, feedback]*  ->  wrap up

Ctrl-C or SIGTERM asks the loop to stop at the next step boundary, after a
checkpoint. Callbacks only observe.
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable, Iterable

import torch
from torch import nn

from lifelong.data.task import Stream
from lifelong.engine import checkpoint as ckpt
from lifelong.engine.callbacks import Callback
from lifelong.engine.config import Recipe, TrainConfig
from lifelong.engine.distributed import mean_over_ranks
from lifelong.engine.phase import (Phase, Teacher, evaluate_tasks, make_objective, make_optimizer,  # noqa: F401
                                   resolve_device, run_quiz, seed_everything, task_ages)
from lifelong.engine.result import RunResult
from lifelong.errors import LifelongError, RunStopped

Checkpointer = Callable[[dict[str, Any]], None]
_task_ages = task_ages  # the name tests and older code import


class StopFlag:
    """Ctrl-C or SIGTERM asks the loop to stop at the next step boundary (after saving);
    a second Ctrl-C interrupts at once."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "StopFlag":
        if threading.current_thread() is threading.main_thread():
            def handler(signum, frame):  # noqa: ARG001
                if self.requested and signum == signal.SIGINT:
                    raise KeyboardInterrupt
                self.requested = True

            for sig in self.SIGNALS:
                self._old[sig] = signal.getsignal(sig)
                signal.signal(sig, handler)
        return self

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train_stream(
    stream: Stream,
    model: nn.Module,
    recipe: Recipe | None = None,
    config: TrainConfig | None = None,
    callbacks: Iterable[Callback] = (),
    objective: Any = None,
    checkpointer: Checkpointer | None = None,
    resume: dict[str, Any] | None = None,
) -> RunResult:
    """Teach ``model`` the tasks of ``stream`` in order; return the accuracy matrix and logs.

    ``checkpointer(state)`` is called with a complete, resumable state at each
    task end, every ``config.checkpoint_every`` steps and on Ctrl-C/SIGTERM (not at a
    NaN loss, whose weights may have diverged); pass it back as ``resume``.
    A :class:`~lifelong.errors.LifelongError` raised during training carries
    the results so far in its ``result`` attribute.
    """
    teacher = Teacher(stream, model, recipe, config, objective, callbacks)
    cfg = teacher.cfg

    def save(ph: Phase, phase_done: bool = False) -> None:
        if checkpointer is not None:
            teacher.pause(ph)
            teacher.check_weights(ph)
            checkpointer(ckpt.capture(teacher, ph, phase_done))
            teacher.resume_clock(ph)

    teacher.start_run(resume)
    accumulate = cfg.gradient_accumulation_steps
    with StopFlag() as stop:
        try:
            for index in range(teacher.first_phase, len(teacher.phases)):
                ph = teacher.start_phase(index)
                while teacher.ctx.step < ph.total:
                    ph.optimizer.zero_grad(set_to_none=True)
                    value = 0.0
                    for _ in range(accumulate):  # batches whose gradients add up to one step
                        batch = teacher.draw(ph)
                        with teacher.autocast():
                            step = teacher.loss(ph, batch)
                        loss = mean_over_ranks(float(step.loss.detach()))
                        teacher.check_finite(ph, loss)
                        _backward(teacher, step.loss / accumulate if accumulate > 1 else step.loss)
                        teacher.feedback(ph, step, batch)
                        value += loss / accumulate
                    _optimise(teacher, ph, batch)
                    teacher.after_step(ph, value)
                    if stop.requested or teacher.ctx.stop:
                        save(ph)
                        raise RunStopped(teacher.ctx.stop) if teacher.ctx.stop else KeyboardInterrupt
                    if cfg.checkpoint_every and teacher.ctx.step % cfg.checkpoint_every == 0 \
                            and teacher.ctx.step < ph.total:
                        save(ph)
                teacher.end_phase(ph)
                save(ph, phase_done=True)
                if teacher.ctx.stop and index + 1 < len(teacher.phases):
                    raise RunStopped(teacher.ctx.stop)
        except (LifelongError, KeyboardInterrupt) as exc:
            exc.result = teacher.finish(exc)  # type: ignore[attr-defined]
            raise
    return teacher.finish()


def _backward(teacher: Teacher, loss: torch.Tensor) -> None:
    if teacher.scaler is not None:
        teacher.scaler.scale(loss).backward()
    else:
        loss.backward()


def _optimise(teacher: Teacher, ph: Phase, batch) -> None:
    """Gradient hooks, clipping, the optimiser step (with the AMP scaler on CUDA fp16), the LR schedule."""
    optimizer, scaler, cfg = ph.optimizer, teacher.scaler, teacher.cfg
    if scaler is not None:
        scaler.unscale_(optimizer)
    teacher.after_backward(batch)
    if cfg.clip_norm > 0:
        torch.nn.utils.clip_grad_norm_(teacher.model.parameters(), cfg.clip_norm)
    if scaler is not None:
        scaler.step(optimizer)
        scaler.update()
    else:
        optimizer.step()
    if ph.lr_scheduler is not None:
        ph.lr_scheduler.step()


__all__ = ["train_stream", "StopFlag", "seed_everything", "resolve_device", "make_objective", "make_optimizer",
           "evaluate_tasks", "run_quiz"]
