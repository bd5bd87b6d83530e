"""One self-contained HTML report over a set of run folders.

``write_report(run_dirs, "report.html")`` writes a single file that opens in
any browser with no network and no JavaScript: figures are drawn with
matplotlib's Agg renderer (through :class:`matplotlib.figure.Figure`, so the
global pyplot state and backend are left alone) and embedded as base64 PNG,
the style sheet is inline, fonts are the system's.

Sections (each only when there is something to show):

1. comparison table: runs grouped by label (``by``, default the strategy) over seeds;
2. runs: one line per run folder (seed, tasks, steps, time, memory);
3. accuracy matrices: a colour-coded table (an HTML heatmap) per label (mean over the seeds
   whose matrix has the same shape);
4. accuracy on each task over the stream (the classic forgetting plot), per label;
5. average accuracy after each task, one line per label (band: ± std over seeds);
6. learning curves (``curves.csv``) and training loss (``losses.csv``), first run of each label;
7. schedule state over time (``schedule.csv``): numeric columns grouped by name stem
   (``p/0``, ``p/1``... share a plot; other values in [0, 1] share a "fractions" plot;
   everything else gets its own plot), first run of each label;
8. continual pre-training (runs whose schedule log has ``general/val_loss``): general and domain
   validation loss over tokens against the CPT law fitted on the first 30% of the steps, final
   losses against the general ratio with the mixture law, the critical mixture ratio for each
   ``tolerance`` and the fits' errors (:mod:`lifelong.assessment.study`);
9. extra metrics: ``metrics.json`` keys beyond the standard ones (e.g. perplexity of
   language-model runs), one row per run;
10. notes the runs recorded (why a run stopped, where it resumed from).
"""

from __future__ import annotations

import base64
import html
import io
import math
import re
import warnings
from collections import OrderedDict
from datetime import datetime
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from lifelong.assessment.metrics import (as_matrix, average_accuracy_curve, learned_sets, per_task_forgetting,
                                         per_task_plasticity, steps_to_target)
from lifelong.assessment.study import TOLERANCES
from lifelong.errors import ConfigError
from lifelong.runs.compare import RunEntry, compare, html_table, load_entries
from lifelong.runs.io import PathLike, write_text_atomic
from lifelong.runs.rundir import DERIVED_KEYS, RESULT_KEYS

#: most lines drawn in one axes (the rest are listed in the caption as left out)
MAX_LINES = 20
#: matrices with more tasks than this are drawn without numbers in the cells
MAX_ANNOTATED = 12

CSS = """
:root { color-scheme: light; }
body { font-family: -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif;
       font-size: 16px; line-height: 1.5; color: #1f2328; background: #fff; margin: 0; }
main { max-width: 1120px; margin: 0 auto; padding: 24px 32px 64px; }
h1 { font-size: 1.9em; margin: 0.2em 0 0.1em; }
h2 { font-size: 1.35em; margin-top: 2.2em; padding-bottom: 0.25em; border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1.05em; margin: 1.4em 0 0.4em; }
p.meta, figcaption, p.note { color: #57606a; font-size: 0.92em; }
nav ol { columns: 2; padding-left: 1.3em; margin: 0.6em 0; }
nav a, a { color: #0969da; text-decoration: none; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.93em; }
th, td { border: 1px solid #d0d7de; padding: 5px 10px; vertical-align: top; }
th { background: #f6f8fa; text-align: left; font-weight: 600; }
tbody tr:nth-child(even) { background: #fafbfc; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.scroll { overflow-x: auto; }
figure { margin: 1em 0 1.6em; }
figure img { max-width: 100%; height: auto; border: 1px solid #eaeef2; }
.figgrid { display: flex; flex-wrap: wrap; gap: 0 24px; align-items: flex-start; }
.figgrid figure { flex: 0 1 auto; max-width: calc(50% - 12px); }
table.heatmap { margin: 0.3em 0; font-size: 0.85em; }
table.heatmap td { text-align: center; font-variant-numeric: tabular-nums; min-width: 2.6em; border-color: #fff; }
table.heatmap th { font-weight: 500; white-space: nowrap; }
table.heatmap caption { font-weight: 600; text-align: left; padding-bottom: 0.2em; }
.hm-corner { font-size: 0.8em; color: #57606a; } .hm-none { color: #8c959f; background: #f6f8fa; }
.hm-scale { display: flex; align-items: center; gap: 6px; font-size: 0.8em; color: #57606a; }
.hm-bar { display: inline-block; width: 140px; height: 10px; border-radius: 2px; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.9em;
       background: #f6f8fa; padding: 0.1em 0.3em; border-radius: 4px; }
.badge { display: inline-block; padding: 0 0.5em; border-radius: 1em; font-size: 0.85em; }
.ok { background: #dafbe1; color: #1a7f37; } .stopped { background: #fff1e5; color: #bc4c00; }
"""


# ---------------------------------------------------------------------- figures


