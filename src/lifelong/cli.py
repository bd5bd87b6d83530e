"""The ``lifelong`` command line.

    lifelong demo [--out DIR]                     the built-in comparison (split-digits, 5 strategies x 3 seeds)
    lifelong run CONFIG.yaml --out DIR            one experiment (or: lifelong run --resume RUN_DIR)
    lifelong compare CONFIG.yaml --out DIR        a grid (lists of strategies, curricula, seeds), in parallel
    lifelong report RUN_DIR... --out REPORT.html  a self-contained HTML report
    lifelong list                                 what is available, one line each
    lifelong runs [--root DIR]                    the run index (SQLite), filterable

Errors meant for people (:class:`~lifelong.errors.LifelongError`) print one
red line on stderr and exit with status 2, without a traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Sequence

import click

from lifelong.errors import ConfigError, LifelongError

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

#: the built-in comparison of ``lifelong demo``
DEMO_STRATEGIES = ("naive", "ewc", "lwf", "er", "der++")


def demo_config(seeds: int = 3, epochs: int = 3) -> dict[str, Any]:
    """The ``lifelong demo`` grid: class-incremental split-digits, five strategies, ``seeds`` seeds."""
    return {
        "name": "demo",
        "benchmark": {"name": "split-digits", "params": {"scenario": "class"}},
        "model": {"name": "mlp", "params": {"hidden": [128]}},
        "train": {"epochs": epochs, "batch_size": 32, "optimizer": "sgd", "lr": 0.05, "momentum": 0.9},
        "strategy": list(DEMO_STRATEGIES),
        "seeds": list(range(seeds)),
        "device": "cpu",
        # learning curves (every task assessed every 5 steps): the report's curves and steps to target
        "evaluation": {"eval_every": 5},
    }


# ----------------------------------------------------------------------------- helpers


def _console(stderr: bool = False):
    """A rich console; 120 columns when the output is not a terminal (pipes, logs, CI)."""
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    wide = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, highlight=False, width=120 if wide else None)


class LifelongGroup(click.Group):
    """Turns LifelongError into one red line and exit status 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LifelongError as exc:
            _fail(str(exc))
        except KeyboardInterrupt as exc:
            from rich.markup import escape

            # a stopped run says where its results are and how to continue it
            _console(stderr=True).print(f"[red]{escape(str(exc) or 'interrupted')}[/red]", soft_wrap=True)
            sys.exit(130)


def _fail(message: str) -> None:
    from rich.markup import escape

    _console(stderr=True).print(f"[bold red]error:[/bold red] [red]{escape(message)}[/red]", soft_wrap=True)
    sys.exit(2)


def _flag_overrides(**flags: Any) -> list[str]:
    """Typed flags -> ``section.field=value`` overrides (flags given on the command line only)."""
    mapping = {"benchmark": "benchmark.name", "model": "model.name", "strategy": "strategy", "epochs": "train.epochs",
               "steps": "train.steps", "lr": "train.lr", "batch_size": "train.batch_size", "seed": "seed",
               "device": "device", "checkpoint_every": "train.checkpoint_every",
               "eval_every": "evaluation.eval_every", "curriculum": "curriculum.name",
               "scorer": "curriculum.scorer", "review": "review.name"}
    out = []
    for key, value in flags.items():
        if value is not None:
            out.append(f"{mapping[key]}={value}")
    return out


def _load(config_path: str | None, overrides: Sequence[str]):
    from lifelong.config import apply_overrides, read_yaml, validate

    data = read_yaml(config_path) if config_path else {}
    if config_path and not data:
        raise ConfigError(f"config file {config_path} is empty. A config says at least what to learn and how, e.g.\n"
                          "  benchmark: {name: split-digits}\n  model: {name: mlp}\n  train: {epochs: 1}\n"
                          "  strategy: naive\n(see examples/ and `lifelong list`).")
    data = apply_overrides(data, overrides)
    return validate(data, source=config_path)


def _print_table(rows, title: str, console=None, label: str = "strategy") -> None:
    from lifelong.runs.compare import COLUMNS, rich_table

    console = console or _console()
    console.print(rich_table(rows, title=title, label=label, columns=COLUMNS))
    losses = [c for c in (rows[0].columns if rows else ()) if c not in COLUMNS]
    if losses:  # a table of their own: nine columns do not fit a terminal
        console.print(rich_table(rows, title="validation losses (last evaluation)", label=label, columns=losses))


