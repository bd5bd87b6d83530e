"""The vectorised loop: :func:`lifelong.engine.train_stream` for R runs at once.

Each run keeps its own objects, exactly as if it were trained alone: its
stream (its seed's split of the data), model, objective, memory,
consolidators, schedules, samplers, random streams and :class:`RunResult`.
Only the arithmetic of a training step is shared: the R models' parameters
are stacked (:class:`~lifelong.vectorized.stacked.StackedModel`), each
step's R batches are gathered with one index, and the forward pass,
backward pass, penalties and SGD update run once for all runs.

The loop mirrors ``train_stream`` step for step (the order in which
samplers, memory samples and global random numbers are drawn, the task
set-up and wrap-up) so each run's numbers are those the sequential loop
gives for the same run. Everything done once per task on a single run's
real model (assessment, EWC's Fisher, DER's stored logits, memory updates,
checkpoints) is done by the runs' own objects on their own model, after
copying its parameters back from the stack.

What it cannot do is checked before any work by
:func:`lifelong.vectorized.support.check_runs` (and for configs by
:func:`lifelong.vectorized.vectorizable`).
"""

from __future__ import annotations

import contextlib
import math
import random
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from lifelong.curriculum.base import PoolView
from lifelong.curriculum.basic import Uniform
from lifelong.curriculum.sampler import ScheduleSampler
from lifelong.data.task import Stream
from lifelong.engine.callbacks import Callback
from lifelong.engine.config import Recipe, TrainConfig
from lifelong.engine.context import Context
from lifelong.engine.phase import (diverged_message, evaluate_tasks, make_objective, phase_pools, resolve_device,
                                   task_ages)
from lifelong.engine.checkpoint import plain_rng
from lifelong.engine.pool import Pool, task_examples
from lifelong.engine.resources import PeakMemory
from lifelong.engine.result import RunResult
from lifelong.errors import LifelongError, TrainingError
from lifelong.vectorized.penalties import StackedMemory, StepData, stacked_penalties
from lifelong.vectorized.stacked import StackedModel, Unsupported

Checkpointer = Callable[[dict[str, Any]], None]


@dataclass
class RunSpec:
    """One run for :func:`train_stacked`: what :func:`~lifelong.engine.train_stream` takes.

    ``rng`` holds the global random states the run would start with
    (``{"python", "numpy", "torch"}``, e.g. captured right after building its
    model); by default the states at the call of :func:`train_stacked`.
    """

    stream: Stream
    model: nn.Module
    recipe: Recipe
    config: TrainConfig
    callbacks: Iterable[Callback] = ()
    checkpointer: Checkpointer | None = None
    rng: dict[str, Any] | None = None


def capture_rng() -> dict[str, Any]:
    """The global random states (Python, NumPy, torch CPU), as a run would start with them."""
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}


@dataclass
class _Run:
    """One run's own objects and bookkeeping."""

    spec: RunSpec
    objective: Any
    ctx: Context
    result: RunResult
    gen: torch.Generator  # the run's global torch random stream
    py_state: Any
    np_state: Any
    callbacks: list[Callback]
    step_callbacks: list[Callback]
    curriculum: Any
    error: BaseException | None = None
    # per phase
    pool: Pool | None = None
    view: PoolView | None = None
    sampler: ScheduleSampler | None = None
    review_sampler: ScheduleSampler | None = None
    review_on: bool = False
    stack: int = 1  # runs in the stack it started in

    def share(self, t_run: float) -> float:
        """The run's wall time: the stack's elapsed time divided by its number of runs (what the run cost)."""
        return (time.perf_counter() - t_run) / self.stack

    @property
    def cfg(self) -> TrainConfig:
        return self.spec.config

    @property
    def recipe(self) -> Recipe:
        return self.spec.recipe

    @contextlib.contextmanager
    def own_rng(self):
        """Run a block with this run's global torch random stream (as if the run were alone in the process)."""
        outer = torch.get_rng_state()
        torch.set_rng_state(self.gen.get_state())
        try:
            yield
        finally:
            self.gen.set_state(torch.get_rng_state())
            torch.set_rng_state(outer)

    def log_schedules(self) -> None:
        row: dict[str, Any] = {}
        row.update(self.curriculum.log())
        if self.review_on:
            row.update({f"review/{k}": v for k, v in self.recipe.review.log().items()})
        if row:
            self.result.schedule_log.append({"step": self.ctx.global_step, "task": self.ctx.task_index, **row})