def _new_figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _grid_figure(nr: int, nc: int, cell_w: float, cell_h: float, *, sharey: bool = False, suptitle: bool = False,
                 rotated: bool = False):
    """A figure of ``nr`` x ``nc`` axes, and the axes, with margins fixed in inches.

    Constrained layout measures every text of a figure before drawing it, which
    doubled the cost of the report's panel grids (the report's slowest part);
    a panel grid has the same kinds of text in each cell (a title, tick labels,
    axis labels, a legend inside), so fixed margins fit them. Rotated tick
    labels (``rotated``: long rows of labels) have no fixed size: those
    figures keep constrained layout.
    """
    if rotated:
        fig = _new_figure(cell_w * nc, cell_h * nr)
        return fig, fig.subplots(nr, nc, squeeze=False, sharey=sharey)
    from matplotlib.figure import Figure

    width, height = cell_w * nc, cell_h * nr
    fig = Figure(figsize=(width, height), dpi=100)
    axes = fig.subplots(nr, nc, squeeze=False, sharey=sharey)
    left, right, top, bottom = 0.75, 0.2, 0.4 + (0.35 if suptitle else 0.0), 0.55
    gap_w, gap_h = (0.3 if sharey else 0.8), 0.95
    axes_w = (width - left - right - (nc - 1) * gap_w) / nc
    axes_h = (height - top - bottom - (nr - 1) * gap_h) / nr
    fig.subplots_adjust(left=left / width, right=1 - right / width, top=1 - top / height, bottom=bottom / height,
                        wspace=gap_w / axes_w if nc > 1 else 0.0, hspace=gap_h / axes_h if nr > 1 else 0.0)
    return fig, axes


