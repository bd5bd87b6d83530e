"""Run experiments from a config: build everything, train, and keep every result.

:func:`run_experiment` is what ``lifelong run`` does (one run into its folder, checkpointed, resumable
from the folder alone with :func:`resume_experiment`; see :mod:`lifelong.experiment.run`).

:func:`run_grid` runs a grid config (``lifelong compare``) in a process pool or
on Ray, each run in its own folder, and returns the comparison rows; a worker
process that dies fails only the run it was running.

Where things live:

=========================  ==============================================================
:mod:`.build`              a run built from its config: ``build_experiment``, ``build_recipe``,
                           ``Built``, ``build_trackers``
:mod:`.run`                running or resuming one run: ``run_experiment``, ``resume_experiment``,
                           the run log, checkpoint keeping, SIGTERM, resume overrides, start-up checks
:mod:`.grid`               grids: ``run_grid``, its executors (in process, process pool, Ray)
                           behind ``dispatch``, the worker context and the progress display
=========================  ==============================================================
"""

from lifelong.experiment.build import Built, build_experiment, build_recipe, build_trackers
from lifelong.experiment.grid import (
    EXECUTORS,
    GridOutcome,
    GridRun,
    WorkerContext,
    default_workers,
    dispatch,
    grid_label,
    grid_worker,
    run_grid,
)
from lifelong.experiment.run import (
    CHECKPOINT,
    RESUMABLE_OVERRIDES,
    STEP_CHECKPOINT,
    Checkpoints,
    RunInterrupted,
    RunLog,
    ScoreCache,
    describe_checkpoints,
    kept_checkpoints,
    resume_experiment,
    run_experiment,
    warn,
)

__all__ = [
    "Built", "build_experiment", "build_recipe", "build_trackers",
    "EXECUTORS", "GridOutcome", "GridRun", "WorkerContext", "default_workers", "dispatch", "grid_label",
    "grid_worker", "run_grid",
    "CHECKPOINT", "RESUMABLE_OVERRIDES", "STEP_CHECKPOINT", "Checkpoints", "RunInterrupted", "RunLog", "ScoreCache",
    "describe_checkpoints", "kept_checkpoints", "resume_experiment", "run_experiment", "warn",
]