class _Phase:
    """The stacked, per-task tensors of the runs still training (rebuilt if a run stops)."""

    def __init__(self, runs: list[_Run], device: torch.device):
        fields = runs[0].objective.model_fields
        pools = [r.pool.examples for r in runs]  # type: ignore[union-attr]
        self.data = {k: torch.stack([p[k] for p in pools]) for k in (*fields, "task")}
        memories = [r.ctx.memory for r in runs]
        self.memory = StackedMemory(memories, device) if memories[0] is not None else None
        obj = runs[0].objective
        self.scenario = obj.scenario
        self.seen = torch.stack([r.objective.seen for r in runs]).to(device)  # [R, C]
        self.all_seen = all(r.objective._all_seen for r in runs)
        self.task_masks = torch.stack([r.objective.task_masks for r in runs]).to(device)  # [R, T, C]
        self.rows = torch.arange(len(runs), device=device).unsqueeze(1)
        self.lr = torch.tensor([r.cfg.lr for r in runs], dtype=torch.float32, device=device)
        self.momentum = torch.tensor([r.cfg.momentum for r in runs], dtype=torch.float32, device=device)
        self.weight_decay = torch.tensor([r.cfg.weight_decay for r in runs], dtype=torch.float32, device=device)
        self.use_momentum = any(r.cfg.momentum != 0 for r in runs)
        self.use_decay = any(r.cfg.weight_decay != 0 for r in runs)
        self.penalties = stacked_penalties([list(r.recipe.consolidators) for r in runs], runs[0].cfg.batch_size)
        self.stepping = [p for p in self.penalties if hasattr(p, "after_step")]

    def start_penalties(self, device: torch.device, names: list[str], runs: list[_Run]) -> None:
        for p in self.penalties:
            p.start_task(device, names, [r.ctx for r in runs])

    def write_back(self) -> None:
        """Hand per-step consolidator state (SI's path integral) back to the runs' own objects."""
        for p in self.penalties:
            if hasattr(p, "write_back"):
                p.write_back()

    def mask(self, logits: Tensor, data: dict[str, Tensor]) -> Tensor:
        """``ClassificationObjective.mask_logits`` for every run's rows."""
        if self.scenario == "domain":
            return logits
        n = logits.shape[-1]
        if self.scenario == "class":
            if self.all_seen:
                return logits
            return logits.masked_fill(~self.seen[:, None, :n], float("-inf"))
        m = self.task_masks[self.rows, data["task"].long()][..., :n]
        return logits.masked_fill(~m, float("-inf"))


#: a stack doing fewer multiply-adds per step than this (parameters x batch rows x runs) trains on one
#: torch thread: its operations are too small to share out, and on a loaded machine threads that wait
#: for each other at every operation made the demo's stacks 3-10x slower than one thread (measured)
SMALL_STACK_MACS = 5e7


def stack_threads(specs: list[RunSpec]) -> int:
    """Torch threads for training ``specs`` as one stack on the CPU: one for small stacks, else the current."""
    first = specs[0]
    macs = sum(p.numel() for p in first.model.parameters()) * int(first.config.batch_size) * len(specs)
    return 1 if macs < SMALL_STACK_MACS else torch.get_num_threads()


def train_stacked(specs: list[RunSpec]) -> list[RunResult | BaseException]:
    """Train the runs of ``specs`` together; return each run's result (or the error that stopped it).

    The runs must be stackable (:func:`lifelong.vectorized.support.check_runs`
    says so, or why not); each result equals what ``train_stream`` returns for
    the same run. A run whose loss becomes NaN stops with a
    :class:`TrainingError` (carrying its results so far in ``.result``, as
    ``train_stream`` would raise it) while the others go on. On the CPU a
    small stack trains on one torch thread (:func:`stack_threads`); the
    thread count is restored afterwards.
    """
    from lifelong.vectorized.support import check_runs

    problems = check_runs(specs)
    if problems:
        raise LifelongError("these runs cannot be trained together: " + "; ".join(problems))
    device = resolve_device(specs[0].config.device)
    previous = torch.get_num_threads()
    threads = stack_threads(specs) if device.type == "cpu" else previous
    torch.set_num_threads(threads)
    try:
        return _train_stacked(specs, device, threads)
    finally:
        torch.set_num_threads(previous)


