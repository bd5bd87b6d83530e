"""The training loop: one plain function, readable top to bottom.

For each task of the stream (a *phase*; joint training has a single one):

1. set up: activate the task's classes (grow the head), let consolidators
   prepare (``before_task``), build the optimiser, form the study pool, start
   the curriculum schedule (with difficulty scores when it needs them) and the
   review schedule over the replay memory;
2. train: draw a batch from the pool by the curriculum and, when reviewing,
   rows from memory by the review schedule; forward, loss plus consolidator
   penalties, backward, gradient hooks, optimiser step; feedback to the
   schedules; quizzes, learning curves, logs and checkpoints on their cadence;
3. wrap up: ``after_task`` hooks, memory update, assessment of every task (a
   row of the accuracy matrix).

Everything stateful has a ``state_dict`` so a run killed at any step resumes
to the same numbers. Callbacks only observe.
"""

from __future__ import annotations

import math
import random
import signal
import threading
import time
from contextlib import nullcontext
from typing import Any, Callable, Iterable

import numpy as np
import torch
from torch import Tensor, nn

from lifelong.curriculum.base import Feedback, PoolView
from lifelong.curriculum.basic import Uniform
from lifelong.curriculum.sampler import ScheduleSampler
from lifelong.data.examples import Examples
from lifelong.data.task import Stream, Task
from lifelong.engine.callbacks import Callback
from lifelong.engine.config import Recipe, TrainConfig
from lifelong.engine.context import Batch, Context
from lifelong.engine.distributed import gather_feedback
from lifelong.engine.objective import ClassificationObjective
from lifelong.engine.pool import Pool, task_examples
from lifelong.engine.resources import PeakMemory
from lifelong.engine.result import RunResult
from lifelong.errors import LifelongError, TrainingError

Checkpointer = Callable[[dict[str, Any]], None]


