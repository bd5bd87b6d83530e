"""Grids (``lifelong compare``): every cell of a grid config run into its own folder, on an executor.

:func:`run_grid` expands the grid, checks the output folder, and hands the
jobs to one executor (:func:`dispatch`): in this process, a pool of worker
processes fed through one pipe each (a worker that dies fails only its run),
or Ray. The parent shows the progress of every running run
(:class:`GridProgress`). What a worker process needs (its progress channel,
whether it is warmed up) travels in a :class:`WorkerContext`, not in module
state.
"""

from __future__ import annotations

import contextlib
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lifelong.config import ExperimentConfig, validate
from lifelong.engine.callbacks import Callback
from lifelong.errors import ConfigError, LifelongError
from lifelong.experiment.run import RunLog, _check_writable, run_experiment




@dataclass
class GridRun:
    """The outcome of one run of a grid."""

    name: str
    path: Path
    label: str
    ok: bool
    error: str | None = None
    seconds: float = 0.0


@dataclass
class GridOutcome:
    runs: list[GridRun] = field(default_factory=list)

    @property
    def failed(self) -> list[GridRun]:
        return [r for r in self.runs if not r.ok]

    def rows(self):
        """Comparison rows (mean ± std per label over the successful runs)."""
        from lifelong.runs.compare import RunEntry, compare
        from lifelong.runs.rundir import load_run

        entries = []
        for r in self.runs:
            if r.ok:
                config, result, summary = load_run(r.path)
                entries.append(RunEntry(r.label, result, config, summary, r.path))
        return compare(entries), entries


def grid_label(cfg: ExperimentConfig, grid: ExperimentConfig) -> str:
    """The comparison label of one run: its strategy, plus its curriculum when the grid varies curricula,
    plus the values of the ``grid:`` axes it varies (the cell's :class:`~lifelong.config.GridPoint` label),
    so the seeds of one cell are averaged and different cells are not merged."""
    if cfg.grid_point is not None:
        return cfg.grid_point.label
    label = cfg.strategy_label
    if len(grid.curriculum) > 1:
        label += f" / {cfg.curriculum_label}"
    return label


@dataclass
class WorkerContext:
    """What a process that runs grid cells carries from one cell to the next.

    ``queue`` takes the progress messages (anything with ``put_nowait``; None:
    no progress is sent); ``warm`` says the process's one-off costs are paid.
    """

    queue: Any = None
    warm: bool = False

    def start(self, threads: int) -> None:
        """A worker process begins: one torch thread per worker (no oversubscription), then the warm-up."""
        import torch

        torch.set_num_threads(max(1, threads))
        self.warm_up()

    def warm_up(self) -> None:
        """Pay a process's one-off costs (imports, first autograd and optimiser calls) before any run is timed,
        so the first run of each worker does not report a slower wall time than the others."""
        if self.warm:
            return
        self.warm = True
        with contextlib.suppress(Exception):  # a warm-up problem must never stop the real runs
            import torch

            import lifelong.strategies  # noqa: F401
            from lifelong.engine.loop import train_stream
            from lifelong.models import build_model
            from lifelong.data.benchmarks import make_benchmark
            from lifelong.engine.config import TrainConfig

            rng = torch.get_rng_state()
            stream = make_benchmark("split-digits", 0, n_tasks=1, classes_per_task=2)
            train_stream(stream, build_model("mlp", stream, hidden=[8]), None, TrainConfig(steps=2, device="cpu"))
            torch.set_rng_state(rng)


class _QueueProgress(Callback):
    """Sends (run, task, step, total) to the parent's progress display at most a few times a second."""

    def __init__(self, name: str, queue: Any, interval: float = 0.25):
        self.name, self.queue, self.interval, self._last = name, queue, interval, 0.0

    def _send(self, ctx, done: bool = False) -> None:
        with contextlib.suppress(Exception):
            self.queue.put_nowait((self.name, ctx.task_index, len(ctx.stream), ctx.step, ctx.total_steps, done))

    def on_task_start(self, ctx) -> None:
        self._send(ctx)

    def on_step_end(self, ctx, loss: float) -> None:
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            self._send(ctx)

    def on_task_end(self, ctx, row) -> None:
        self._send(ctx)