def _train_stacked(specs: list[RunSpec], device: torch.device, threads: int) -> list[RunResult | BaseException]:
    default_rng = capture_rng()
    runs: list[_Run] = []
    for spec in specs:
        spec.model.to(device)
        objective = make_objective(spec.stream, spec.model)
        rng = spec.rng or default_rng
        gen = torch.Generator()
        gen.set_state(rng["torch"].clone())
        ctx = Context(model=spec.model, stream=spec.stream, task=spec.stream[0], objective=objective,
                      config=spec.config, device=device, memory=spec.recipe.memory)
        cbs = list(spec.callbacks)
        runs.append(_Run(spec, objective, ctx, RunResult(task_names=spec.stream.task_names), gen, rng["python"],
                         rng["numpy"], cbs, [c for c in cbs if type(c).on_step_end is not Callback.on_step_end],
                         spec.recipe.curriculum or Uniform()))
    stacked = StackedModel([r.spec.model for r in runs])
    note = (f"trained vectorised in a stack of {len(runs)} runs on {threads} torch thread(s): wall and task times "
            f"are the stack's divided by {len(runs)}")
    for run in runs:
        run.result.notes.append(note)
        run.stack = len(runs)
    t_run = time.perf_counter()
    for run in runs:
        stream = run.spec.stream
        if stream.scenario != "class":
            run.result.baseline = evaluate_tasks(run.spec.model, run.objective, stream.tasks, device,
                                                 run.cfg.eval_batch_size, baseline=True)
        for cb in run.callbacks:
            cb.on_stream_start(run.ctx, run.result)

    alive = list(range(len(runs)))
    phases = phase_pools(specs[0].stream, specs[0].recipe)
    try:
        for phase in range(len(phases)):
            alive = _train_phase(runs, alive, stacked, phases, phase, device, t_run)
            if not alive:
                break
    except KeyboardInterrupt as exc:
        for i in alive:
            run = runs[i]
            run.result.wall_seconds = run.share(t_run)
            run.result.notes.append("interrupted by the user; resume with --resume")
            run.error = KeyboardInterrupt()
            run.error.result = run.result  # type: ignore[attr-defined]
            for cb in run.callbacks:
                cb.on_stream_end(run.ctx, run.result)
        exc.results = [r.result for r in runs]  # type: ignore[attr-defined]
        raise
    for i in alive:
        run = runs[i]
        run.result.complete = True
        run.result.wall_seconds = run.share(t_run)
        for cb in run.callbacks:
            cb.on_stream_end(run.ctx, run.result)
    return [r.error if r.error is not None else r.result for r in runs]


def _set_up(run: _Run, phases: list[list[int]], phase: int, device: torch.device) -> int:
    """A run's task set-up, in ``train_stream``'s order; returns the task's number of steps."""
    stream, recipe, cfg, ctx, objective = run.spec.stream, run.recipe, run.cfg, run.ctx, run.objective
    pool_tasks = [stream[i] for i in phases[phase]]
    task = pool_tasks[-1]
    seen = sorted({c for t in stream.tasks[: task.index + 1] for c in t.classes}
                  | {c for t in pool_tasks for c in t.classes})
    ctx.task, ctx.task_index, ctx.pool_tasks, ctx.seen_classes = task, phase, phases[phase], seen
    ctx.step = 0
    objective.begin_task(stream, task, seen)
    model = run.spec.model
    shapes = [p.shape for p in model.parameters()]
    if hasattr(model, "adapt"):
        model.adapt(seen)
        model.to(device)
    if [p.shape for p in model.parameters()] != shapes:
        raise Unsupported("the model's head was re-allocated while the runs trained together")
    run.pool = Pool(pool_tasks, objective.model_fields, device)
    run.view = run.pool.view()
    with run.own_rng():
        for c in recipe.consolidators:
            c.before_task(ctx)
    steps_per_epoch = math.ceil(run.pool.size / cfg.batch_size)
    total = cfg.steps if cfg.steps > 0 else cfg.epochs * steps_per_epoch
    ctx.total_steps = total
    task_seed = cfg.seed * 100_003 + phase
    run.curriculum.start(run.view, total, seed=task_seed)
    run.sampler = ScheduleSampler(run.curriculum, cfg.batch_size, seed=task_seed)
    memory, review = recipe.memory, recipe.review
    run.review_on = review is not None and memory is not None and len(memory) > 0
    run.review_sampler = None
    if run.review_on:
        mem_view = PoolView(len(memory), memory.examples["task"].long().clone(), len(stream), None,
                            stream.task_names, {"ages": task_ages(run.result, phases, len(stream))})
        review.start(mem_view, total, seed=task_seed + 7)
        run.review_sampler = ScheduleSampler(review, cfg.batch_size, seed=task_seed + 7)
    for cb in run.callbacks:
        cb.on_task_start(ctx)
    return total


