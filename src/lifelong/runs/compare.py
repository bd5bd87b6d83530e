"""Comparison tables: runs grouped by a label (strategy, curriculum, ...) across seeds.

Each group becomes one row with the mean ± standard deviation of average
accuracy, forgetting, BWT, FWT and wall time over its runs. The standard
deviation is the sample one (``ddof=1``, the usual "± std over seeds"); with
a single run it is not shown. A metric that is undefined for a run (None,
e.g. forgetting of joint training) is left out of that metric's mean; if it
is undefined for every run of the group the cell shows "—". Runs that record a
general validation loss (a general-data mixture, see
:mod:`lifelong.curriculum.mixture`) add two columns: the last general and mean
domain validation losses.

Render the rows with :func:`rich_table` (terminal), :func:`markdown_table`
or :func:`html_table`.
"""

from __future__ import annotations

import html
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from lifelong.assessment.metrics import summarize
from lifelong.engine.result import RunResult
from lifelong.runs.io import PathLike

#: (metric key, column title, decimals, unit suffix) of the comparison columns
COLUMNS: tuple[tuple[str, str, int, str], ...] = (
    ("average_accuracy", "avg accuracy", 3, ""),
    ("forgetting", "forgetting", 3, ""),
    ("bwt", "BWT", 3, ""),
    ("fwt", "FWT", 3, ""),
    ("wall_seconds", "wall time", 1, " s"),
)
#: columns shown only when some run has them: the last general and (mean) domain validation losses that a
#: general-data mixture records every ``eval_every`` steps (``general/val_loss``, ``domain/<i>/val_loss``)
LOSS_COLUMNS: tuple[tuple[str, str, int, str], ...] = (
    ("general_val_loss", "general val loss", 3, ""),
    ("domain_val_loss", "domain val loss", 3, ""),
)


def validation_losses(schedule_log: Sequence[dict[str, Any]]) -> dict[str, float]:
    """The last ``general/val_loss`` of a run's schedule log and the mean of that row's domain losses
    (empty without a general validation split)."""
    last = next((r for r in reversed(schedule_log) if r.get("general/val_loss") is not None), None)
    if last is None:
        return {}
    out = {"general_val_loss": float(last["general/val_loss"])}
    domain = [float(v) for k, v in last.items() if k.startswith("domain/") and k.endswith("/val_loss")
              and v is not None]
    if domain:
        out["domain_val_loss"] = statistics.fmean(domain)
    return out


@dataclass
class Stat:
    """Mean and sample std over the runs where the metric is defined (``n`` of them)."""

    mean: float | None
    std: float | None
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> "Stat":
        vals = [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
        if not vals:
            return cls(None, None, 0)
        return cls(statistics.fmean(vals), statistics.stdev(vals) if len(vals) > 1 else None, len(vals))

    def format(self, decimals: int = 3, unit: str = "") -> str:
        if self.mean is None:
            return "—"
        text = f"{self.mean:.{decimals}f}"
        if self.std is not None:
            text += f" ± {self.std:.{decimals}f}"
        return text + unit


@dataclass
class ComparisonRow:
    label: str
    runs: int
    seeds: list[Any] = field(default_factory=list)
    stats: dict[str, Stat] = field(default_factory=dict)
    #: the metric columns of the table this row belongs to (:data:`COLUMNS`, plus loss columns when measured)
    columns: tuple[tuple[str, str, int, str], ...] = COLUMNS

    def cells(self, columns: Sequence[tuple[str, str, int, str]] | None = None) -> list[str]:
        """The formatted cells: label, runs, then one per column (of this row's table, or of ``columns``)."""
        cols = self.columns if columns is None else columns
        return [self.label, str(self.runs), *(self.stats[k].format(d, u) for k, _, d, u in cols)]


@dataclass
class RunEntry:
    """One run to compare: its label, result, config and (optionally) its summary and folder."""

    label: str
    result: RunResult
    config: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] | None = None
    path: Path | None = None

    def metrics(self) -> dict[str, Any]:
        if self.summary is not None and all(k in self.summary for k, *_ in COLUMNS):
            base = self.summary
        else:
            base = summarize(self.result)
        losses = validation_losses(self.result.schedule_log or [])
        return {**base, **losses} if losses else base

    @property
    def seed(self) -> Any:
        train = self.config.get("train") if isinstance(self.config.get("train"), dict) else {}
        return self.config.get("seed", train.get("seed"))


#: the default grouping key: a run's grid cell (``grid_point.label``: the strategy plus the values of the grid
#: axes it varies, e.g. ``naive ratio=0.05 rewarm``), and for a run outside such a grid its strategy
CELL = "cell"