def _report_grid(outcome, out: Path, title: str, console, again: str | None = None) -> None:
    from lifelong.runs.compare import markdown_table
    from lifelong.runs.io import write_text_atomic
    from lifelong.runs.report import build_report

    rows, entries = outcome.rows()
    from rich.markup import escape

    for r in outcome.failed:
        console.print(f"[red]run {escape(r.name)} failed:[/red] {escape(str(r.error))}", soft_wrap=True)
    resume = f" Finished runs are kept; continue the others with: {again} --resume" if again else ""
    if not entries:
        raise LifelongError(f"no run of the grid finished; see the log.txt files under {out}.{resume}")
    by = "grid cell" if any(e.config.get("grid_point") for e in entries) else "strategy"
    _print_table(rows, title, console, label=by)
    write_text_atomic(out / "comparison.md", markdown_table(rows, label=by))
    report = write_text_atomic(out / "report.html", build_report(entries, title=title, by_name=by))
    console.print(f"report: {report}   runs: {out}   index: {out / 'index.sqlite'}")
    if outcome.failed:
        console.print(f"{len(outcome.failed)} of {len(outcome.runs)} run(s) did not finish; the table shows the "
                      f"others.{resume}", soft_wrap=True, markup=False)
        sys.exit(1)


# ----------------------------------------------------------------------------- commands


@click.group(cls=LifelongGroup, context_settings=CONTEXT)
@click.version_option(package_name="lifelong")
def main() -> None:
    """lifelong: curricula, review scheduling, consolidation and forgetting metrics for continual learning."""


@main.command(context_settings=CONTEXT)
@click.option("--out", default="runs/demo", show_default=True, type=click.Path(file_okay=False),
              help="Folder for the runs, the comparison table and the HTML report.")
@click.option("--seeds", default=3, show_default=True, type=click.IntRange(1), help="Seeds per strategy.")
@click.option("--epochs", default=3, show_default=True, type=click.IntRange(1), help="Epochs per task.")
@click.option("--workers", default=0, type=click.IntRange(0), help="Worker processes (0: one per core).")
@click.option("--overwrite/--no-overwrite", default=True, show_default=True,
              help="Replace the runs of an earlier demo in --out.")
@click.option("--quiet", is_flag=True, help="No progress display.")
def demo(out: str, seeds: int, epochs: int, workers: int, overwrite: bool, quiet: bool) -> None:
    """Naive, EWC, LwF, experience replay and DER++ on class-incremental split-digits over 3 seeds.

    Prints average accuracy ± std, forgetting, backward transfer and wall time
    per strategy, and writes an HTML report. No network needed.
    """
    import time

    from lifelong.config import validate
    from lifelong.experiment import run_grid

    console = _console()
    grid = validate(demo_config(seeds, epochs), source="(demo)")
    n = len(grid.expand())
    console.print(f"[bold]lifelong demo[/bold]: {len(DEMO_STRATEGIES)} strategies x {seeds} seed(s) = {n} runs on "
                  "class-incremental split-digits (5 tasks of 2 digits)")
    t0 = time.perf_counter()
    outcome = run_grid(grid, out, workers=workers or None, overwrite=overwrite, progress=not quiet, console=console)
    _report_grid(outcome, Path(out), f"split-digits (class-incremental), {seeds} seed(s)", console)
    console.print(f"total {time.perf_counter() - t0:.1f} s")


_common_flags = [
    click.option("--set", "overrides", multiple=True, metavar="FIELD=VALUE",
                 help="Override a config field, e.g. --set train.lr=0.1 --set benchmark.params.n_tasks=3 (repeatable)."),
    click.option("--benchmark", default=None, help="benchmark.name"),
    click.option("--model", default=None, help="model.name"),
    click.option("--strategy", default=None, help="strategy (a name, or a+b to compose)"),
    click.option("--curriculum", default=None, help="curriculum.name: a schedule (uniform, linear, self-paced...)"),
    click.option("--scorer", default=None, help="curriculum.scorer: a difficulty scorer (given, loss, transfer...)"),
    click.option("--review", default=None, help="review.name: a review schedule (replay, spaced-review...)"),
    click.option("--epochs", default=None, type=int, help="train.epochs"),
    click.option("--steps", default=None, type=int, help="train.steps (per task; replaces epochs)"),
    click.option("--lr", default=None, type=float, help="train.lr"),
    click.option("--batch-size", default=None, type=int, help="train.batch_size"),
    click.option("--seed", default=None, type=int, help="seed"),
    click.option("--device", default=None, help="device: auto, cpu, cuda, cuda:N, mps"),
    click.option("--checkpoint-every", default=None, type=int, help="train.checkpoint_every (steps)"),
    click.option("--eval-every", default=None, type=int, help="evaluation.eval_every (steps)"),
]