# ----------------------------------------------------------------------------- helpers
def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (model initialisation, dropout)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise LifelongError(f"device '{name}' is not a valid device; use auto, cpu, cuda, cuda:N or mps.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise LifelongError(f"device '{name}' was asked for but CUDA is not available here; use device: auto or cpu.")
    return dev


def make_objective(stream: Stream, model: nn.Module, **kwargs: Any):
    """The objective for a stream's kind: classification or causal language modelling."""
    if stream.kind == "lm":
        from lifelong.hf.objective import CausalLMObjective

        return CausalLMObjective(stream, **kwargs)
    return ClassificationObjective(stream)


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise LifelongError("the model has no trainable parameters (every parameter is frozen).")
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def _rng_state() -> dict[str, Any]:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor (and module) inside dicts, lists and tuples moved to
    ``device``: checkpoints load on the CPU, consolidator state must follow the model."""
    if isinstance(obj, (Tensor, nn.Module)):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


def _reinitialise(model: nn.Module) -> None:
    for m in model.modules():
        if m is not model and hasattr(m, "reset_parameters"):
            m.reset_parameters()


def _probe(result: RunResult, objective, model: nn.Module, stream: Stream, device: torch.device,
           batch_size: int) -> None:
    """Append the objective's probes (if it has any) for the current model."""
    probes = getattr(objective, "probes", None)
    if probes is None:
        return
    for name, value in probes(model, stream, device, batch_size).items():
        result.probes.setdefault(name, []).append(float(value))


def evaluate_tasks(model: nn.Module, objective, tasks: Iterable[Task], device: torch.device,
                   batch_size: int, baseline: bool = False) -> list[float]:
    return [objective.evaluate(model, t, device, batch_size, baseline=baseline) for t in tasks]


class _StopFlag:
    """Ctrl-C asks the loop to stop at the next step boundary (after saving);
    a second Ctrl-C interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._old = None

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._old = signal.getsignal(signal.SIGINT)

            def handler(signum, frame):  # noqa: ARG001
                if self.requested:
                    raise KeyboardInterrupt
                self.requested = True

            signal.signal(signal.SIGINT, handler)
        return self

    def __exit__(self, *exc) -> None:
        if self._old is not None:
            signal.signal(signal.SIGINT, self._old)


def _phases(stream: Stream, recipe: Recipe) -> list[list[int]]:
    """Which tasks form the pool of each phase."""
    n = len(stream)
    if recipe.pool == "joint":
        return [list(range(n))]
    if recipe.pool == "cumulative":
        return [list(range(i + 1)) for i in range(n)]
    return [[i] for i in range(n)]


# ----------------------------------------------------------------------------- the loop
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
    task end, every ``config.checkpoint_every`` steps and on Ctrl-C (not at a
    NaN loss, whose weights may have diverged); pass it back as ``resume``.
    A :class:`~lifelong.errors.LifelongError` raised during training carries
    the results so far in its ``result`` attribute.
    """
    recipe = recipe or Recipe()
    cfg = config or TrainConfig()
    stream.validate()
    device = resolve_device(cfg.device)
    model.to(device)
    objective = objective or make_objective(stream, model)
    callbacks = list(callbacks)
    step_callbacks = [c for c in callbacks if type(c).on_step_end is not Callback.on_step_end]
    curriculum = recipe.curriculum or Uniform()
    review, memory, consolidators = recipe.review, recipe.memory, list(recipe.consolidators)
    phases = _phases(stream, recipe)
    use_amp = bool(cfg.amp and device.type == "cuda")
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda") if use_amp and amp_dtype == torch.float16 else None
    autocast = (lambda: torch.autocast("cuda", dtype=amp_dtype)) if use_amp else nullcontext
    mean_loss = getattr(objective, "loss", None) or (lambda o, d: objective.per_sample_loss(o, d).mean())
    memory_fields = tuple(dict.fromkeys(f for c in consolidators for f in c.memory_fields))

    result = RunResult(task_names=stream.task_names)
    start_phase, start_step = (resume["phase"], resume["step"]) if resume is not None else (0, 0)
    ctx = Context(model=model, stream=stream, task=stream[phases[min(start_phase, len(phases) - 1)][-1]],
                  objective=objective, config=cfg, device=device, memory=memory)
    t_run = time.perf_counter()
    if resume is not None:
        result = _restore_run(resume, ctx, consolidators)
        t_run -= result.wall_seconds
    else:
        # b_j, the untrained model's accuracy, for forward transfer. Not in the class-incremental
        # scenario: there a task's classes are unreachable before it is learned (R[j-1][j] = 0), so
        # forward transfer would only measure chance; it is reported as undefined instead.
        if stream.scenario != "class":
            result.baseline = evaluate_tasks(model, objective, stream.tasks, device, cfg.eval_batch_size,
                                             baseline=True)
        _probe(result, objective, model, stream, device, cfg.eval_batch_size)

    for cb in callbacks:
        cb.on_stream_start(ctx, result)

    with _StopFlag() as stop:
        try:
            for phase in range(start_phase, len(phases)):
                # A checkpoint taken at a task end resumes with a normal task start;
                # one taken mid-task restores the task's own state after the set-up.
                resuming = resume is not None and phase == start_phase and start_step > 0
                pool_tasks = [stream[i] for i in phases[phase]]
                task = pool_tasks[-1]
                seen = sorted({c for t in stream.tasks[: task.index + 1] for c in t.classes}
                              | {c for t in pool_tasks for c in t.classes})
                ctx.task, ctx.task_index, ctx.pool_tasks, ctx.seen_classes = task, phase, phases[phase], seen
                ctx.step = start_step if resuming else 0
                objective.begin_task(stream, task, seen)

                # -- 1. set up ------------------------------------------------------------
                if recipe.pool == "memory" and not resuming:
                    memory.add(task_examples(task, objective.model_fields), ctx)
                if recipe.reinit and not resuming:
                    _reinitialise(model)
                if hasattr(model, "adapt"):
                    model.adapt(seen)
                    model.to(device)
                if recipe.pool == "memory":
                    pool = Pool([], objective.model_fields, device, memory_examples=memory.examples)
                    view = pool.view(num_groups=len(stream), group_names=stream.task_names)
                else:
                    pool = Pool(pool_tasks, objective.model_fields, device)
                    view = pool.view()
                for c in consolidators:
                    c.before_task(ctx)
                if ctx.optimizer is None or cfg.reset_optimizer or _params_changed(ctx.optimizer, model):
                    ctx.optimizer = make_optimizer(model, cfg)
                optimizer = ctx.optimizer
                steps_per_epoch = math.ceil(pool.size / cfg.batch_size)
                total = cfg.steps if cfg.steps > 0 else cfg.epochs * steps_per_epoch
                ctx.total_steps = total
                task_seed = cfg.seed * 100_003 + phase
                if curriculum.needs_difficulty or recipe.scorer is not None:
                    view.difficulty = _difficulty(recipe.scorer, pool_tasks, ctx, resume if resuming else None)
                    for cb in callbacks:
                        cb.on_scores(ctx, view.difficulty, pool.item_tasks())
                curriculum.start(view, total, seed=task_seed)
                sampler = ScheduleSampler(curriculum, cfg.batch_size, seed=task_seed)
                review_on = review is not None and memory is not None and len(memory) > 0
                review_sampler = None
                if review_on:
                    # groups are copied: memory.add rewrites the buffer in place at the task end
                    mem_view = PoolView(len(memory), memory.examples["task"].long().clone(), len(stream),
                                        None, stream.task_names, {"ages": _task_ages(result, phases, len(stream))})
                    review.start(mem_view, total, seed=task_seed + 7)
                    review_sampler = ScheduleSampler(review, cfg.batch_size, seed=task_seed + 7)
                if resuming:
                    model.load_state_dict(resume["model"])
                    optimizer.load_state_dict(resume["optimizer"])
                    for group in optimizer.param_groups:  # a resumed run may lower the rate (after a NaN)
                        group["lr"] = cfg.lr
                    if scaler is not None and resume.get("scaler"):
                        scaler.load_state_dict(resume["scaler"])
                    for c, s in zip(consolidators, resume["consolidators"]):
                        c.load_state_dict(to_device(s, ctx.device))
                    curriculum.load_state_dict(resume["curriculum"])
                    sampler.load_state_dict(resume["sampler"])
                    if review_sampler is not None:
                        review.load_state_dict(resume["review"])
                        review_sampler.load_state_dict(resume["review_sampler"])
                    _set_rng_state(resume["rng"])
                wants_feedback = curriculum.needs_feedback or (review_on and review.needs_feedback)
                for cb in callbacks:
                    cb.on_task_start(ctx)

                def checkpoint(phase_done: bool = False) -> None:
                    if checkpointer is None:
                        return
                    result.wall_seconds = time.perf_counter() - t_run
                    checkpointer(_state(phase + 1 if phase_done else phase, 0 if phase_done else ctx.step))

                def _state(ph: int, st: int) -> dict[str, Any]:
                    return {
                        "phase": ph, "step": st, "global_step": ctx.global_step,
                        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                        "scaler": scaler.state_dict() if scaler is not None else None,
                        "consolidators": [c.state_dict() for c in consolidators],
                        "memory": memory.state_dict() if memory is not None else None,
                        "curriculum": curriculum.state_dict(), "sampler": sampler.state_dict(),
                        "review": review.state_dict() if review_sampler is not None else None,
                        "review_sampler": review_sampler.state_dict() if review_sampler is not None else None,
                        "difficulty": view.difficulty, "rng": _rng_state(), "result": result.to_dict(),
                        "task_seconds_so_far": 0.0 if st == 0 else time.perf_counter() - t_task + earlier_seconds,
                    }

                # -- 2. train -------------------------------------------------------------
                peak = PeakMemory(device)
                t_task = time.perf_counter()
                earlier_seconds = float(resume.get("task_seconds_so_far") or 0.0) if resuming else 0.0
                model.train()
                while ctx.step < total:
                    idx = sampler.next_batch()
                    batch = _make_batch(pool, idx, memory, review, review_sampler, ctx.step, cfg.batch_size,
                                        objective.model_fields, device) if review_on else \
                        Batch(pool.take(idx), len(idx), idx)
                    with autocast():
                        out = objective.forward(model, batch.data)
                        if wants_feedback:
                            losses = objective.per_sample_loss(out, batch.data)
                            loss = losses.mean()
                        else:  # the fused mean is cheaper when nobody needs per-sample losses
                            losses, loss = None, mean_loss(out, batch.data)
                        for c in consolidators:
                            extra = c.penalty(ctx, batch, out)
                            if extra is not None:
                                loss = loss + extra
                    value = float(loss.detach())
                    if not math.isfinite(value):
                        # no checkpoint here: the weights that produced this loss may already have
                        # diverged; the last periodic or task-end checkpoint is the one to resume from
                        raise TrainingError(
                            f"the loss became {value} in task '{task.name}' (#{task.index}) at step {ctx.step} "
                            f"(run step {ctx.global_step}). Lower the learning rate (train.lr={cfg.lr}), enable "
                            "gradient clipping (train.grad_clip) or check the inputs for NaN. Results so far and the "
                            "last checkpoint (task ends, every train.checkpoint_every steps) were kept; continue "
                            "from it with `lifelong run --resume RUN_DIR --lr SMALLER`.")
                    optimizer.zero_grad(set_to_none=True)
                    if scaler is not None:
                        scaler.scale(loss).backward()
                        scaler.unscale_(optimizer)
                    else:
                        loss.backward()
                    for c in consolidators:
                        c.after_backward(ctx, batch)
                    if cfg.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    if scaler is not None:
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    for c in consolidators:
                        c.after_step(ctx)
                    ctx.step += 1
                    ctx.global_step += 1
                    ctx.last_loss = value

                    if wants_feedback:
                        _feedback(curriculum, review if review_on else None, objective, out, losses, batch,
                                  view, ctx.step)
                    if review_on and review.quiz_every and ctx.step % review.quiz_every == 0:
                        run_quiz(review, memory, objective, model, device, ctx.step)
                    if recipe.scorer is not None and getattr(recipe.scorer, "refresh_every", 0) \
                            and ctx.step % recipe.scorer.refresh_every == 0:
                        view.difficulty = _difficulty(recipe.scorer, pool_tasks, ctx, None)
                        curriculum.refresh_difficulty(view.difficulty)
                        for cb in callbacks:
                            cb.on_scores(ctx, view.difficulty, pool.item_tasks())
                    if cfg.log_every and ctx.step % cfg.log_every == 0:
                        result.losses.append({"step": ctx.global_step, "task": phase, "loss": value})
                        _log_schedules(result, curriculum, review if review_on else None, ctx)
                    if cfg.eval_every and ctx.step % cfg.eval_every == 0:
                        accs = evaluate_tasks(model, objective, stream.tasks, device, cfg.eval_batch_size)
                        model.train()
                        result.curves.extend({"step": ctx.global_step, "task": phase, "eval_task": j,
                                              "accuracy": a} for j, a in enumerate(accs))
                    for cb in step_callbacks:
                        cb.on_step_end(ctx, value)
                    if stop.requested:
                        checkpoint()
                        raise KeyboardInterrupt
                    if cfg.checkpoint_every and ctx.step % cfg.checkpoint_every == 0 and ctx.step < total:
                        checkpoint()

                # -- 3. wrap up -----------------------------------------------------------
                seconds = time.perf_counter() - t_task + earlier_seconds
                for c in consolidators:
                    c.after_task(ctx)
                if memory is not None and recipe.pool != "memory":
                    extras = _extras_fn(consolidators, ctx) if memory_fields else None
                    memory.add(task_examples(task, objective.model_fields), ctx, extras)
                result.task_seconds.append(seconds)
                result.task_peak_memory.append(peak.peak())
                result.task_steps.append(ctx.step)
                row = evaluate_tasks(model, objective, stream.tasks, device, cfg.eval_batch_size)
                result.accuracy.append(row)
                _probe(result, objective, model, stream, device, cfg.eval_batch_size)
                result.row_tasks.append(list(range(stream[phases[phase][-1]].index + 1))
                                        if recipe.pool != "joint" else list(range(len(stream))))
                if not (cfg.log_every and ctx.step % cfg.log_every == 0):  # else the last step logged it
                    _log_schedules(result, curriculum, review if review_on else None, ctx)
                for cb in callbacks:
                    cb.on_task_end(ctx, row)
                resume = None
                checkpoint(phase_done=True)
            result.complete = True
        except (LifelongError, KeyboardInterrupt) as exc:
            result.wall_seconds = time.perf_counter() - t_run
            if isinstance(exc, KeyboardInterrupt):
                result.notes.append("interrupted by the user; resume with --resume")
            else:
                result.notes.append(str(exc))
            exc.result = result  # type: ignore[attr-defined]
            for cb in callbacks:
                cb.on_stream_end(ctx, result)
            raise
    result.wall_seconds = time.perf_counter() - t_run
    for cb in callbacks:
        cb.on_stream_end(ctx, result)
    return result


# ----------------------------------------------------------------------------- resume
def _restore_run(resume: dict[str, Any], ctx: Context, consolidators: list) -> RunResult:
    """Restore what a checkpoint holds beyond the current task: results so far,
    the model (grown head, modules consolidators added), memory, consolidator
    state and, for a task-end checkpoint, the RNGs. The task's own state
    (optimiser, schedules, samplers) is restored after the task's set-up."""
    model, start_phase, start_step = ctx.model, resume["phase"], resume["step"]
    result = RunResult.from_dict(resume["result"])
    ctx.global_step = resume["global_step"]
    if hasattr(model, "adapt"):  # a grown head must exist before its weights load
        model.adapt(sorted({c for t in ctx.stream.tasks[:max(1, start_phase)] for c in t.classes}))
    for c, s in zip(consolidators, resume["consolidators"]):
        c.restore_structure(ctx, s)
    try:
        model.load_state_dict(resume["model"])
    except RuntimeError:
        # A mid-task checkpoint may hold modules a consolidator adds in
        # before_task (LoRA adapters): its weights load after the set-up.
        if start_step == 0:
            raise
    model.to(ctx.device)
    if ctx.memory is not None and resume.get("memory") is not None:
        ctx.memory.load_state_dict(resume["memory"])
    for c, s in zip(consolidators, resume["consolidators"]):
        c.load_state_dict(to_device(s, ctx.device))
    if start_step == 0:
        _set_rng_state(resume["rng"])
    result.notes.append(f"resumed at task {start_phase} step {start_step}")
    return result


# ----------------------------------------------------------------------------- step pieces
def _params_changed(optimizer: torch.optim.Optimizer, model: nn.Module) -> bool:
    in_opt = {id(p) for g in optimizer.param_groups for p in g["params"]}
    return in_opt != {id(p) for p in model.parameters() if p.requires_grad}


def _extras_fn(consolidators, ctx: Context):
    def extras(chosen: Examples) -> dict[str, Tensor]:
        out: dict[str, Tensor] = {}
        for c in consolidators:
            out.update(c.memory_extras(ctx, chosen))
        return out

    return extras


def _make_batch(pool: Pool, idx: Tensor, memory, review, review_sampler: ScheduleSampler, step: int,
                batch_size: int, fields: tuple[str, ...], device: torch.device) -> Batch:
    new = pool.take(idx)
    frac = float(review.fraction(step))
    n_rev = int(round(batch_size * frac / (1.0 - frac))) if frac > 0 else 0
    if n_rev <= 0:
        return Batch(new, len(idx), idx)
    r_idx = review_sampler.next_batch(n_rev)
    replay = memory.examples.take(r_idx).to(device)
    data = Examples({k: torch.cat([new[k], replay[k].to(new[k].dtype)]) for k in (*fields, "task")})
    return Batch(data, len(idx), idx, replay, r_idx)


def _feedback(curriculum, review, objective, out: Tensor, losses: Tensor, batch: Batch, view: PoolView,
              step: int) -> None:
    with torch.no_grad():
        correct = objective.correct(out.detach(), batch.data)
        losses = losses.detach().float().cpu()
        correct = correct.cpu() if correct is not None else None
    n = batch.n_new
    if curriculum.needs_feedback:
        curriculum.update(gather_feedback(Feedback(
            step, batch.pool_index, losses[:n], correct[:n] if correct is not None else None,
            view.groups[batch.pool_index])))
    if review is not None and review.needs_feedback and batch.replay is not None:
        review.update(gather_feedback(Feedback(
            step, batch.replay_index, losses[n:], correct[n:] if correct is not None else None,
            batch.replay["task"].long().cpu())))


@torch.no_grad()
def run_quiz(review, memory, objective, model: nn.Module, device: torch.device, step: int) -> None:
    """Assess the review schedule's held-out quiz items and feed the per-task
    scores back (``Feedback.scores``). Used by the loop and the Trainer integration."""
    idx = review.quiz_indices()
    if idx is None or len(idx) == 0:
        return
    was = model.training
    model.eval()
    data = memory.examples.take(idx).to(device)
    correct = objective.correct(objective.forward(model, data), data).float().cpu()
    model.train(was)
    groups = memory.examples["task"][idx].long()
    scores = {int(g): float(correct[groups == g].mean()) for g in torch.unique(groups)}
    review.update(Feedback(step, indices=idx, correct=correct.bool(), groups=groups, scores=scores))


def _difficulty(scorer, tasks: list[Task], ctx: Context, resume: dict | None) -> Tensor:
    if resume is not None and resume.get("difficulty") is not None:
        return resume["difficulty"]
    if scorer is None:
        missing = [t.name for t in tasks if "difficulty" not in t.train]
        if missing:
            raise LifelongError(
                f"the curriculum needs difficulty scores but task(s) {missing} have no 'difficulty' field; "
                "set curriculum.scorer (e.g. loss, transfer, length) or add a difficulty column to the data.")
        return torch.cat([t.train["difficulty"].float() for t in tasks])
    return torch.cat([scorer.score(t, ctx).float().cpu() for t in tasks])


def _task_ages(result: RunResult, phases: list[list[int]], n_tasks: int) -> list[float]:
    """Steps since each task was last studied in a finished phase (inf if never):
    phase i studied the tasks of its pool, ``phases[i]``."""
    ends = [sum(result.task_steps[: i + 1]) for i in range(len(result.task_steps))]
    now = ends[-1] if ends else 0
    ages = [float("inf")] * n_tasks
    for i, end in enumerate(ends):
        for j in phases[i]:
            ages[j] = float(now - end)
    return ages


def _log_schedules(result: RunResult, curriculum, review, ctx: Context) -> None:
    row: dict[str, Any] = {}
    row.update(curriculum.log())
    if review is not None:
        row.update({f"review/{k}": v for k, v in review.log().items()})
    if row:
        result.schedule_log.append({"step": ctx.global_step, "task": ctx.task_index, **row})