def grid_worker(name: str, data: dict[str, Any], path: str, resume: bool, overwrite: bool,
                index_root: str, threads: int = 1, queue: Any = None) -> tuple[str, bool, str | None, float]:
    """Run one grid cell (in a worker process or a Ray task); returns (name, ok, error, seconds).

    ``queue`` (``put_nowait``) takes the run's progress for the parent's display.

    Errors become strings (a worker's exception must not take the whole grid
    down); with ``resume`` a finished run is kept as it is and a stopped one
    continues from its checkpoint.
    """
    import torch

    torch.set_num_threads(max(1, threads))
    t0 = time.perf_counter()
    cbs = [_QueueProgress(name, queue)] if queue is not None else []
    try:
        cfg = validate(data)
        p = Path(path)
        if resume and (p / "config.yaml").exists():
            if _is_complete(p):
                return name, True, None, 0.0
            run_experiment(None, p, resume=True, progress=False, callbacks=cbs, index_root=index_root)  # type: ignore[arg-type]
        else:
            run_experiment(cfg, p, overwrite=overwrite, progress=False, callbacks=cbs, index_root=index_root)
    except LifelongError as exc:
        return name, False, str(exc), time.perf_counter() - t0
    except KeyboardInterrupt:
        return name, False, "interrupted", time.perf_counter() - t0
    except Exception as exc:  # noqa: BLE001 - report a worker bug with its traceback
        return name, False, "".join(traceback.format_exception(exc)), time.perf_counter() - t0
    return name, True, None, time.perf_counter() - t0


def _is_complete(path: Path) -> bool:
    from lifelong.runs.io import read_json

    m = path / "metrics.json"
    if not m.exists():
        return False
    with contextlib.suppress(LifelongError):
        return bool(read_json(m).get("complete"))
    return False


def available_cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS/Windows
        return max(1, os.cpu_count() or 1)


def default_workers(n_runs: int) -> int:
    """Worker processes: one per available core, at most one per run."""
    return max(1, min(n_runs, available_cores()))