def label_of(config: dict[str, Any], by: str | Sequence[str] = CELL, default: str = "run") -> str:
    """The group label of a run: the config value at ``by`` (dotted keys allowed).

    ``cell`` (the default) is the run's grid cell (:data:`CELL`): the seeds of
    one cell of a ``grid:`` form one group and different cells stay apart.
    A section (a mapping such as ``strategy`` or ``curriculum``) gives its
    ``label`` -- the name a grid gives each variant, e.g. ``er[ratio=0.3]``
    and ``er[ratio=0.7]`` for two ratios of one strategy, so they are not
    merged -- or, without one, its ``name``. A list gives its items' labels
    joined with "+". Several keys (``["strategy", "curriculum"]``) are
    joined with " / ". A missing key gives ``default``.
    """
    keys = [by] if isinstance(by, str) else list(by)
    parts = []
    for key in keys:
        if key == CELL:
            point = config.get("grid_point")
            text = point.get("label") if isinstance(point, dict) else None
            text = text or _section_label(config.get("strategy"))
            if text is not None:
                parts.append(text)
            continue
        text = _section_label(config_value(config, key))
        if text is not None:
            parts.append(text)
    return " / ".join(parts) if parts else default


def config_value(config: dict[str, Any] | None, key: str) -> Any:
    """The value at dotted ``key`` (``train.lr``, ``benchmark.params.general.ratio``) of a run's plain
    config data, or None where a part of the key is missing."""
    value: Any = config
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _section_label(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("label") or value.get("name")
    elif isinstance(value, (list, tuple)):
        items = [t for t in map(_section_label, value) if t is not None]
        value = "+".join(items) if items else None
    return None if value is None else str(value)


def compare(entries: Iterable[RunEntry]) -> list[ComparisonRow]:
    """Group ``entries`` by label (in first-seen order) into mean ± std rows."""
    groups: dict[str, list[RunEntry]] = {}
    for e in entries:
        groups.setdefault(e.label, []).append(e)
    metrics = {label: [r.metrics() for r in runs] for label, runs in groups.items()}
    measured = {k for ms in metrics.values() for m in ms for k in m}
    columns = COLUMNS + tuple(c for c in LOSS_COLUMNS if c[0] in measured)
    rows = []
    for label, runs in groups.items():
        ms = metrics[label]
        rows.append(
            ComparisonRow(
                label=label,
                runs=len(runs),
                seeds=[r.seed for r in runs],
                stats={k: Stat.of(m.get(k) for m in ms) for k, *_ in columns},
                columns=columns,
            )
        )
    return rows


def load_entries(run_dirs: Iterable[PathLike], by: str | Sequence[str] = CELL) -> list[RunEntry]:
    """Read run folders into :class:`RunEntry` objects labelled by ``by`` (folder name if absent)."""
    from lifelong.runs.rundir import load_run

    out = []
    for d in run_dirs:
        config, result, summary = load_run(d)
        out.append(RunEntry(label_of(config, by, default=Path(d).name), result, config, summary, Path(d)))
    return out


def compare_dirs(run_dirs: Iterable[PathLike], by: str | Sequence[str] = CELL) -> list[ComparisonRow]:
    """:func:`compare` over run folders."""
    return compare(load_entries(run_dirs, by))


def headers(label: str = "label", columns: Sequence[tuple[str, str, int, str]] = COLUMNS) -> list[str]:
    return [label, "runs", *(title for _, title, *_ in columns)]


def _columns(rows: Sequence[ComparisonRow]) -> tuple[tuple[str, str, int, str], ...]:
    return rows[0].columns if rows else COLUMNS


def rich_table(rows: Sequence[ComparisonRow], title: str | None = None, label: str = "label",
               columns: Sequence[tuple[str, str, int, str]] | None = None):
    """A ``rich.table.Table`` for the terminal, of the rows' columns (or of ``columns``: a terminal is narrower
    than a markdown or HTML table, so the CLI shows the loss columns in a table of their own)."""
    from rich.table import Table

    from rich.markup import escape

    table = Table(title=title)
    cols = _columns(rows) if columns is None else tuple(columns)
    for i, h in enumerate(headers(label, cols)):
        table.add_column(escape(h), justify="left" if i == 0 else "right", no_wrap=i > 0)
    for r in rows:  # escaped: a label such as "er[ratio=0.3]" is not rich markup
        table.add_row(*map(escape, r.cells(cols)))
    return table


def markdown_table(rows: Sequence[ComparisonRow], label: str = "label") -> str:
    """A GitHub-flavoured markdown table."""

    def esc(s: str) -> str:
        return s.replace("|", "\\|")

    hs = headers(label, _columns(rows))
    lines = ["| " + " | ".join(map(esc, hs)) + " |", "|" + "|".join([":---"] + ["---:"] * (len(hs) - 1)) + "|"]
    lines += ["| " + " | ".join(map(esc, r.cells())) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def html_table(rows: Sequence[ComparisonRow], label: str = "label", css_class: str = "compare") -> str:
    """An HTML ``<table>`` (escaped, no inline scripts); numbers right-aligned via CSS class ``num``."""
    hs = headers(label, _columns(rows))
    out = [f'<table class="{css_class}">', "<thead><tr>"]
    out += [f'<th{"" if i == 0 else " class=num"}>{html.escape(h)}</th>' for i, h in enumerate(hs)]
    out.append("</tr></thead><tbody>")
    for r in rows:
        cells = r.cells()
        out.append("<tr>" + "".join(
            f'<td{"" if i == 0 else " class=num"}>{html.escape(c)}</td>' for i, c in enumerate(cells)
        ) + "</tr>")
    out.append("</tbody></table>")
    return "\n".join(out)
