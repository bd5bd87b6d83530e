"""Callbacks observe the loop: progress, logging, tracking. They never change
the learner. Only callbacks that override ``on_step_end`` are called per step,
so an idle callback costs nothing on the hot path."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from torch import Tensor

    from lifelong.engine.context import Context
    from lifelong.engine.result import RunResult


class Callback:
    def on_stream_start(self, ctx: "Context", result: "RunResult") -> None:
        pass

    def on_task_start(self, ctx: "Context") -> None:
        pass

    def on_step_end(self, ctx: "Context", loss: float) -> None:
        pass

    def on_task_end(self, ctx: "Context", row: list[float]) -> None:
        pass

    def on_scores(self, ctx: "Context", difficulty: "Tensor", tasks: "Tensor") -> None:
        """Difficulty scores of the study pool were computed (task start) or
        refreshed: one score per pool item, ``tasks`` the task index of each."""

    def on_stream_end(self, ctx: "Context", result: "RunResult") -> None:
        pass


class ProgressBar(Callback):
    """A rich progress bar per run: task, steps, rate, ETA, last loss.

    Redraws at most ``refresh_per_second`` times, so its per-step cost is a
    counter increment and a clock read.
    """

    def __init__(self, description: str = "training", refresh_per_second: float = 8.0, console: Any = None,
                 transient: bool = False):
        self.description = description
        self.interval = 1.0 / refresh_per_second
        self.console = console
        self.transient = transient
        self._progress = None
        self._bar = None
        self._last = 0.0

    def on_stream_start(self, ctx, result) -> None:
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                                   TimeElapsedColumn, TimeRemainingColumn)

        self._progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:>7.1f} steps/s"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn(), TextColumn("loss {task.fields[loss]:.3f}"),
            console=self.console, transient=self.transient, refresh_per_second=4)
        self._progress.start()

    def on_task_start(self, ctx) -> None:
        if self._progress is None:
            return
        what = ctx.task.name if len(ctx.pool_tasks) <= 1 else f"{len(ctx.pool_tasks)} tasks up to {ctx.task.name}"
        desc = f"{self.description} · task {ctx.phase + 1}/{ctx.num_phases or len(ctx.stream)} ({what})"
        if self._bar is not None:
            self._progress.remove_task(self._bar)
        self._bar = self._progress.add_task(desc, total=ctx.total_steps, completed=ctx.step,
                                            rate=0.0, loss=float("nan"))
        self._t0, self._s0 = time.perf_counter(), ctx.step

    def on_step_end(self, ctx, loss: float) -> None:
        now = time.perf_counter()
        if self._progress is None or (now - self._last < self.interval and ctx.step < ctx.total_steps):
            return
        self._last = now
        rate = (ctx.step - self._s0) / max(now - self._t0, 1e-9)
        self._progress.update(self._bar, completed=ctx.step, rate=rate, loss=loss)

    def on_stream_end(self, ctx, result) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class History(Callback):
    """Records every event (for tests and debugging)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, int]] = []

    def on_task_start(self, ctx) -> None:
        self.events.append(("task_start", ctx.task_index, ctx.step))

    def on_task_end(self, ctx, row) -> None:
        self.events.append(("task_end", ctx.task_index, ctx.step))
