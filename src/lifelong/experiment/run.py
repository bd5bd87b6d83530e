"""Running or resuming one run: train, checkpoint, and keep every result.

:func:`run_experiment` is what ``lifelong run`` does: it seeds, builds the
stream, model and recipe from an :class:`~lifelong.config.ExperimentConfig`,
runs :func:`~lifelong.engine.train_stream` with a checkpointer that writes
``checkpoints/step-<run step>.pt`` atomically (at every task end and every
``train.checkpoint_every`` steps; the newest ``checkpoints.keep`` are kept and
``checkpoints/last.pt`` is the newest), and fills the run directory (resolved
``config.yaml``, ``metrics.json``, CSVs, ``log.txt``) and the run index
(``index.sqlite`` in the folder that holds the run).

Nothing is lost: when training stops with an error or Ctrl-C, the results
gathered so far are written (``metrics.json`` with ``complete: false``), the
index marks the run stopped or failed, and the error is raised again (Ctrl-C
and SIGTERM as :class:`RunInterrupted`, whose message says how to resume). A
run resumes from its folder alone (:func:`resume_experiment`): the stored
config and the last checkpoint give the same numbers as an uninterrupted run.
A run holds its folder's lock while it runs (a second writer is refused), and
a run that cannot start leaves no folder behind.

The folder, its log (:class:`RunLog`), checkpoints (:class:`Checkpoints`) and
index row belong to this module; building the run from its config is
:mod:`lifelong.experiment.build`, grids are :mod:`lifelong.experiment.grid`.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from lifelong.config import ExperimentConfig, validate
from lifelong.engine.callbacks import Callback
from lifelong.engine.result import RunResult
from lifelong.errors import ConfigError, LifelongError, TrainingError
from lifelong.experiment.build import Built, build_experiment, build_trackers

CHECKPOINT = "last.pt"


# ----------------------------------------------------------------------------- the log


class RunLog(Callback):
    """Appends one line per event to the run's ``log.txt`` (flushed at once, so a crash keeps it)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with contextlib.suppress(OSError):
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(f"{stamp} {message}\n")

    def on_stream_start(self, ctx, result) -> None:
        self.write(f"stream '{ctx.stream.name}': {len(ctx.stream)} tasks, device {ctx.device}; "
                   f"{len(result.accuracy)} task(s) already done")

    def on_task_start(self, ctx) -> None:
        self.write(f"task {ctx.task_index + 1}/{len(ctx.stream)} '{ctx.task.name}' starts at step {ctx.step} "
                   f"of {ctx.total_steps}")

    def on_task_end(self, ctx, row) -> None:
        accs = " ".join(f"{a:.3f}" for a in row)
        self.write(f"task {ctx.task_index + 1} done after {ctx.step} steps (loss {ctx.last_loss:.4f}); "
                   f"accuracy on every task: {accs}")

    def on_stream_end(self, ctx, result) -> None:
        self.write(f"stream ended: complete={result.complete}, {result.wall_seconds:.1f} s")