def worker_threads(workers: int) -> int:
    """Torch threads per pool worker: the available cores shared out, at least one each
    (more threads than cores only makes the workers fight over them)."""
    return max(1, available_cores() // max(1, workers))


def run_grid(
    grid: ExperimentConfig,
    out_dir: str | os.PathLike,
    *,
    workers: int | None = None,
    executor: str = "process",
    address: str | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    console: Any = None,
    vectorize: bool = True,
) -> GridOutcome:
    """Run every cell of ``grid`` into ``out_dir/<run name>`` and return the outcomes.

    ``executor='process'`` uses a pool of ``workers`` processes (default: one
    per core; ``workers=1`` runs in this process); ``executor='ray'`` sends
    each run to Ray as a task (``address`` of an existing cluster, or a local
    instance with ``workers`` CPUs). The run folders must be on a file system
    every worker can reach. The index of the runs is ``out_dir/index.sqlite``.

    With ``vectorize`` (the default), runs that share a model, data and batch
    schedule and differ only in seed or scalar hyper-parameters train as one
    stacked computation in this process (:mod:`lifelong.vectorized`, the same
    numbers as separate runs); the rest go to the executor, and the console
    says which went where and why.
    """
    if executor not in EXECUTORS:
        raise ConfigError(f"unknown executor '{executor}'; choose one of: {', '.join(EXECUTORS)}.")
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite contradict each other: pass one.")
    cells = grid.expand()
    out = Path(out_dir)
    _check_writable(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        from lifelong.runs.io import storage_error

        raise storage_error(exc, out, "create the output folder") from exc
    if not resume and not overwrite:
        taken = [n for n, _ in cells if (out / n).exists() and any((out / n).iterdir())]
        if taken:
            raise ConfigError(f"{out} already holds run folder(s) {', '.join(taken[:5])}"
                              f"{' ...' if len(taken) > 5 else ''}. Pass --resume to continue them, --overwrite to "
                              "start them again, or choose another --out folder.")
    labels = {n: grid_label(c, grid) for n, c in cells}
    jobs = [(n, c.model_copy(update={"out": str(out / n)}).model_dump(mode="json"), str(out / n)) for n, c in cells]
    workers = workers if workers and workers > 0 else default_workers(len(jobs))
    index_root = str(out)
    stacked, jobs_left = _vectorised_jobs(jobs, resume, console) if vectorize and executor == "process" else ([], jobs)
    results = _run_vectorised(stacked, overwrite, index_root, console) if stacked else []
    if jobs_left:
        results += dispatch(jobs_left, executor=executor, workers=workers, address=address, resume=resume,
                            overwrite=overwrite, index_root=index_root, progress=progress, console=console)
    by_name = {r[0]: r for r in results}
    outcome = GridOutcome()
    for n, _, p in jobs:
        _, ok, err, secs = by_name.get(n, (n, False, "did not run", 0.0))
        outcome.runs.append(GridRun(n, Path(p), labels[n], ok, err, secs))
    return outcome


def _vectorised_jobs(jobs, resume: bool, console: Any) -> tuple[list, list]:
    """Split the jobs into those that train as stacks (groups of two or more) and the rest, saying why."""
    from lifelong.vectorized import vectorizable

    cfgs = [ExperimentConfig.model_validate(data).single() for _, data, _ in jobs]
    groups, reasons = vectorizable(cfgs)
    stacked: list[int] = []
    for members in groups:
        fresh = [i for i in members if not (resume and (Path(jobs[i][2]) / "config.yaml").exists())]
        if len(fresh) >= 2:  # a run resumed from its folder continues in a process, as `lifelong run --resume`
            stacked += fresh
    rest = [j for i, j in enumerate(jobs) if i not in set(stacked)]
    if console is not None and stacked:
        why = sorted({reasons[i] for i in reasons})
        console.print(f"vectorised: {len(stacked)} run(s) train as stacks in this process (same numbers as separate "
                      f"runs); {len(rest)} in worker processes" + (f" ({'; '.join(why)})" if why else "") + ".")
    return [jobs[i] for i in stacked], rest


def _run_vectorised(jobs, overwrite: bool, index_root: str, console: Any) -> list[tuple[str, bool, str | None, float]]:
    from lifelong.vectorized import run_vectorized

    cfgs = [ExperimentConfig.model_validate(data).single() for _, data, _ in jobs]
    status = console.status(f"training {len(jobs)} runs as stacks...") if console is not None else None
    if status is not None:
        status.start()
    try:
        report = run_vectorized(cfgs, [p for _, _, p in jobs], overwrite=overwrite, index_root=index_root)
    finally:
        if status is not None:
            status.stop()
    return [(n, ok, err, secs) for (n, _, _), (ok, err, secs) in zip(jobs, report)]


#: the executors a grid can run on (``lifelong compare --executor``)
EXECUTORS = ("process", "ray")


def dispatch(jobs: list[tuple[str, dict[str, Any], str]], *, executor: str, workers: int, address: str | None,
             resume: bool, overwrite: bool, index_root: str, progress: bool,
             console: Any = None) -> list[tuple[str, bool, str | None, float]]:
    """Run the grid's jobs ``(name, config data, folder)`` on an executor; one ``(name, ok, error, seconds)`` each.

    The one place where jobs meet an executor: Ray, this process (one worker),
    or a pool of worker processes.
    """
    if executor == "ray":
        return _run_ray(jobs, workers, address, resume, overwrite, index_root, progress, console)
    if workers == 1:
        return _run_inline(jobs, resume, overwrite, index_root, progress, console)
    return _run_pool(jobs, workers, resume, overwrite, index_root, progress, console)


class _GridProgress:
    """The parent's view of a grid: an overall bar plus one bar per running run."""

    def __init__(self, total: int, enabled: bool, console: Any = None):
        self.enabled = enabled
        self.bars: dict[str, Any] = {}
        if not enabled:
            return
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TimeElapsedColumn(), console=console, transient=False)
        self.progress.start()
        self.overall = self.progress.add_task("[bold]runs done", total=total)

    def update(self, msg: tuple) -> None:
        if not self.enabled:
            return
        name, task, n_tasks, step, total, _ = msg
        desc = f"  {name} · task {task + 1}/{n_tasks}"
        if name not in self.bars:
            self.bars[name] = self.progress.add_task(desc, total=max(total, 1), completed=step)
        else:
            self.progress.update(self.bars[name], description=desc, total=max(total, 1), completed=step)

    def done(self, name: str, ok: bool) -> None:
        if not self.enabled:
            return
        if name in self.bars:
            self.progress.remove_task(self.bars.pop(name))
        self.progress.advance(self.overall)
        if not ok:
            self.progress.console.print(f"[red]run {name} failed[/red]")

    def close(self) -> None:
        if self.enabled:
            self.progress.stop()


def _drain(queue: Any, view: _GridProgress) -> None:
    import queue as _q

    while True:
        try:
            view.update(queue.get_nowait())
        except _q.Empty:
            return
        except (EOFError, OSError):  # pragma: no cover - the queue closed under us
            return


def _run_inline(jobs, resume, overwrite, index_root, progress, console):
    import queue as _q

    if console is not None:
        console.print(f"one process: {len(jobs)} run(s) in turn with {_torch_threads()} torch thread(s) "
                      f"on {available_cores()} available core(s).")
    view = _GridProgress(len(jobs), progress, console)
    worker = WorkerContext(queue=_q.Queue())
    results = []
    worker.warm_up()
    try:
        for n, data, p in jobs:
            results.append(grid_worker(n, data, p, resume, overwrite, index_root, threads=_torch_threads(),
                                       queue=worker.queue))
            _drain(worker.queue, view)
            view.done(n, results[-1][1])
    finally:
        view.close()
    return results


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()


class _PipeQueue:
    """The progress 'queue' of a pool worker: messages go up the worker's own pipe."""

    def __init__(self, conn: Any):
        self.conn = conn

    def put_nowait(self, msg: tuple) -> None:
        self.conn.send(("progress", msg))


def _pool_worker(conn: Any, threads: int) -> None:
    """A pool worker process: runs the jobs its pipe brings, one at a time, until told to stop (None)."""
    try:
        worker = WorkerContext(queue=_PipeQueue(conn))  # the warm-up sends no progress
        worker.start(threads)
        while True:
            try:
                job = conn.recv()
            except (EOFError, OSError):
                return
            if job is None:
                return
            conn.send(("result", grid_worker(*job, threads, queue=worker.queue)))
    except (KeyboardInterrupt, BrokenPipeError):  # Ctrl-C reaches the workers too; the parent reports it
        return


def _death(exitcode: int | None) -> str:
    import signal

    if exitcode is not None and exitcode < 0:
        try:
            return f"killed by signal {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit status {exitcode}"


def _mark_dead(name: str, path: str, index_root: str, why: str) -> None:
    """A run whose worker died: its log says why, the index says failed (results so far stay on disk)."""
    from lifelong.runs.index import update_run

    p = Path(path)
    if p.is_dir():
        RunLog(p / "log.txt").write(f"run failed: {why}; results so far are kept; continue with: "
                                    "lifelong compare CONFIG --out FOLDER --resume")
    with contextlib.suppress(LifelongError):
        update_run(index_root, p, status="failed")


def _run_pool(jobs, workers, resume, overwrite, index_root, progress, console):
    """Run the jobs on ``workers`` processes, each fed through its own pipe.

    A worker that dies (SIGKILL, out of memory) fails only the run it was
    running: that run is marked failed with the reason, a new worker takes its
    place, and the other runs go on. (A shared queue or executor would be left
    broken by the dead process and fail every run.)
    """
    import multiprocessing as mp
    from multiprocessing.connection import wait

    ctx = mp.get_context("spawn")  # fork after torch has started threads can deadlock
    workers = min(workers, len(jobs))
    threads = worker_threads(workers)
    if console is not None:
        console.print(f"process pool: {workers} worker(s) x {threads} torch thread(s) each, for {len(jobs)} run(s) "
                      f"on {available_cores()} available core(s) (--workers N to change).")
    view = _GridProgress(len(jobs), progress, console)
    todo = list(jobs)
    paths = {n: p for n, _, p in jobs}
    results: list[tuple[str, bool, str | None, float]] = []
    live: dict[Any, list] = {}  # parent end of the pipe -> [process, name of the run it runs or None]

    def start() -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_pool_worker, args=(child, threads), daemon=True)
        proc.start()
        child.close()  # only the worker holds its end: its death closes the pipe
        live[parent] = [proc, None]

    def finish(res: tuple) -> None:
        results.append(res)
        view.done(res[0], res[1])

    try:
        for _ in range(min(workers, len(todo))):
            start()
        while todo or any(w[1] is not None for w in live.values()):
            for conn, w in list(live.items()):
                if w[1] is None and todo:
                    n, data, p = todo.pop(0)
                    try:
                        conn.send((n, data, p, resume, overwrite, index_root))
                        w[1] = n
                    except (OSError, EOFError):
                        todo.insert(0, (n, data, p))  # the worker died idle: its replacement takes the job
            for conn in wait(list(live), timeout=0.5):
                proc, running = live[conn]
                try:
                    kind, payload = conn.recv()
                except (EOFError, OSError):  # the worker died
                    proc.join(timeout=10)
                    del live[conn]
                    conn.close()
                    if running is not None:
                        why = f"its worker process (PID {proc.pid}) died, {_death(proc.exitcode)}"
                        _mark_dead(running, paths[running], index_root, why)
                        finish((running, False, f"{why}; the other runs went on. Results so far are kept; "
                                "continue it with compare --resume.", 0.0))
                    if todo:
                        start()
                    continue
                if kind == "progress":
                    view.update(payload)
                else:
                    live[conn][1] = None
                    finish(payload)
    finally:
        view.close()
        for conn, (proc, _) in live.items():
            with contextlib.suppress(Exception):
                conn.send(None)
        for conn, (proc, _) in live.items():
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
            with contextlib.suppress(Exception):
                conn.close()
    return results


