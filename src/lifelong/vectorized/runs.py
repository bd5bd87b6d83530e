"""Configs in, results and run folders out: the vectorised counterpart of ``lifelong run``.

:func:`train_vectorized` builds every config exactly as
:func:`lifelong.experiment.build_experiment` does (same seeding, so the same
initial weights and data split) and trains each group of stackable runs as
one computation. :func:`run_vectorized` also writes each run's own folder,
as ``lifelong run`` would: ``config.yaml``, ``metrics.json`` and CSVs,
``log.txt``, ``checkpoints/last.pt`` at every task end (in the sequential
loop's format: ``lifelong run --resume`` continues such a run exactly) and
the run index.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import Any, Sequence

from lifelong.engine.result import RunResult
from lifelong.errors import ConfigError, LifelongError


def _build(cfg: Any):
    from lifelong.experiment import build_experiment
    from lifelong.vectorized.trainer import RunSpec, capture_rng

    built = build_experiment(cfg)
    return RunSpec(built.stream, built.model, built.recipe, built.train, rng=capture_rng())


def _split_by_shape(specs: list[Any], members: list[int]) -> list[list[int]]:
    """Runs of one config group whose built streams differ in shape go to separate stacks."""
    from lifelong.vectorized.support import data_signature

    parts: dict[tuple, list[int]] = {}
    for i in members:
        parts.setdefault(data_signature(specs[i].stream, specs[i].recipe), []).append(i)
    return list(parts.values())


def train_vectorized(configs: Sequence[Any], *, specs: list[Any] | None = None) -> list[RunResult]:
    """Train single-run configs, each group of stackable runs as one batched computation.

    Returns one :class:`RunResult` per config, in order, equal to what
    :func:`lifelong.engine.train_stream` gives for that config and seed.
    Configs that cannot train vectorised raise a :class:`ConfigError` listing
    them with the reason (ask :func:`~lifelong.vectorized.vectorizable` first
    and run those in processes). A run that diverges (NaN loss) raises its
    :class:`~lifelong.errors.TrainingError` after the others finished; each
    run's result, partial or complete, is in the error's ``results``.
    """
    from lifelong.vectorized.support import vectorizable
    from lifelong.vectorized.trainer import train_stacked

    configs = [c.single() for c in configs]
    groups, reasons = vectorizable(configs)
    if reasons:
        listed = "; ".join(f"#{i} ({configs[i].strategy_label}, seed {configs[i].seed}): {why}"
                           for i, why in sorted(reasons.items()))
        raise ConfigError(f"these runs cannot train vectorised: {listed}. Run them with `lifelong run` or in "
                          "processes (lifelong compare does so by itself).")
    specs = specs if specs is not None else [_build(c) for c in configs]
    out: list[Any] = [None] * len(configs)
    for members in groups:
        for part in _split_by_shape(specs, members):
            for i, res in zip(part, train_stacked([specs[i] for i in part])):
                out[i] = res
    errors = [r for r in out if isinstance(r, BaseException)]
    results = [getattr(r, "result", None) if isinstance(r, BaseException) else r for r in out]
    if errors:
        err = errors[0]
        err.results = results  # type: ignore[attr-defined]
        raise err
    return results


def run_vectorized(configs: Sequence[Any], out_dirs: Sequence[str | os.PathLike], *, overwrite: bool = False,
                   index_root: str | os.PathLike | None = None,
                   callbacks: Sequence[Sequence[Any]] | None = None) -> list[tuple[bool, str | None, float]]:
    """Train ``configs`` vectorised, each into its own run folder ``out_dirs[i]``, as ``lifelong run`` would.

    Returns ``(ok, error, seconds)`` per run (``seconds``: the run's share of
    its stack's training time). A run that fails (NaN loss) keeps its results so
    far and is marked failed in the index, like a sequential run; the others
    are not affected. Every config must pass :func:`vectorizable`.
    ``callbacks[i]`` are extra engine callbacks of run i (e.g. a progress
    display); they see run i's own context, as in ``train_stream``.
    """
    from lifelong.experiment import CHECKPOINT, RunLog
    from lifelong.runs import RunDir, register_run
    from lifelong.runs.io import torch_save_atomic
    from lifelong.vectorized.trainer import train_stacked

    if len(configs) != len(out_dirs):
        raise ConfigError(f"{len(configs)} configs but {len(out_dirs)} output folders; give one folder per run.")
    from lifelong.vectorized.support import vectorizable

    configs = [c.single() for c in configs]
    groups, reasons = vectorizable(configs)
    if reasons:
        raise ConfigError("these runs cannot train vectorised: "
                          + "; ".join(f"{out_dirs[i]}: {why}" for i, why in sorted(reasons.items())))
    specs, dirs, logs, roots = [], [], [], []
    for cfg, out in zip(configs, out_dirs):
        spec = _build(cfg)  # build first: a bad parameter must not leave a half-made run folder
        rd = RunDir(Path(out), overwrite=overwrite)
        cfg = cfg.model_copy(update={"out": str(rd.path)})
        resolved = cfg.resolved()
        rd.write_config(resolved)
        root = Path(index_root) if index_root is not None else rd.path.resolve().parent
        log = RunLog(rd.log_path)
        log.write(f"starting run {rd.name}: strategy {cfg.strategy_label}, benchmark {cfg.benchmark.name}, "
                  f"seed {cfg.seed} (vectorised with the other runs of its group)")
        _index(register_run, root, rd.path, resolved, status="running", name=rd.name, log=log)
        spec.checkpointer = _checkpointer(rd, log, torch_save_atomic, CHECKPOINT)
        spec.callbacks = [log, *(callbacks[len(specs)] if callbacks is not None else ())]
        specs.append(spec)
        dirs.append(rd)
        logs.append(log)
        roots.append(root)
    report: list[Any] = [None] * len(configs)
    for members in groups:
        for part in _split_by_shape(specs, members):
            for i in part:
                logs[i].write(f"trained as one stack of {len(part)} runs")
            t_stack = time.perf_counter()
            try:
                outcomes = train_stacked([specs[i] for i in part])
            except KeyboardInterrupt as exc:  # keep every run's results so far, as `lifelong run` does
                partial = getattr(exc, "results", [None] * len(part))
                for i in range(len(configs)):
                    if report[i] is None:
                        _stopped(dirs[i], logs[i], roots[i], partial[part.index(i)] if i in part else None)
                raise
            share = (time.perf_counter() - t_stack) / len(part)
            for i, res in zip(part, outcomes):  # each stack's runs are finished as soon as it is done
                report[i] = _finish(dirs[i], logs[i], roots[i], res, share)
    return report


def _finish(rd: Any, log: Any, root: Any, res: Any, share: float) -> tuple[bool, str | None, float]:
    """Write a trained run's results and index entry, as ``lifelong run`` does at its end."""
    from lifelong.runs import update_run

    if isinstance(res, BaseException):
        partial = getattr(res, "result", None)
        with contextlib.suppress(LifelongError):
            metrics = rd.write_result(partial) if partial is not None else None
            _index(update_run, root, rd.path, status="failed", summary=metrics, log=log)
        log.write(f"run stopped ({type(res).__name__}: {res}); results so far are in {rd.metrics_path.name}; "
                  f"continue with: lifelong run --resume {rd.path}")
        return False, str(res), share
    metrics = rd.write_result(res)
    _index(update_run, root, rd.path, status="complete", summary=metrics, log=log)
    log.write(f"done: average accuracy {metrics.get('average_accuracy')}, forgetting {metrics.get('forgetting')}")
    return True, None, share


def _stopped(rd: Any, log: Any, root: Any, result: RunResult | None) -> None:
    """A run interrupted by the user: results so far written, the index says stopped."""
    from lifelong.runs import update_run

    metrics = None
    if result is not None:
        with contextlib.suppress(LifelongError):
            metrics = rd.write_result(result)
    _index(update_run, root, rd.path, status="stopped", summary=metrics, log=log)
    log.write(f"run stopped (interrupted by the user); continue with: lifelong run --resume {rd.path}")


def _checkpointer(rd: Any, log: Any, save: Any, name: str):
    def checkpointer(state: dict[str, Any]) -> None:
        save(state, rd.checkpoint_dir / name)
        if state["step"] == 0:  # a task end: results so far go to disk too
            rd.write_result(RunResult.from_dict(state["result"]))
            log.write(f"checkpoint after task {state['phase']} (run step {state['global_step']})")

    return checkpointer


def _index(fn: Any, *args: Any, log: Any = None, **kwargs: Any) -> None:
    """Run-index bookkeeping never costs a run (the index is a cache)."""
    try:
        fn(*args, **kwargs)
    except LifelongError as exc:
        if log is not None:
            log.write(f"warning: run index not updated: {exc}")