class ScoreCache(Callback):
    """Keeps the curriculum's difficulty scores with the run: one CSV per
    computation, ``scores/task<T>-step<S>.csv`` (T = task number within the
    run, S = step within the task), columns ``pool_index, task, difficulty``."""

    def __init__(self, folder: Path):
        self.folder = folder

    def on_scores(self, ctx, difficulty, tasks) -> None:
        from lifelong.runs.io import write_text_atomic

        self.folder.mkdir(parents=True, exist_ok=True)
        lines = ["pool_index,task,difficulty"]
        lines += [f"{i},{t},{d:.6g}" for i, (t, d) in enumerate(zip(tasks.tolist(), difficulty.tolist()))]
        write_text_atomic(self.folder / f"task{ctx.task_index}-step{ctx.step}.csv", "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- one run




def _load_checkpoint(path: Path) -> dict[str, Any] | None:
    """The run's checkpoint, read without running code from it (None when there is none yet)."""
    from lifelong.engine.checkpoint import load_checkpoint

    if not path.exists():
        return None
    return load_checkpoint(path)


def _index(fn: Callable[..., Any], *args: Any, log: RunLog | None = None, root: Path | None = None,
           **kwargs: Any) -> None:
    """Run-index bookkeeping never costs a run: a failure is logged, shown on stderr and ignored
    (the index is a cache of the run folders, rebuilt by ``lifelong runs --reindex``)."""
    try:
        fn(*args, **kwargs)
    except LifelongError as exc:
        if log is not None:
            log.write(f"warning: run index not updated: {exc}")
        where = f" {root}" if root is not None else ""
        warn(f"warning: run index not updated: {exc}".rstrip(".") + ". The run goes on; afterwards rebuild the "
             f"index with: lifelong runs --reindex{where}")


def warn(message: str) -> None:
    """A warning for the person at the terminal (stderr), whatever the progress display does."""
    with contextlib.suppress(Exception):
        from rich.console import Console
        from rich.markup import escape

        Console(stderr=True, highlight=False).print(f"[yellow]{escape(message)}[/yellow]", soft_wrap=True)


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a run after saving; the message says how to continue it."""


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM stops a run the way Ctrl-C does (results and index kept, resumable), also outside the loop.

    Only in the main thread (signals cannot be handled elsewhere); the training
    loop may install its own handler for its duration (stop at a step boundary).
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def _check_device(name: str) -> None:
    """Refuse a device this machine does not have before any folder is made (``cuda:7`` on one GPU)."""
    from lifelong.engine.loop import resolve_device

    dev = resolve_device(name)
    if dev.type == "cuda" and dev.index is not None:
        import torch

        count = torch.cuda.device_count()
        if dev.index >= count:
            raise ConfigError(f"device '{name}' does not exist: this machine has {count} CUDA device(s) "
                              f"(cuda:0{f' to cuda:{count - 1}' if count > 1 else ''}); use device: auto, cuda or "
                              "cpu.")


# ----------------------------------------------------------------------------- checkpoints

STEP_CHECKPOINT = "step-{}.pt"


def _save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write one checkpoint file (atomically)."""
    from lifelong.engine.checkpoint import save_checkpoint

    save_checkpoint(state, path)


def kept_checkpoints(ckpt_dir: Path) -> list[int]:
    """The run steps of the checkpoints kept in ``ckpt_dir`` (``step-<N>.pt``), newest first."""
    import re

    steps = []
    with contextlib.suppress(OSError):
        for p in ckpt_dir.iterdir():
            m = re.fullmatch(r"step-(\d+)\.pt", p.name)
            if m:
                steps.append(int(m.group(1)))
    return sorted(steps, reverse=True)


def describe_checkpoints(ckpt_dir: Path) -> str:
    """'run steps 120 (newest, last.pt), 80, 40' for messages."""
    steps = kept_checkpoints(ckpt_dir)
    if not steps:
        return "none"
    return "run step" + ("s " if len(steps) > 1 else " ") + ", ".join(
        f"{s} (newest, {CHECKPOINT})" if i == 0 else str(s) for i, s in enumerate(steps))


class Checkpoints:
    """The checkpoints of one run: ``step-<run step>.pt`` files, the ``keep`` newest kept, ``last.pt`` the newest.

    ``last.pt`` is a hard link to the newest step file (a copy where links are
    not supported), replaced atomically, so it is always a whole checkpoint.
    """

    def __init__(self, folder: Path, keep: int):
        self.folder, self.keep = folder, max(1, int(keep))

    @property
    def last(self) -> Path:
        return self.folder / CHECKPOINT

    def path(self, step: int) -> Path:
        return self.folder / STEP_CHECKPOINT.format(int(step))

    def save(self, state: dict[str, Any]) -> None:
        from lifelong.runs.io import link_atomic

        target = self.path(state["global_step"])
        _save_checkpoint(state, target)
        link_atomic(target, self.last)
        self.prune()

    def prune(self) -> None:
        for step in kept_checkpoints(self.folder)[self.keep:]:
            with contextlib.suppress(OSError):
                self.path(step).unlink()

    def pick(self, step: int | None) -> Path:
        """The checkpoint to resume from: ``last.pt``, or the kept one of run step ``step``."""
        if step is None:
            if self.last.exists() or not kept_checkpoints(self.folder):
                return self.last
            return self.path(kept_checkpoints(self.folder)[0])
        if not self.path(step).exists():
            raise ConfigError(f"--from-checkpoint {step}: {self.folder} holds no checkpoint of run step {step}. "
                              f"Kept checkpoints: {describe_checkpoints(self.folder)}.")
        return self.path(step)

    def rewind(self, step: int) -> list[int]:
        """Make run step ``step`` the newest checkpoint: later ones are deleted, ``last.pt`` points to it."""
        from lifelong.runs.io import link_atomic

        later = [s for s in kept_checkpoints(self.folder) if s > step]
        for s in later:
            with contextlib.suppress(OSError):
                self.path(s).unlink()
        link_atomic(self.path(step), self.last)
        return later


# ----------------------------------------------------------------------------- one run


class _Started(Callback):
    """Notes that training began (the engine started the stream): failures after it are the run's, not start-up's."""

    def __init__(self) -> None:
        self.started = False

    def on_stream_start(self, ctx, result) -> None:
        self.started = True


def run_experiment(
    config: ExperimentConfig | dict[str, Any],
    out_dir: str | os.PathLike | None = None,
    *,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    callbacks: Iterable[Callback] = (),
    index_root: str | os.PathLike | None = None,
    console: Any = None,
    resume_overrides: Sequence[str] = (),
    from_checkpoint: int | None = None,
) -> tuple[RunResult, dict[str, Any]]:
    """Run one experiment into ``out_dir`` (default: ``config.out``); return ``(result, metrics)``.

    ``resume=True`` continues the run in ``out_dir`` from its stored
    ``config.yaml`` and last checkpoint (``config`` must then match the stored
    one, or be None); ``from_checkpoint=N`` resumes from the kept checkpoint of
    run step N instead (later ones are dropped); ``resume_overrides``
    (``train.lr=...``, ``train.grad_clip=...`` or
    ``train.max_grad_norm=...``) change those settings for the
    rest of the run. ``overwrite=True`` deletes an existing run folder first.
    The run is registered in ``<index_root>/index.sqlite`` (default: the
    folder that holds the run). ``metrics`` is the content of ``metrics.json``.

    The run holds the folder's lock (:class:`~lifelong.runs.lock.RunLock`)
    while it runs: a second writer is refused. A run that cannot start (bad
    device, bad benchmark parameter...) leaves no folder behind.
    """
    with _sigterm_as_interrupt():
        return _run_experiment(config, out_dir, resume=resume, overwrite=overwrite, progress=progress,
                               callbacks=callbacks, index_root=index_root, console=console,
                               resume_overrides=resume_overrides, from_checkpoint=from_checkpoint)


def _run_experiment(config, out_dir, *, resume, overwrite, progress, callbacks, index_root, console,
                    resume_overrides, from_checkpoint):
    from lifelong.runs.io import clean_orphans
    from lifelong.runs.lock import RunBusyError, RunLock
    from lifelong.runs.rundir import LOCK, RunDir

    cfg: ExperimentConfig | None
    if config is None:
        cfg = None
    elif isinstance(config, ExperimentConfig):
        cfg = config
    else:
        cfg = validate(config)
    if out_dir is None:
        if cfg is None or cfg.out is None:
            raise ConfigError("no output folder: pass --out DIR (or set 'out' in the config).")
        out_dir = cfg.out
    out_path = Path(out_dir)
    if from_checkpoint is not None and not resume:
        raise ConfigError("--from-checkpoint picks the checkpoint a resumed run continues from; use it with "
                          "--resume RUN_DIR.")

    from lifelong.engine.distributed import is_main_process, join_from_env

    if join_from_env(cfg.device if cfg is not None else "auto") and not is_main_process():
        return _follow(cfg, out_path, resume=resume, resume_overrides=resume_overrides,
                       from_checkpoint=from_checkpoint)

    lock = RunLock(out_path)
    existed = out_path.exists()
    if resume:
        cfg = _stored_config(out_path, cfg)
        if resume_overrides:
            cfg = _resume_overrides(cfg, resume_overrides)
        lock.acquire()
    else:
        if cfg is None:
            raise ConfigError("no config given for a new run.")
        cfg = cfg.single()
        _check_writable(out_path)
        holder = RunLock.holder(out_path)
        if holder is not None:
            raise RunBusyError(f"the run folder {out_path} is in use by {holder}, which is still writing to it; "
                               f"{'--overwrite would delete a live run. ' if overwrite else ''}Wait for it to finish, "
                               "stop it first, or choose another --out folder.")
        if not overwrite and out_path.is_dir() and any(p.name != LOCK for p in out_path.iterdir()):
            RunDir(out_path)  # refuses with its message before any work
        _check_device(cfg.device)
    try:
        return _run_locked(cfg, out_path, lock, existed=existed, resume=resume, overwrite=overwrite,
                           progress=progress, callbacks=callbacks, index_root=index_root, console=console,
                           resume_overrides=resume_overrides, from_checkpoint=from_checkpoint,
                           clean_orphans=clean_orphans)
    finally:
        lock.release()


def _follow(cfg, out_path: Path, *, resume, resume_overrides, from_checkpoint) -> tuple[RunResult, dict[str, Any]]:
    """A rank other than 0 of a multi-process run (torchrun, accelerate launch): it trains its slice
    of every batch in step with rank 0 (same config, same checkpoint) and writes nothing; rank 0
    owns the run folder, its lock, the index and the progress display."""
    from lifelong.engine.loop import train_stream
    from lifelong.runs.rundir import result_metrics

    state = None
    if resume:
        cfg = _stored_config(out_path, cfg)
        if resume_overrides:
            cfg = _resume_overrides(cfg, resume_overrides)
        ckpt = Checkpoints(out_path / "checkpoints", cfg.checkpoints.keep).pick(from_checkpoint)
        state = _load_checkpoint(ckpt)
    else:
        cfg = cfg.single()
    built = build_experiment(cfg)
    result = train_stream(built.stream, built.model, built.recipe, built.train, resume=state)
    return result, result_metrics(result)


def _run_locked(cfg, out_path, lock, *, existed, resume, overwrite, progress, callbacks, index_root, console,
                resume_overrides, from_checkpoint, clean_orphans):
    from lifelong.runs import RunDir, register_run, update_run
    from lifelong.runs.index import remove_run

    checkpoint_state = None
    built: Built | None = None
    if resume:
        rd = RunDir(out_path, resume=True)
        ckpts = Checkpoints(rd.checkpoint_dir, cfg.checkpoints.keep)
        orphans = clean_orphans(rd.path) + clean_orphans(ckpts.folder)
        checkpoint_state = _load_checkpoint(ckpts.pick(from_checkpoint))
        dropped = ckpts.rewind(from_checkpoint) if from_checkpoint is not None else []
    else:
        # build first: a bad benchmark or model parameter must not leave a half-made run folder
        built = build_experiment(cfg)
        if not lock.held:
            lock.acquire()
        rd = RunDir(out_path, overwrite=overwrite)
        ckpts = Checkpoints(rd.checkpoint_dir, cfg.checkpoints.keep)
        orphans, dropped = [], []
    cfg = cfg.model_copy(update={"out": str(rd.path)})
    resolved = cfg.resolved()
    root = Path(index_root) if index_root is not None else rd.path.resolve().parent
    log = RunLog(rd.log_path)
    started = _Started()
    try:
        if not resume or resume_overrides:
            rd.write_config(resolved)
        where = (f" from task {checkpoint_state.get('phase')} step {checkpoint_state.get('step')}"
                 if checkpoint_state else "")
        log.write(("resuming" if resume else "starting") + f" run {rd.name}{where}: strategy {cfg.strategy_label}, "
                  f"benchmark {cfg.benchmark.name}, seed {cfg.seed}")
        if orphans:
            log.write(f"removed {len(orphans)} unfinished temporary file(s) of an earlier, killed session: "
                      + ", ".join(p.name for p in orphans))
        if from_checkpoint is not None:
            log.write(f"resumed from the checkpoint of run step {from_checkpoint}"
                      + (f"; later checkpoints dropped: {', '.join(map(str, dropped))}" if dropped else ""))
        if resume and resume_overrides:
            log.write(f"resumed with changed settings: {', '.join(resume_overrides)} (config.yaml updated)")
        _index(register_run, root, rd.path, resolved, status="running", name=rd.name, log=log, root=root)

        if checkpoint_state is not None and checkpoint_state.get("result", {}).get("complete"):
            checkpoint_state = None  # pragma: no cover - a finished run's checkpoint is never 'complete'

        if built is None:
            built = build_experiment(cfg)
    except BaseException:
        if not resume:
            _undo_start(rd, existed, root, log, remove_run)
        raise

    def checkpointer(state: dict[str, Any]) -> None:
        ckpts.save(state)
        if state["step"] == 0:  # a task end: results so far go to disk too
            partial = RunResult.from_dict(state["result"])
            rd.write_result(partial)
            log.write(f"checkpoint after task {state['phase']} (run step {state['global_step']})")

    cbs: list[Callback] = [started, log, ScoreCache(rd.path / "scores"), *callbacks]
    trackers = build_trackers(cfg, rd.path)
    cbs.extend(trackers)
    if progress:
        from lifelong.engine.callbacks import ProgressBar

        cbs.append(ProgressBar(description=cfg.name or rd.name, console=console))

    from lifelong.engine.loop import train_stream

    try:
        result = train_stream(built.stream, built.model, built.recipe, built.train, callbacks=cbs,
                              checkpointer=checkpointer, resume=checkpoint_state)
    except BaseException as exc:
        for t in trackers:
            with contextlib.suppress(Exception):
                t.close(ok=False)
        stopped = isinstance(exc, KeyboardInterrupt)
        if not started.started and not resume:  # start-up failed: nothing of this run exists yet
            _undo_start(rd, existed, root, log, remove_run)
            raise
        partial = getattr(exc, "result", None)
        status = "stopped" if stopped else "failed"
        if partial is not None:
            try:
                metrics = rd.write_result(partial)
                _index(update_run, root, rd.path, status=status, summary=metrics, log=log, root=root)
            except LifelongError:
                _index(update_run, root, rd.path, status=status, log=log, root=root)
        else:
            _index(update_run, root, rd.path, status=status, log=log, root=root)
        what = "interrupted by the user" if stopped else f"{type(exc).__name__}: {exc}"
        hint = f"lifelong run --resume {rd.path}"
        kept = describe_checkpoints(ckpts.folder)
        if isinstance(exc, TrainingError):  # diverged: continue from the last good step more gently
            hint += f" --lr {cfg.train.lr / 10:g} (or --set train.grad_clip=1.0)"
        saved = (f"results so far are in {rd.metrics_path.name}" if rd.metrics_path.exists()
                 else "no task finished, so there are no results yet")
        log.write(f"run stopped ({what}); {saved}; checkpoints kept: {kept}; continue with: {hint}")
        if not stopped and not isinstance(exc, LifelongError):
            log.write("traceback:\n" + "".join(traceback.format_exception(exc)))
        if stopped:
            err = RunInterrupted(f"interrupted; {saved.replace(rd.metrics_path.name, str(rd.metrics_path))}. "
                                 f"Continue the run with: lifelong run --resume {rd.path}")
            err.result = partial  # type: ignore[attr-defined]
            raise err from None
        if isinstance(exc, TrainingError) and kept_checkpoints(ckpts.folder):
            err = TrainingError(f"{exc} Checkpoints kept in {ckpts.folder}: {kept}; resume from an earlier one "
                                f"with: lifelong run --resume {rd.path} --from-checkpoint STEP --lr SMALLER.")
            err.result = partial  # type: ignore[attr-defined]
            raise err from None
        raise
    metrics = rd.write_result(result)
    for t in trackers:
        t.log_summary(metrics)
        t.close()
    _index(update_run, root, rd.path, status="complete", summary=metrics, log=log, root=root)
    log.write(f"done: average accuracy {metrics.get('average_accuracy')}, forgetting {metrics.get('forgetting')}")
    return result, metrics


def _undo_start(rd: Any, existed: bool, root: Path, log: RunLog, remove_run: Callable[..., Any]) -> None:
    """A run that failed to start leaves nothing: its folder goes (emptied when it existed before), its index row too."""
    import shutil

    from lifelong.runs.rundir import LOCK, empty_folder

    with contextlib.suppress(OSError):
        if existed:
            empty_folder(rd.path)
            (rd.path / LOCK).unlink()
        else:
            shutil.rmtree(rd.path)
    with contextlib.suppress(LifelongError):
        remove_run(root, rd.path)


def resume_experiment(run_dir: str | os.PathLike, **kwargs: Any) -> tuple[RunResult, dict[str, Any]]:
    """Continue the run in ``run_dir`` from its ``config.yaml`` and last checkpoint."""
    return run_experiment(None, run_dir, resume=True, **kwargs)  # type: ignore[arg-type]


#: settings a resumed run may change: what it takes to get past a diverged (NaN) step
#: (``train.max_grad_norm`` is ``train.grad_clip``'s TrainingArguments name: the same setting)
RESUMABLE_OVERRIDES = ("train.lr", "train.grad_clip", "train.max_grad_norm")

#: the two names of the gradient-norm bound: a resumed run that sets one drops the other's stored value
_CLIP_NAMES = ("train.grad_clip", "train.max_grad_norm")


def _resume_overrides(stored: ExperimentConfig, overrides: Sequence[str]) -> ExperimentConfig:
    from lifelong.config import apply_overrides

    keys = [o.split("=", 1)[0].strip() for o in overrides]
    bad = [o for o, k in zip(overrides, keys) if k not in RESUMABLE_OVERRIDES]
    if bad:
        raise ConfigError(f"a resumed run continues with its stored config.yaml; only train.lr and train.grad_clip "
                          f"may change (or train.max_grad_norm, grad_clip's other name; e.g. after a NaN loss), not "
                          f"{', '.join(bad)}. Start a new run for other changes.")
    items = list(overrides)
    given = [k for k in _CLIP_NAMES if k in keys]
    if len(given) == 1:  # the new bound replaces the stored one, whichever name either uses
        items.insert(0, f"{next(k for k in _CLIP_NAMES if k not in given)}=0")
    return validate(apply_overrides(stored.resolved(), items), source="(resume)")


def _stored_config(run_dir: Path, given: ExperimentConfig | None) -> ExperimentConfig:
    from lifelong.config import load_config

    cpath = run_dir / "config.yaml"
    if not run_dir.is_dir():
        raise ConfigError(f"cannot resume: run folder {run_dir} does not exist.")
    if not cpath.exists():
        raise ConfigError(f"cannot resume: {run_dir} has no config.yaml, so it is not a lifelong run folder.")
    stored = load_config(cpath)
    if given is not None:
        a = {k: v for k, v in stored.resolved().items() if k not in ("out", "name")}
        b = {k: v for k, v in given.single().resolved().items() if k not in ("out", "name")}
        diff = [k for k in a if a.get(k) != b.get(k)]
        if diff:
            raise ConfigError(f"cannot resume {run_dir} with a different config (sections {', '.join(diff)} differ "
                              "from its config.yaml). Resume with the run folder alone: lifelong run --resume "
                              f"{run_dir}, or start a new run with --out elsewhere.")
    return stored


def _check_writable(path: Path) -> None:
    """A clear message before any work when the output folder cannot be created or written."""
    from lifelong.runs.io import StorageError

    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise StorageError(f"cannot write the run to {path}: {probe} is a file, not a folder. "
                           "Choose an output folder that does not pass through a file.")
    if probe.is_dir() and not os.access(probe, os.W_OK | os.X_OK):
        raise StorageError(f"cannot write the run to {path}: the folder {probe} is not writable (permission denied). "
                           "Choose another output folder or fix its permissions.")