def _probe_address(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a Ray address nothing listens at (``ray.init`` would retry for minutes)."""
    import re
    import socket

    m = re.fullmatch(r"(?:ray://)?\[?([^\]]+?)\]?:(\d+)", address.strip())
    if m is None:  # 'auto', 'local' or another form Ray understands: let Ray judge it
        return
    host, port = m.group(1), int(m.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise LifelongError(f"cannot start or reach the Ray cluster at {address}: nothing answers there "
                            f"({exc.strerror or exc}). Check --address (host:port of the head node, e.g. "
                            "10.0.0.5:6379), or use --executor process.") from None


def _run_ray(jobs, workers, address, resume, overwrite, index_root, progress, console):
    from lifelong.errors import require

    ray = require("ray", "distributed", "--executor ray")
    started = False
    if not ray.is_initialized():
        kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False, configure_logging=False)
        if address:
            _probe_address(address)
            kwargs["address"] = address
        else:
            kwargs["num_cpus"] = workers
        try:
            ray.init(**kwargs)
        except Exception as exc:  # noqa: BLE001 - Ray's own errors vary by version
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise LifelongError(f"cannot start or reach {where}: {exc}".rstrip(".") + ". Use --executor process, "
                                "or check --address.") from None
        started = True
    view = _GridProgress(len(jobs), progress, console)
    results = []
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(grid_worker)
        refs = {remote.remote(n, data, p, resume, overwrite, index_root, 1): n for n, data, p in jobs}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1, timeout=0.5)
            for ref in done:
                try:
                    res = ray.get(ref)
                except Exception as exc:  # noqa: BLE001 - a Ray task or worker failed
                    res = (refs[ref], False, f"Ray task failed: {exc}", 0.0)
                results.append(res)
                view.done(res[0], res[1])
    finally:
        view.close()
        if started:
            ray.shutdown()
    return results