def _with_common(fn):
    for deco in reversed(_common_flags):
        fn = deco(fn)
    return fn


@main.command(context_settings=CONTEXT)
@click.argument("config", required=False, type=click.Path())
@click.option("--out", default=None, type=click.Path(), help="Run folder (default: 'out' of the config).")
@click.option("--resume", "resume", is_flag=False, flag_value="", default=None, metavar="[RUN_DIR]",
              help="Continue an interrupted run from its folder (its config.yaml and last checkpoint).")
@click.option("--from-checkpoint", "from_checkpoint", default=None, type=click.IntRange(0), metavar="STEP",
              help="With --resume: continue from the kept checkpoint of run step STEP instead of the newest "
                   "(checkpoints/step-STEP.pt; later ones are dropped). The run's log and error messages list them.")
@click.option("--overwrite", is_flag=True, help="Delete an existing run folder and start again.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_with_common
def run(config: str | None, out: str | None, resume: str | None, from_checkpoint: int | None, overwrite: bool,
        quiet: bool, overrides: tuple[str, ...], **flags: Any) -> None:
    """Run one experiment from CONFIG (YAML) into a run folder.

    The folder gets the resolved config.yaml, metrics.json, the accuracy matrix
    and learning curves as CSV, log.txt and checkpoints/ (the newest
    checkpoints.keep of them, default 3; last.pt is the newest). Ctrl-C or
    SIGTERM stops after saving; `lifelong run --resume RUN_DIR` continues from
    the last checkpoint, `--resume RUN_DIR --from-checkpoint STEP` from an
    earlier one (e.g. before a run diverged). One process writes a run folder
    at a time: a second is refused, naming the first.
    """
    from lifelong.experiment import run_experiment

    console = _console()
    extra = list(overrides) + _flag_overrides(**flags)
    if config and Path(config).is_dir():  # `lifelong run RUN_DIR --resume` reads as well as --resume RUN_DIR
        if resume is None:
            raise ConfigError(f"{config} is a folder, not a YAML config. To continue the run in it: "
                              f"lifelong run --resume {config}")
        if resume and Path(resume) != Path(config):
            raise ConfigError(f"--resume {resume} and {config} name different folders; give one.")
        config, resume = None, config
    if resume is not None:
        run_dir = resume or out
        if not run_dir:
            raise ConfigError("--resume needs the run folder: lifelong run --resume RUN_DIR (or --out RUN_DIR --resume).")
        if out and resume and Path(out) != Path(resume):
            raise ConfigError(f"--resume {resume} and --out {out} name different folders; give one.")
        if overwrite:
            raise ConfigError("--resume and --overwrite contradict each other: pass one.")
        cfg = _load(config, extra) if config else None
        result, metrics = run_experiment(cfg, run_dir, resume=True, progress=not quiet, console=console,
                                         resume_overrides=extra if not config else (),
                                         from_checkpoint=from_checkpoint)
    else:
        if from_checkpoint is not None:
            raise ConfigError("--from-checkpoint is for a resumed run: lifelong run --resume RUN_DIR "
                              f"--from-checkpoint {from_checkpoint}.")
        if not config:
            raise ConfigError("give a CONFIG.yaml (see examples/), or --resume RUN_DIR to continue a run.")
        cfg = _load(config, extra)
        result, metrics = run_experiment(cfg, out, overwrite=overwrite, progress=not quiet, console=console)
        run_dir = out or cfg.out
    from lifelong.engine.distributed import is_main_process

    if is_main_process():  # under torchrun only rank 0 reports
        _print_run(metrics, Path(run_dir), console)


def _print_run(metrics: dict[str, Any], run_dir: Path, console) -> None:
    from rich.table import Table

    t = Table(title=f"run {run_dir}")
    for col in ("average accuracy", "forgetting", "BWT", "FWT", "wall time"):
        t.add_column(col, justify="right")

    def f(v: Any, unit: str = "") -> str:
        return "—" if v is None else f"{v:.3f}{unit}"

    t.add_row(f(metrics.get("average_accuracy")), f(metrics.get("forgetting")), f(metrics.get("bwt")),
              f(metrics.get("fwt")), f(metrics.get("wall_seconds"), " s"))
    console.print(t)
    console.print(f"results in {run_dir}")


@main.command(context_settings=CONTEXT)
@click.argument("config", type=click.Path(dir_okay=False))
@click.option("--out", default=None, type=click.Path(file_okay=False),
              help="Folder for the runs (one sub-folder each), index.sqlite, comparison.md and report.html.")
@click.option("--workers", default=0, type=click.IntRange(0), help="Parallel runs (0: one per core).")
@click.option("--executor", type=click.Choice(["process", "ray"]), default="process", show_default=True,
              help="Where runs execute: a local process pool, or Ray (the [distributed] extra).")
@click.option("--address", default=None, help="Address of an existing Ray cluster (default: start a local one).")
@click.option("--resume", is_flag=True, help="Keep finished runs in --out, continue stopped ones, start the rest.")
@click.option("--overwrite", is_flag=True, help="Delete the grid's existing run folders first.")
@click.option("--quiet", is_flag=True, help="No progress display.")
@click.option("--no-vectorize", "no_vectorize", is_flag=True,
              help="Run every cell in its own process instead of training runs of one shape as stacks "
                   "(same numbers either way).")
@_with_common
def compare(config: str, out: str | None, workers: int, executor: str, address: str | None, resume: bool,
            overwrite: bool, quiet: bool, no_vectorize: bool, overrides: tuple[str, ...], **flags: Any) -> None:
    """Run a grid (lists of strategies, curricula or seeds in CONFIG, and its grid: axes) and print the comparison
    table (one row per grid cell, mean ± std over its seeds)."""
    from lifelong.experiment import run_grid

    console = _console()
    grid = _load(config, list(overrides) + _flag_overrides(**flags))
    out = out or grid.out
    if not out:
        raise ConfigError("no output folder: pass --out DIR (or set 'out' in the config).")
    if address and executor != "ray":
        raise ConfigError("--address is for --executor ray.")
    if grid.grid:
        grid.expand()  # every cell validated before anything runs (a bad one is one message naming it)
    console.print(grid.grid_summary(), markup=False)
    outcome = run_grid(grid, out, workers=workers or None, executor=executor, address=address, resume=resume,
                       overwrite=overwrite, progress=not quiet, console=console, vectorize=not no_vectorize)
    _report_grid(outcome, Path(out), grid.name or Path(config).stem, console,
                 again=f"lifelong compare {config} --out {out}")


@main.command(context_settings=CONTEXT)
@click.argument("run_dirs", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="The HTML file to write.")
@click.option("--by", default="cell", show_default=True,
              help="Config field that groups runs: 'cell' is the run's grid cell (strategy plus the values of the "
                   "grid axes it varies; the strategy outside a grid); a section (strategy, curriculum) groups by "
                   "its label, else its name; dotted keys reach inside one (e.g. benchmark.params.general.ratio, "
                   "train.lr).")
@click.option("--title", default="lifelong report", show_default=True)
@click.option("--tolerance", type=float, multiple=True,
              help="Tolerated general-loss increase(s), nats over the pre-trained model's, for the critical mixture "
                   "ratio of the continual pre-training section: --tolerance 0.1 0.5 (default 0.1 and 0.5).")
def report(run_dirs: tuple[str, ...], out: str, by: str, title: str, tolerance: tuple[float, ...]) -> None:
    """Write a self-contained HTML report (heatmaps, forgetting plot, curves, comparison) over RUN_DIRS.

    A folder holding several runs (e.g. a compare --out folder) stands for all of them.
    """
    from lifelong.assessment.study import TOLERANCES
    from lifelong.runs.report import write_report

    tolerances, paths = list(tolerance), []
    for d in run_dirs:  # `--tolerance 0.1 0.5`: the values after the first reach here as arguments
        if tolerances and not Path(d).exists() and _is_number(d):
            tolerances.append(float(d))
        else:
            paths.append(d)
    dirs: list[Path] = []
    for d in map(Path, paths):
        if d.is_file():  # a shell glob such as runs/cmp/* also names index.sqlite, report.html...
            continue
        if not d.is_dir():
            raise ConfigError(f"run folder {d} does not exist.")
        if (d / "metrics.json").exists():
            dirs.append(d)
        else:
            inner = sorted(p for p in d.iterdir() if p.is_dir() and (p / "metrics.json").exists())
            if not inner:
                raise ConfigError(f"{d} is not a run folder (no metrics.json) and holds none.")
            dirs.extend(inner)
    if not dirs:
        raise ConfigError("no run folder among the arguments; give run folders (or a folder holding runs).")
    path = write_report(dirs, out, title=title, by=by, tolerance=tolerances or TOLERANCES)
    _console().print(f"report of {len(dirs)} run(s): {path}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@main.command(name="list", context_settings=CONTEXT)
@click.argument("what", required=False,
                type=click.Choice(["benchmarks", "models", "strategies", "buffers", "consolidators", "schedules",
                                   "scorers", "metrics"]))
def list_(what: str | None) -> None:
    """Benchmarks, models, strategies, buffers, consolidators, schedules, scorers and metrics, one line each."""
    from rich.table import Table

    from lifelong.registry import registries  # not lifelong.config: listing needs no pydantic

    regs = registries()
    names = {"benchmarks": "benchmark", "models": "model", "strategies": "strategy", "buffers": "buffer",
             "consolidators": "consolidator", "schedules": "schedule", "scorers": "scorer", "metrics": "metric"}
    console = _console()
    for title, kind in names.items():
        if what is not None and title != what:
            continue
        reg = regs.get(kind)
        table = Table(title=title, title_justify="left", show_header=False, box=None, pad_edge=False)
        table.add_column("name", style="bold cyan", no_wrap=True)
        table.add_column("summary")
        if reg is None or len(reg) == 0:
            table.add_row("(none installed)", "")
        else:
            for e in reg.entries():
                table.add_row(e.name, e.summary)
        console.print(table)
        console.print()


@main.command(context_settings=CONTEXT)
@click.option("--root", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Results folder holding index.sqlite (the folder that holds the run folders).")
@click.option("--benchmark", default=None, help="Only runs on this benchmark.")
@click.option("--strategy", default=None, help="Only runs of this strategy.")
@click.option("--curriculum", default=None, help="Only runs with this curriculum schedule.")
@click.option("--status", default=None, type=click.Choice(["running", "complete", "stopped", "failed"]))
@click.option("--since", default=None, help="Only runs created on or after this date (e.g. 2025-01-31).")
@click.option("--until", default=None, help="Only runs created on or before this date.")
@click.option("--reindex", "reindex_root", is_flag=False, flag_value="", default=None, metavar="[ROOT]",
              help="Rebuild the index(es) from the run folders under ROOT (default: --root), e.g. after the "
                   "index was damaged or deleted; then show it.")
def runs(root: str, benchmark: str | None, strategy: str | None, curriculum: str | None, status: str | None,
         since: str | None, until: str | None, reindex_root: str | None) -> None:
    """The run index of a results folder (an SQLite file you can also query with SQL).

    Shows ROOT/index.sqlite and the indexes of grids one folder down (e.g. runs/demo/index.sqlite).
    The index is a cache of the run folders: `lifelong runs --reindex ROOT` rebuilds it from them.
    """
    from rich.table import Table

    from lifelong.runs.index import index_path, query

    if reindex_root is not None:
        from lifelong.runs.index import reindex

        root = reindex_root or root
        built, problems = reindex(root)
        err = _console(stderr=True)
        for problem in problems:
            from rich.markup import escape

            err.print(f"[yellow]warning: {escape(problem)}[/yellow]", soft_wrap=True)
        for db, n in built.items():
            _console().print(f"rebuilt {db}: {n} run(s)")
        if not built:
            _console().print(f"no run folders (folders with a config.yaml) under {root}; nothing to index")
    if not Path(root).is_dir():
        raise ConfigError(f"results folder {root} does not exist; pass --root DIR (the folder holding the runs).")
    # the index of ROOT, plus those of grids one level down (lifelong compare --out ROOT/NAME)
    roots = [Path(root)] + sorted(p for p in Path(root).iterdir() if p.is_dir() and index_path(p).exists())
    rows = [r for rt in roots for r in query(rt, benchmark=benchmark, strategy=strategy, since=since, until=until,
                                             curriculum=curriculum, status=status)]
    rows.sort(key=lambda r: (r["created"], r["path"]))
    console = _console()
    table = Table(title=f"runs under {root} (" + ", ".join(str(index_path(r)) for r in roots
                                                           if index_path(r).exists()) + ")")
    for col in ("name", "benchmark", "strategy", "curriculum", "seed", "status", "created", "avg acc", "forgetting",
                "BWT", "wall s"):
        table.add_column(col, justify="right" if col in ("seed", "avg acc", "forgetting", "BWT", "wall s") else "left")

    def f(v: Any, d: int = 3) -> str:
        return "—" if v is None else f"{v:.{d}f}"

    for r in rows:
        table.add_row(str(r["name"]), str(r["benchmark"] or "—"), str(r["strategy"] or "—"),
                      str(r["curriculum"] or "—"), "—" if r["seed"] is None else str(r["seed"]), str(r["status"]),
                      str(r["created"])[:19], f(r["average_accuracy"]), f(r["forgetting"]), f(r["bwt"]),
                      f(r["wall_seconds"], 1))
    console.print(table)
    console.print(f"{len(rows)} run(s)")


if __name__ == "__main__":  # pragma: no cover
    main()