def _png(fig) -> str:
    """Render a figure to a base64 PNG ``<img>`` tag (no metadata, so no URLs in the file)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img alt="figure" src="data:image/png;base64,{data}">'


def _t(s: Any) -> str:
    """Text for matplotlib: '$' would start mathtext."""
    return str(s).replace("$", r"\$")


def _figure(fig, caption: str) -> str:
    return f"<figure>{_png(fig)}<figcaption>{html.escape(caption)}</figcaption></figure>"


def _grid(n: int, max_cols: int = 3) -> tuple[int, int]:
    cols = min(n, max_cols)
    return math.ceil(n / cols), cols


def _row_labels(e: RunEntry) -> list[str]:
    """A short name per matrix row: the tasks newly learned in it ("all" for joint training)."""
    r = e.result
    sets = learned_sets(r.accuracy, r.row_tasks or None)
    out, seen = [], set()
    for s in sets:
        new = [t for t in s if t not in seen]
        seen.update(s)
        if len(s) == len(r.task_names) and len(new) > 1:
            out.append("all")
        else:
            out.append("+".join(_task_name(e, t) for t in new) or "—")
    return out


def _task_name(e: RunEntry, j: int) -> str:
    names = e.result.task_names
    return str(names[j]) if j < len(names) else f"task {j}"


def _mean_matrix(runs: list[RunEntry]) -> tuple[np.ndarray, RunEntry, int]:
    """Mean accuracy matrix over the runs shaped like the first one; (matrix, first run, n averaged)."""
    first = runs[0]
    base = as_matrix(first.result.accuracy)
    same = [as_matrix(r.result.accuracy) for r in runs if r.result.accuracy and np.shape(r.result.accuracy) == base.shape]
    stack = np.stack(same)
    with warnings.catch_warnings():  # an all-missing cell stays NaN (drawn blank) without a warning
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = np.nanmean(stack, axis=0)
    return mean, first, len(same)


def _cell_colour(v: float, vmax: float) -> tuple[str, str]:
    """Background (viridis, as the report's plots) and a readable text colour for one matrix cell."""
    from matplotlib import colormaps

    r, g, b, _ = colormaps["viridis"](min(max(v / vmax, 0.0), 1.0))
    return f"#{round(r * 255):02x}{round(g * 255):02x}{round(b * 255):02x}", ("#fff" if v / vmax < 0.6 else "#000")


def _heatmap_table(mat: np.ndarray, first: RunEntry, label: str, caption: str) -> str:
    """One accuracy matrix as a colour-coded HTML table: a heatmap that can be read, copied and searched
    (and costs no figure rendering); values are written in the cells up to ``MAX_ANNOTATED`` columns."""
    rows, cols = mat.shape
    vmax = max(1.0, float(np.nanmax(mat))) if np.isfinite(mat).any() else 1.0
    numbers = cols <= MAX_ANNOTATED
    head = "".join(f"<th>{html.escape(_task_name(first, j))}</th>" for j in range(cols))
    body = []
    for i, name in enumerate(_row_labels(first)):
        cells = []
        for j in range(cols):
            v = float(mat[i, j])
            if math.isnan(v):
                cells.append('<td class="hm-none">—</td>')
                continue
            bg, fg = _cell_colour(v, vmax)
            cells.append(f'<td style="background:{bg};color:{fg}" title="{v:.4f}">{f"{v:.2f}" if numbers else ""}</td>')
        body.append(f"<tr><th>{html.escape(name)}</th>{''.join(cells)}</tr>")
    stops = ", ".join(_cell_colour(vmax * k / 4, vmax)[0] for k in range(5))
    scale = (f'<div class="hm-scale"><span>0</span><span class="hm-bar" style="background:linear-gradient(to right, '
             f'{stops})"></span><span>{vmax:g} accuracy</span></div>')
    return (f'<figure class="heatmap"><table class="heatmap"><caption>{html.escape(label)}</caption>'
            f'<thead><tr><th class="hm-corner">after learning \\ evaluated on</th>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>{scale}<figcaption>{html.escape(caption)}</figcaption></figure>")


def _heatmaps(groups: "OrderedDict[str, list[RunEntry]]") -> str:
    items = [(label, runs) for label, runs in groups.items() if any(r.result.accuracy for r in runs)]
    if not items:
        return ""
    parts = []
    for label, runs in items:
        runs = [r for r in runs if r.result.accuracy]
        mat, first, n = _mean_matrix(runs)
        what = f"mean of {n} runs" if n > 1 else f"run {first.path.name if first.path else ''}".strip()
        parts.append(_heatmap_table(mat, first, label, f"{label}: accuracy matrix R[i][j] ({what}); "
                                                        "row = after learning, column = task."))
    return '<div class="figgrid">' + "".join(parts) + "</div>"


def _forgetting_plot(groups: "OrderedDict[str, list[RunEntry]]") -> str:
    items = [(label, [r for r in runs if r.result.accuracy]) for label, runs in groups.items()]
    items = [(label, runs) for label, runs in items if runs]
    if not items:
        return ""
    nr, nc = _grid(len(items), 2)
    rotated = any(len(_row_labels(runs[0])) > 6 for _, runs in items)  # the x tick labels turn 45 degrees
    fig, axes = _grid_figure(nr, nc, 5.6, 3.6, sharey=True, rotated=rotated)
    left_out = 0
    for k, (label, runs) in enumerate(items):
        ax = axes[k // nc][k % nc]
        mat, first, _ = _mean_matrix(runs)
        xs = np.arange(mat.shape[0])
        first_row = _first_rows(first)
        for j in range(min(mat.shape[1], MAX_LINES)):
            start = first_row[j] if first_row[j] is not None else 0
            ys = mat[:, j]
            ax.plot(xs, ys, color="0.8", lw=1, ls=":")  # before learning (zero-shot)
            ax.plot(xs[start:], ys[start:], marker="o", ms=3.5, lw=1.6, label=_t(_task_name(first, j)))
        left_out += max(0, mat.shape[1] - MAX_LINES)
        ax.set_xticks(xs, [_t(s) for s in _row_labels(first)], rotation=45 if len(xs) > 6 else 0,
                      ha="right" if len(xs) > 6 else "center")
        ax.set_title(_t(label))
        ax.set_xlabel("after learning")
        if k % nc == 0:  # one y label per row: the panels share the axis
            ax.set_ylabel("accuracy")
        ax.grid(alpha=0.3)
        if mat.shape[1] <= 12:
            ax.legend(fontsize=7, title="task", title_fontsize=7, loc="best")
    for k in range(len(items), nr * nc):
        axes[k // nc][k % nc].set_visible(False)
    cap = "Accuracy on each task after each stage of the stream (solid from the stage it was learned; dotted before)."
    if left_out:
        cap += f" {left_out} task lines left out (at most {MAX_LINES} per plot)."
    return _figure(fig, cap)


def _first_rows(e: RunEntry) -> list[int | None]:
    from lifelong.assessment.metrics import first_learned

    return first_learned(e.result.accuracy, e.result.row_tasks or None)


def _average_curve_plot(groups: "OrderedDict[str, list[RunEntry]]") -> str:
    fig = _new_figure(8, 4.2)
    ax = fig.add_subplot()
    drawn = 0
    for label, runs in groups.items():
        curves = [average_accuracy_curve(r.result.accuracy, r.result.row_tasks or None) for r in runs if r.result.accuracy]
        if not curves:
            continue
        length = max(len(c) for c in curves)
        arr = np.full((len(curves), length), np.nan)
        for i, c in enumerate(curves):
            arr[i, : len(c)] = c
        with warnings.catch_warnings():  # shorter curves (stopped runs) leave NaN at the end
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(arr, axis=0)
            std = np.nanstd(arr, axis=0, ddof=1) if len(curves) > 1 else None
        xs = np.arange(1, length + 1)
        line = ax.plot(xs, mean, marker="o", ms=4, lw=1.8, label=_t(f"{label} (n={len(curves)})"))[0]
        if std is not None:
            ax.fill_between(xs, mean - np.nan_to_num(std), mean + np.nan_to_num(std), color=line.get_color(), alpha=0.15)
        drawn += 1
    if not drawn:
        return ""
    ax.set_xlabel("evaluation stage (rows of the accuracy matrix)")
    ax.set_ylabel("average accuracy over learned tasks")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _figure(fig, "Average accuracy over the tasks learned so far, after each stage; band = ± std over seeds.")


def _boundaries(rows: list[dict[str, Any]]) -> list[float]:
    """Steps where the trained task changes (for dotted vertical lines)."""
    out, prev = [], None
    for r in sorted(rows, key=lambda r: r.get("step", 0)):
        t = r.get("task")
        if prev is not None and t != prev and "step" in r:
            out.append(float(r["step"]))
        prev = t
    return out


def _learning_curves(groups: "OrderedDict[str, list[RunEntry]]") -> str:
    parts = []
    items = [(label, next((r for r in runs if r.result.curves), None)) for label, runs in groups.items()]
    items = [(label, r) for label, r in items if r is not None]
    if items:
        nr, nc = _grid(len(items), 2)
        fig, axes = _grid_figure(nr, nc, 5.6, 3.5, sharey=True)
        for k, (label, e) in enumerate(items):
            ax = axes[k // nc][k % nc]
            by_task: dict[Any, list[tuple[float, float]]] = {}
            for row in e.result.curves:
                if row.get("accuracy") is None or "step" not in row:
                    continue
                by_task.setdefault(row.get("eval_task"), []).append((float(row["step"]), float(row["accuracy"])))
            for t in sorted(by_task, key=lambda x: (str(type(x)), x))[:MAX_LINES]:
                pts = sorted(by_task[t])
                name = _task_name(e, t) if isinstance(t, int) else str(t)
                ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.4, label=_t(name))
            for b in _boundaries(e.result.curves):
                ax.axvline(b, color="0.6", ls=":", lw=1)
            ax.set_title(_t(f"{label} — {e.path.name if e.path else ''}"))
            ax.set_xlabel("step")
            if k % nc == 0:  # one y label per row: the panels share the axis
                ax.set_ylabel("accuracy")
            ax.grid(alpha=0.3)
            if len(by_task) <= 12:
                ax.legend(fontsize=7, title="eval task", title_fontsize=7)
        for k in range(len(items), nr * nc):
            axes[k // nc][k % nc].set_visible(False)
        parts.append(_figure(fig, "Learning curves: accuracy on every task during training (first run of each label); "
                                  "dotted lines mark task switches."))
    items = [(label, next((r for r in runs if r.result.losses), None)) for label, runs in groups.items()]
    items = [(label, r) for label, r in items if r is not None]
    if items:
        fig = _new_figure(8, 3.8)
        ax = fig.add_subplot()
        for label, e in items:
            pts = sorted((float(r["step"]), float(r["loss"])) for r in e.result.losses if "step" in r and r.get("loss") is not None)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.2, label=_t(label))
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        vals = [float(r["loss"]) for _, e in items for r in e.result.losses if r.get("loss") is not None]
        if vals and min(vals) > 0 and max(vals) / min(vals) > 30:  # log scale only when it spans decades
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        parts.append(_figure(fig, "Training loss (first run of each label)."))
    return "".join(parts)


_STEM = re.compile(r"^(.*?)[/_.:\[\-]?(\d+)\]?$")


def schedule_groups(rows: Sequence[dict[str, Any]]) -> "OrderedDict[str, list[str]]":
    """Group the numeric columns of a schedule log for plotting.

    Columns ending in a number share their stem (``p/0``, ``p/1`` -> ``p``;
    ``interval_3`` -> ``interval``). Other columns whose values all lie in
    [0, 1] are plotted together as "fractions and probabilities"; every other
    column gets its own group.
    """
    cols: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k in ("step", "task") or k in cols:
                continue
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                cols.append(k)
    groups: "OrderedDict[str, list[str]]" = OrderedDict()
    singles = []
    for c in cols:
        m = _STEM.match(c)
        if m and m.group(1):
            groups.setdefault(m.group(1), []).append(c)
        else:
            singles.append(c)
    # a stem with one member is not a family: treat it as a single column
    for stem in [s for s, members in groups.items() if len(members) == 1]:
        singles.append(groups.pop(stem)[0])
    unit = []
    for c in singles:
        vals = [r[c] for r in rows if isinstance(r.get(c), (int, float))]
        if vals and all(0.0 <= float(v) <= 1.0 for v in vals):
            unit.append(c)
        else:
            groups[c] = [c]
    if len(unit) == 1:
        groups[unit[0]] = unit
        groups.move_to_end(unit[0], last=False)
    elif unit:
        groups["fractions and probabilities"] = unit
        groups.move_to_end("fractions and probabilities", last=False)
    return groups


def _schedule_plots(groups: "OrderedDict[str, list[RunEntry]]") -> str:
    items = [(label, next((r for r in runs if r.result.schedule_log), None)) for label, runs in groups.items()]
    items = [(label, r) for label, r in items if r is not None]
    parts = []
    for label, e in items:
        log = [r for r in e.result.schedule_log if "step" in r]
        fam = schedule_groups(log)
        if not fam:
            continue
        nr, nc = _grid(len(fam), 2)
        fig, axes = _grid_figure(nr, nc, 5.6, 3.2, suptitle=True)
        left_out = 0
        for k, (name, cols) in enumerate(fam.items()):
            ax = axes[k // nc][k % nc]
            for c in cols[:MAX_LINES]:
                pts = sorted((float(r["step"]), float(r[c])) for r in log if isinstance(r.get(c), (int, float)))
                ax.plot([p[0] for p in pts], [p[1] for p in pts], lw=1.3, label=_t(c), drawstyle="steps-post")
            left_out += max(0, len(cols) - MAX_LINES)
            for b in _boundaries(log):
                ax.axvline(b, color="0.6", ls=":", lw=1)
            family = len(cols) > 1 and name != "fractions and probabilities"
            ax.set_title(_t(f"{name} ({len(cols)} series)" if family else name), fontsize=10)
            ax.set_xlabel("step")
            ax.grid(alpha=0.3)
            if 1 < len(cols) <= 12:
                ax.legend(fontsize=7)
        for k in range(len(fam), nr * nc):
            axes[k // nc][k % nc].set_visible(False)
        fig.suptitle(_t(f"{label} — {e.path.name if e.path else ''}"))
        cap = f"{label}: schedule state over training (schedule.csv); dotted lines mark task switches."
        if left_out:
            cap += f" {left_out} columns left out (at most {MAX_LINES} lines per plot)."
        parts.append(f"<h3>{html.escape(label)}</h3>" + _figure(fig, cap))
    return "".join(parts)


# ---------------------------------------------------------------------- tables


def _fmt(v: Any, decimals: int = 3) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return "—" if math.isnan(v) else f"{v:.{decimals}f}"
    return str(v)


def _td(v: Any, decimals: int = 3, num: bool | None = None) -> str:
    is_num = isinstance(v, (int, float)) and not isinstance(v, bool) if num is None else num
    return f'<td{" class=num" if is_num else ""}>{html.escape(_fmt(v, decimals))}</td>'


#: accuracy thresholds of the "steps to reach" columns of the per-task table
TARGETS = (0.25, 0.5, 0.8)


def _mean_or_none(values: list[Any]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _per_task_tables(groups: "OrderedDict[str, list[RunEntry]]") -> str:
    """Per group, one row per task: accuracy right after learning it, at the end,
    its forgetting, and the steps it took to reach each target (means over the
    group's runs; '—' when undefined or never reached)."""
    out = []
    for label, runs in groups.items():
        first = runs[0]
        n = len(first.result.task_names)
        cols: dict[str, list[list[Any]]] = {k: [[] for _ in range(n)] for k in ("plast", "final", "forget")}
        reach: dict[float, list[list[Any]]] = {t: [[] for _ in range(n)] for t in TARGETS}
        reached: dict[float, list[int]] = {t: [0] * n for t in TARGETS}
        has_curves = any(e.result.curves for e in runs)
        for e in runs:
            r = e.result
            if not r.accuracy:
                continue
            plast = per_task_plasticity(r.accuracy, r.row_tasks or None)
            forget = per_task_forgetting(r.accuracy, r.row_tasks or None)
            for j in range(min(n, len(r.accuracy[-1]))):
                cols["plast"][j].append(plast[j] if j < len(plast) else None)
                cols["final"][j].append(r.accuracy[-1][j])
                cols["forget"][j].append(forget[j] if j < len(forget) else None)
            for t in TARGETS:
                for j, st in steps_to_target(r.curves, t, r.task_steps).items():
                    if j < n and st is not None:
                        reach[t][j].append(st)
                        reached[t][j] += 1
        head = "<tr><th>task</th><th>right after learning</th><th>at the end</th><th>forgetting</th>"
        if has_curves:
            head += "".join(f"<th>steps to {t:.0%}</th>" for t in TARGETS)
        rows = []
        for j in range(n):
            cells = [_td(_mean_or_none(cols[k][j])) for k in ("plast", "final", "forget")]
            if has_curves:
                for t in TARGETS:
                    mean = _mean_or_none(reach[t][j])
                    txt = "—" if mean is None else f"{mean:.0f}"
                    if mean is not None and reached[t][j] < len(runs):
                        txt += f" ({reached[t][j]}/{len(runs)} runs)"
                    cells.append(f'<td class="num">{html.escape(txt)}</td>')
            rows.append(f"<tr><td>{html.escape(_task_name(first, j))}</td>{''.join(cells)}</tr>")
        out.append(f"<h3>{html.escape(label)}</h3><div class=\"scroll\"><table>{head}</tr>{''.join(rows)}</table></div>")
    if not out:
        return ""
    note = ('<p class="note">means over each group\'s runs. Forgetting = best accuracy after learning the task '
            "minus the final one. Steps count from the start of the task's training, at the resolution of "
            "evaluation.eval_every; '—' = not reached while the task was trained.</p>")
    return "".join(out) + note


def _runs_table(entries: list[RunEntry]) -> str:
    head = ["label", "run", "seed", "tasks learned", "complete", "steps", "avg accuracy", "plasticity",
            "curve area", "training (s)", "assessment (s)", "wall time (s)", "peak memory (MiB)"]
    out = ['<div class="scroll"><table>', "<thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr></thead><tbody>"]
    for e in entries:
        s = e.metrics()
        r = e.result
        learned = len(set().union(*map(set, learned_sets(r.accuracy, r.row_tasks or None)))) if r.accuracy else 0
        status = '<span class="badge ok">yes</span>' if r.complete else '<span class="badge stopped">stopped</span>'
        out.append(
            "<tr>"
            + f"<td>{html.escape(e.label)}</td><td><code>{html.escape(e.path.name if e.path else '')}</code></td>"
            + _td(e.seed)
            + f'<td class=num>{learned} / {len(r.task_names)}</td><td>{status}</td>'
            + _td(s.get("steps"))
            + _td(s.get("average_accuracy"))
            + _td(s.get("plasticity"))
            + _td(s.get("learning_curve_area"))
            + _td(s.get("train_seconds"), 1)
            + _td(s.get("assessment_seconds"), 1)
            + _td(s.get("wall_seconds"), 1)
            + _td(s.get("peak_memory_mb"), 1)
            + "</tr>"
        )
    out.append("</tbody></table></div>")
    return "\n".join(out)


def _flatten(key: str, value: Any, task_names: Sequence[str]) -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        out = []
        for k, v in value.items():
            out += _flatten(f"{key}.{k}", v, task_names)
        return out
    if isinstance(value, list) and value and all(isinstance(v, (int, float)) or v is None for v in value):
        names = list(task_names) if len(value) == len(task_names) else [str(i) for i in range(len(value))]
        return [(f"{key}.{n}", v) for n, v in zip(names, value)]
    if isinstance(value, list):
        text = ", ".join(map(str, value))
        return [(key, text if len(text) <= 80 else text[:77] + "...")]
    return [(key, value)]


def extra_metrics(entry: RunEntry) -> "OrderedDict[str, Any]":
    """The metrics.json keys of a run beyond the standard ones, flattened (``perplexity.task_a``)."""
    out: "OrderedDict[str, Any]" = OrderedDict()
    for k, v in (entry.summary or {}).items():
        if k in DERIVED_KEYS or k in RESULT_KEYS:
            continue
        for fk, fv in _flatten(k, v, entry.result.task_names):
            out[fk] = fv
    return out


def _extra_table(entries: list[RunEntry]) -> str:
    extras = [(e, extra_metrics(e)) for e in entries]
    extras = [(e, x) for e, x in extras if x]
    if not extras:
        return ""
    keys: list[str] = []
    for _, x in extras:
        keys += [k for k in x if k not in keys]
    if len(keys) <= 12:  # wide: one row per run
        head = "".join(f"<th>{html.escape(h)}</th>" for h in ["label", "run", *keys])
        body = "".join(
            f"<tr><td>{html.escape(e.label)}</td><td><code>{html.escape(e.path.name if e.path else '')}</code></td>"
            + "".join(_td(x.get(k)) for k in keys) + "</tr>"
            for e, x in extras
        )
    else:  # long: one row per (run, key)
        head = "<th>label</th><th>run</th><th>metric</th><th>value</th>"
        body = "".join(
            f"<tr><td>{html.escape(e.label)}</td><td><code>{html.escape(e.path.name if e.path else '')}</code></td>"
            f"<td>{html.escape(k)}</td>{_td(v)}</tr>"
            for e, x in extras for k, v in x.items()
        )
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _notes(entries: list[RunEntry]) -> str:
    items = [(e, n) for e in entries for n in e.result.notes]
    if not items:
        return ""
    lis = "".join(
        f"<li><code>{html.escape(e.path.name if e.path else e.label)}</code>: {html.escape(str(n))}</li>" for e, n in items
    )
    return f"<ul>{lis}</ul>"


# ---------------------------------------------------------------------- continual pre-training


def _has_general_validation(e: RunEntry) -> bool:
    return any(isinstance(r.get("general/val_loss"), (int, float)) for r in e.result.schedule_log)


def _cpt_curve_plots(groups: "OrderedDict[str, list[Any]]", res: Any) -> str:
    """Per label: general and mean domain validation loss over tokens, measured (solid) against the CPT
    law fitted on the first part of the steps (dashed; a dotted line marks the fit boundary)."""
    parts = []
    for label, curves in groups.items():
        fig, panels = _grid_figure(1, 2, 5.6, 3.6, suptitle=True)
        axes = panels[0]
        shown = curves[:MAX_LINES]
        fitted = False
        for which, ax in zip(("general", "domain"), axes):
            for k, c in enumerate(shown):
                use_tokens = bool(np.all(np.isfinite(c.tokens)))
                x = c.tokens if use_tokens else c.steps.astype(float)
                color = f"C{k % 10}"
                ax.plot(x, getattr(c, which), color=color, lw=1.5, label=_t(c.label))
                fit = res.cpt.get(None if c.ratio is None else round(float(c.ratio), 9), {}).get(which)
                if fit is not None and c.label in fit.predicted:
                    fitted = True
                    ax.plot(x, fit.predicted[c.label], color=color, lw=1.3, ls="--")
                    edge = fit.fit_until * c.total_steps
                    ax.axvline(float(np.interp(edge, c.steps, x)), color=color, ls=":", lw=1)
            ax.set_title(_t(f"{which} validation loss"), fontsize=10)
            ax.set_xlabel("training tokens" if all(np.all(np.isfinite(c.tokens)) for c in shown) else "step")
            ax.set_ylabel("loss (nats/token)")
            ax.grid(alpha=0.3)
            if len(shown) <= 12:
                ax.legend(fontsize=7)
        fig.suptitle(_t(label))
        cap = (f"{label}: measured (solid) and predicted by the CPT loss-curve law fitted on the first "
               f"{res_fit_until(res):.0%} of each run's steps (dashed; dotted line: the fit boundary).")
        if not fitted:
            cap = f"{label}: measured validation losses; no CPT-law fit (see the reasons below)."
        if len(curves) > MAX_LINES:
            cap += f" {len(curves) - MAX_LINES} runs left out (at most {MAX_LINES} lines per plot)."
        parts.append(_figure(fig, cap))
    return "".join(parts)


def res_fit_until(res: Any) -> float:
    return next((f.fit_until for fits in res.cpt.values() for f in fits.values()), 0.3)


def _ratio_plot(res: Any, tolerance: Sequence[float]) -> str:
    """Final general and domain loss against the general ratio, with the mixture law's curve."""
    runs = [c for c in res.runs if c.ratio is not None]
    if not runs:
        return ""
    fig, panels = _grid_figure(1, 2, 5.6, 3.6)
    axes = panels[0]
    scheds = sorted({c.schedule for c in runs})
    law = res.mixture_all
    grid = np.linspace(0.0, max(max(c.ratio for c in runs), 0.05), 101)
    for which, ax in zip(("general", "domain"), axes):
        for k, s in enumerate(scheds):
            pts = [(c.ratio, getattr(c, f"final_{which}")) for c in runs if c.schedule == s]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], "o", color=f"C{k % 10}", label=_t(s))
        if law is not None and res.tokens:
            curve = (law.general if which == "general" else law.domain).predict(grid, res.tokens)
            ax.plot(grid, curve, color="0.2", lw=1.3, label=_t(f"mixture law at {res.tokens:.0f} tokens"))
        if which == "general" and res.base_general is not None:
            ax.axhline(res.base_general, color="0.5", ls=":", lw=1, label="pre-trained")
            for t in tolerance:
                ax.axhline(res.base_general + t, color="0.7", ls="--", lw=0.8)
        ax.set_title(_t(f"final {which} validation loss"), fontsize=10)
        ax.set_xlabel("general ratio r (share of each batch's tokens)")
        ax.set_ylabel("loss (nats/token)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    cap = ("Final losses of every run against its general ratio; the curve is the mixture law "
           "(L_g = E + A (1-r)^a D^b, L_d = E + B ((1-r) D)^-c) fitted on every validation point of all runs, "
           "drawn at the runs' mean token budget")
    cap += "; dashed lines: the pre-trained general loss plus each tolerance." if res.base_general is not None else "."
    return _figure(fig, cap)


def _cpt_section(entries: list[RunEntry], tolerance: Sequence[float]) -> str:
    """The continual pre-training section: runs whose schedule log has general validation losses."""
    from lifelong.assessment.study import curves_of_entry, study
    from lifelong.errors import DataError

    chosen = [e for e in entries if _has_general_validation(e)]
    if not chosen:
        return ""
    groups: "OrderedDict[str, list[Any]]" = OrderedDict()
    curves, problems = [], []
    for e in chosen:
        try:
            c = curves_of_entry(e)
        except DataError as exc:
            problems.append(str(exc))
            continue
        curves.append(c)
        groups.setdefault(e.label, []).append(c)
    parts = []
    if curves:
        ratios = {c.ratio for c in curves}
        res = study(curves, fit_until=0.3, tolerances=tolerance, holdout="half" if len(ratios) >= 4 else "none")
        problems.extend(res.skipped)
        parts.append(_cmr_statement(res))
        parts.append(_cpt_curve_plots(groups, res))
        parts.append(_ratio_plot(res, tolerance))
        parts.append(_fit_tables(res))
    if problems:
        lis = "".join(f"<li>{html.escape(p)}</li>" for p in problems)
        parts.append(f'<p class="note">Not fitted, and why:</p><ul>{lis}</ul>')
    return "".join(parts)


def _cmr_statement(res: Any) -> str:
    if not res.cmr:
        return ('<p>No critical mixture ratio: it needs the mixture law (runs at two or more general ratios) and '
                "the pre-trained model's general loss (a step-0 validation row); see the reasons below.</p>")
    items = "".join(
        f"<li>within <b>{t:g}</b> nats (general loss ≤ {res.base_general + t:.3f}): general share "
        f"<b>r* = {r:.3f}</b>, i.e. at most {1 - r:.1%} domain data</li>" for t, r in res.cmr)
    return (f"<p><b>Critical mixture ratio</b>: the smallest general share that keeps the general validation loss "
            f"within a tolerance of the pre-trained model's ({res.base_general:.3f}, the step-0 row) after "
            f"{res.tokens:.0f} training tokens (the runs' mean), by the mixture law fitted on all "
            f"{len(res.runs)} runs:</p><ul>{items}</ul>")


def _fit_tables(res: Any) -> str:
    out = []
    if res.cpt:
        rows = []
        for key in sorted(res.cpt, key=lambda k: (k is None, k or 0.0)):
            fits = res.cpt[key]
            cells = []
            for which in ("general", "domain"):
                f = fits.get(which)
                cells += [_td(f.final_error if f else None, 4), _td(f.error if f else None, 4)]
            n = len(next(iter(fits.values())).labels) if fits else 0
            rows.append(f"<tr>{_td('—' if key is None else f'{key:g}', num=True)}{_td(n)}{''.join(cells)}</tr>")
        out.append("<h3>CPT loss-curve law: prediction errors</h3>"
                   f"<p class=\"note\">One fit per general ratio (its runs share it), on the first "
                   f"{res_fit_until(res):.0%} of each run's steps; mean relative error of the predicted final "
                   "loss and of every validation point after the fit boundary.</p>"
                   '<div class="scroll"><table><thead><tr><th>general ratio</th><th>runs</th>'
                   "<th>general: final</th><th>general: later points</th><th>domain: final</th>"
                   "<th>domain: later points</th></tr></thead><tbody>" + "".join(rows) + "</tbody></table></div>")
    m = res.mixture
    if m is not None:
        how = (f"fitted on {sum(not r[7] for r in m.rows)} runs, scored on the {sum(r[7] for r in m.rows)} held out"
               if m.held_out else f"fitted on all {len(m.rows)} runs, scored in sample (too few ratios to hold half out)")
        rows = "".join(
            f"<tr><td><code>{html.escape(label)}</code></td>{_td(ratio, 3, True)}{_td(g)}{_td(pg)}{_td(d)}{_td(pd)}"
            f"<td>{'held out' if held else 'fitted'}</td></tr>" for label, ratio, _tok, g, pg, d, pd, held in m.rows)
        out.append("<h3>Mixture law: predicted final losses</h3>"
                   f"<p class=\"note\">{html.escape(how)}: mean relative error general {m.general_error:.4f}, "
                   f"domain {m.domain_error:.4f}. General law: "
                   + html.escape(", ".join(f"{k}={v:.4g}" for k, v in m.general.to_dict().items()))
                   + "; domain law: " + html.escape(", ".join(f"{k}={v:.4g}" for k, v in m.domain.to_dict().items()))
                   + '.</p><div class="scroll"><table><thead><tr><th>run</th><th>r</th><th>general</th>'
                   "<th>predicted</th><th>domain</th><th>predicted</th><th></th></tr></thead><tbody>"
                   + rows + "</tbody></table></div>")
    return "".join(out)


# ---------------------------------------------------------------------- the report


def build_report(entries: list[RunEntry], title: str = "lifelong report", by_name: str = "strategy",
                 tolerance: Sequence[float] = TOLERANCES) -> str:
    """The report's HTML text for already-loaded runs (see :func:`write_report`)."""
    if not entries:
        raise ConfigError("the report needs at least one run folder; none was given.")
    groups: "OrderedDict[str, list[RunEntry]]" = OrderedDict()
    for e in entries:
        groups.setdefault(e.label, []).append(e)

    sections: list[tuple[str, str, str]] = []  # (anchor, heading, body)
    sections.append(("comparison", f"Comparison by {by_name}",
                     '<div class="scroll">' + html_table(compare(entries), label=by_name) + "</div>"
                     '<p class="note">mean ± sample std over the runs of each group; "—" = undefined '
                     "(e.g. forgetting with a single task or joint training).</p>"))
    sections.append(("runs", "Runs", _runs_table(entries)))
    for anchor, heading, body in (
        ("matrices", "Accuracy matrices", _heatmaps(groups)),
        ("forgetting", "Accuracy on each task over the stream", _forgetting_plot(groups)),
        ("tasks", "Per task: learned, kept, steps to reach a target", _per_task_tables(groups)),
        ("average", "Average accuracy after each task", _average_curve_plot(groups)),
        ("curves", "Learning curves", _learning_curves(groups)),
        ("schedule", "Schedule state over time", _schedule_plots(groups)),
        ("cpt", "Continual pre-training", _cpt_section(entries, tolerance)),
        ("extra", "Other metrics", _extra_table(entries)),
        ("notes", "Notes", _notes(entries)),
    ):
        if body:
            sections.append((anchor, heading, body))

    nav = "".join(f'<li><a href="#{a}">{html.escape(h)}</a></li>' for a, h, _ in sections)
    body = "\n".join(f'<section id="{a}"><h2>{html.escape(h)}</h2>\n{b}\n</section>' for a, h, b in sections)
    when = datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    meta = (f"{len(entries)} run{'s' if len(entries) != 1 else ''} in {len(groups)} group"
            f"{'s' if len(groups) != 1 else ''} · generated {when} by lifelong")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body><main>\n"
        f"<h1>{html.escape(title)}</h1>\n<p class=\"meta\">{html.escape(meta)}</p>\n"
        f"<nav><ol>{nav}</ol></nav>\n{body}\n</main></body>\n</html>\n"
    )


def write_report(
    run_dirs: Iterable[PathLike],
    out_html: PathLike,
    title: str = "lifelong report",
    by: str | Sequence[str] = "cell",
    tolerance: float | Sequence[float] = TOLERANCES,
) -> Path:
    """Write one self-contained HTML report over ``run_dirs``; returns its path.

    Runs are grouped by the config value ``by`` (dotted keys allowed; several
    keys are joined; the folder name when the key is absent); the default
    ``cell`` groups the seeds of each grid cell (strategy plus the grid axes
    it varies), and runs outside a ``grid:`` by strategy. The file has no
    external references: it opens offline and without JavaScript. ``tolerance``:
    the tolerated general-loss increase(s), in nats over the pre-trained model's,
    for the critical mixture ratio of the continual pre-training section.
    """
    dirs = list(run_dirs)
    if not dirs:
        raise ConfigError("the report needs at least one run folder; none was given.")
    entries = load_entries(dirs, by)
    by_name = by if isinstance(by, str) else " / ".join(by)
    tolerances = [float(tolerance)] if isinstance(tolerance, (int, float)) else [float(t) for t in tolerance]
    bad = [t for t in tolerances if not (math.isfinite(t) and t >= 0)]
    if not tolerances or bad:
        raise ConfigError(f"tolerance must be one or more numbers >= 0 (nats of general loss); got {tolerance!r}.")
    if by_name == "cell":
        by_name = "grid cell" if any(e.config.get("grid_point") for e in entries) else "strategy"
    return write_text_atomic(out_html, build_report(entries, title, by_name, tolerances))