def _train_phase(runs: list[_Run], alive: list[int], stacked: StackedModel, phases: list[list[int]], phase: int,
                 device: torch.device, t_run: float) -> list[int]:
    totals = {_set_up(runs[i], phases, phase, device) for i in alive}
    if len(totals) != 1:
        raise Unsupported(f"the runs plan different numbers of steps for task {phase}: {sorted(totals)}")
    total = totals.pop()
    cfg0 = runs[alive[0]].cfg
    if phase == 0 or cfg0.reset_optimizer:
        stacked.reset_optimizer()
    names = stacked.names
    group = [runs[i] for i in alive]
    state = _Phase(group, device)
    state.start_penalties(device, names, group)
    review_on = group[0].review_on
    batch_size = cfg0.batch_size
    peak = PeakMemory(device)
    t_task = time.perf_counter()
    step = 0
    while step < total:
        idx = torch.stack([r.sampler.next_batch() for r in group]).to(device)  # type: ignore[union-attr]
        data = {k: v[state.rows, idx] for k, v in state.data.items()}
        if review_on:
            fracs = {float(r.recipe.review.fraction(step)) for r in group}
            if len(fracs) != 1:
                raise Unsupported("the runs' review schedules ask for different shares of the batch")
            frac = fracs.pop()
            n_rev = int(round(batch_size * frac / (1.0 - frac))) if frac > 0 else 0
            if n_rev > 0:
                samplers = [r.review_sampler for r in group]
                r_idx = torch.stack([s.next_batch(n_rev) for s in samplers]).to(device)  # type: ignore[union-attr]
                replay = state.memory.take(r_idx)  # type: ignore[union-attr]
                data = {k: torch.cat([data[k], replay[k].to(data[k].dtype)], 1) for k in data}
        out = state.mask(stacked.forward(data["x"]), data)
        n_runs, n_rows, n_out = out.shape
        loss = F.cross_entropy(out.reshape(n_runs * n_rows, n_out), data["y"].reshape(-1).long(),
                               reduction="none").view(n_runs, n_rows).mean(1)
        if state.penalties:
            step_data = StepData(stacked, out, data, state.memory, [r.gen for r in group], state.mask)
            for p in state.penalties:
                extra = p.penalty(step_data)
                if extra is not None:
                    loss = loss + extra
        values = loss.detach().tolist()
        grads = torch.autograd.grad(loss.sum(), [stacked.params[n] for n in names])
        grads = dict(zip(names, grads))
        stacked.sgd_step(grads, state.lr, state.momentum, state.weight_decay, state.use_momentum, state.use_decay)
        for pen in state.stepping:
            pen.after_step(stacked, grads)
        step += 1
        stopped = []
        for k, run in enumerate(group):
            value = values[k]
            ctx = run.ctx
            if not math.isfinite(value):
                stopped.append(k)
                _diverged(run, value, step - 1, t_run)
                continue
            ctx.step = step
            ctx.global_step += 1
            ctx.last_loss = value
            cfg = run.cfg
            if cfg.log_every and step % cfg.log_every == 0:
                run.result.losses.append({"step": ctx.global_step, "task": phase, "loss": value})
                run.log_schedules()
            if cfg.eval_every and step % cfg.eval_every == 0:
                model = stacked.sync(k)
                accs = evaluate_tasks(model, run.objective, run.spec.stream.tasks, device, cfg.eval_batch_size)
                model.train()
                run.result.curves.extend({"step": ctx.global_step, "task": phase, "eval_task": j, "accuracy": a}
                                         for j, a in enumerate(accs))
            for cb in run.step_callbacks:
                cb.on_step_end(ctx, value)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step < total \
                    and run.spec.checkpointer is not None:
                run.result.wall_seconds = run.share(t_run)
                seconds = (time.perf_counter() - t_task) / len(group)
                state.write_back()
                run.spec.checkpointer(_state(run, stacked, k, phase, step, seconds))
        if stopped:
            keep = [k for k in range(len(group)) if k not in stopped]
            alive = [alive[k] for k in keep]
            if not alive:
                return alive
            stacked.keep(keep)
            group = [group[k] for k in keep]
            state = _Phase(group, device)
            state.start_penalties(device, names, group)

    # -- wrap up ----------------------------------------------------------------------------------------
    seconds = (time.perf_counter() - t_task) / len(group)
    peak_bytes = peak.peak()
    models = [stacked.sync(k) for k in range(len(group))]
    state.write_back()
    # consolidators' task-end work: stacked where it has a stacked form (EWC's Fisher), else run by run;
    # runs and consolidators are independent of each other, so the order across them does not matter
    done = []
    for pen in state.penalties:
        hook = getattr(pen, "after_task", None)
        done.append(bool(hook and hook([r.ctx for r in group], stacked, state.mask)))
    for k, run in enumerate(group):
        model = models[k]
        ctx, recipe, stream, cfg = run.ctx, run.recipe, run.spec.stream, run.cfg
        with run.own_rng():
            for c, stacked_done in zip(recipe.consolidators, done):
                if not stacked_done:
                    c.after_task(ctx)
            memory = recipe.memory
            if memory is not None:
                fields = tuple(dict.fromkeys(f for c in recipe.consolidators for f in c.memory_fields))
                extras = _extras_fn(recipe.consolidators, ctx) if fields else None
                memory.add(task_examples(ctx.task, run.objective.model_fields), ctx, extras)
        res = run.result
        res.task_seconds.append(seconds)
        res.task_peak_memory.append(peak_bytes)
        res.task_steps.append(ctx.step)
        row = evaluate_tasks(model, run.objective, stream.tasks, device, cfg.eval_batch_size)
        res.accuracy.append(row)
        res.row_tasks.append(list(range(stream[phases[phase][-1]].index + 1)) if recipe.pool != "joint"
                             else list(range(len(stream))))
        if not (cfg.log_every and ctx.step % cfg.log_every == 0):
            run.log_schedules()
        for cb in run.callbacks:
            cb.on_task_end(ctx, row)
        if run.spec.checkpointer is not None:
            res.wall_seconds = run.share(t_run)
            run.spec.checkpointer(_state(run, stacked, k, phase + 1, 0, 0.0))
    return alive


def _diverged(run: _Run, value: float, step: int, t_run: float) -> None:
    ctx, cfg, task = run.ctx, run.cfg, run.ctx.task
    err = TrainingError(diverged_message(value, task, step, ctx.global_step, cfg.lr))
    run.result.wall_seconds = run.share(t_run)
    run.result.notes.append(str(err))
    err.result = run.result  # type: ignore[attr-defined]
    run.error = err
    for cb in run.callbacks:
        cb.on_stream_end(ctx, run.result)


def _extras_fn(consolidators, ctx: Context):
    def extras(chosen):
        out: dict[str, Tensor] = {}
        for c in consolidators:
            out.update(c.memory_extras(ctx, chosen))
        return out

    return extras


def _state(run: _Run, stacked: StackedModel, row: int, ph: int, st: int, task_seconds: float) -> dict[str, Any]:
    """The run's checkpoint (the run is row ``row`` of the stack), in ``train_stream``'s format:
    ``lifelong run --resume`` continues it with the sequential loop."""
    model = stacked.sync(row)
    cfg, recipe = run.cfg, run.recipe
    review_sampler = run.review_sampler
    return {
        "phase": ph, "step": st, "global_step": run.ctx.global_step,
        "model": model.state_dict(),
        "optimizer": stacked.optimizer_state(row, model, cfg.lr, cfg.momentum, cfg.weight_decay),
        "scaler": None,
        "consolidators": [c.state_dict() for c in recipe.consolidators],
        "memory": recipe.memory.state_dict() if recipe.memory is not None else None,
        "curriculum": run.curriculum.state_dict(), "sampler": run.sampler.state_dict(),  # type: ignore[union-attr]
        # as the loop's: a phase-end checkpoint (st == 0) keeps the review's knowledge for the next task
        "review": recipe.review.state_dict() if recipe.review is not None and (review_sampler is not None or st == 0)
        else None,
        "review_sampler": review_sampler.state_dict() if review_sampler is not None else None,
        "difficulty": run.view.difficulty if run.view is not None else None,
        "rng": plain_rng(run.py_state, run.np_state, run.gen.get_state()),
        "result": run.result.to_dict(),
        "task_seconds_so_far": task_seconds,
    }
