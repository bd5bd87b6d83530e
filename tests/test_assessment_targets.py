"""Steps to reach a target accuracy, and the per-task table of the report."""

from __future__ import annotations

from lifelong.assessment import steps_to_target
from lifelong.engine.result import RunResult
from lifelong.runs.compare import RunEntry
from lifelong.runs.report import build_report


def curve(points_by_task):
    return [{"step": s, "task": k, "eval_task": k, "accuracy": a}
            for k, pts in enumerate(points_by_task) for s, a in pts]


def test_steps_counted_from_each_task_start():
    c = curve([[(10, 0.2), (20, 0.6), (30, 0.9)], [(40, 0.4), (50, 0.55), (60, 0.5)]])
    # other tasks' points (eval_task != task) never count
    c.append({"step": 15, "task": 0, "eval_task": 1, "accuracy": 1.0})
    assert steps_to_target(c, 0.5, task_steps=[30, 30]) == {0: 20, 1: 20}
    assert steps_to_target(c, 0.8, task_steps=[30, 30]) == {0: 30, 1: None}
    assert steps_to_target(c, 0.5) == {0: 20, 1: 50}  # global steps without task_steps


def test_report_has_per_task_table_with_forgetting_and_steps():
    r = RunResult(task_names=["add", "mul"], accuracy=[[0.9, 0.0], [0.3, 0.7]], row_tasks=[[0], [0, 1]],
                  baseline=[0.0, 0.0], task_steps=[30, 30], complete=True,
                  curves=curve([[(10, 0.2), (20, 0.6), (30, 0.9)], [(40, 0.4), (50, 0.55), (60, 0.7)]]))
    html = build_report([RunEntry("naive", r)])
    section = html[html.index('id="tasks"'):]
    section = section[:section.index("</section>")]
    assert "steps to 50%" in section and "steps to 80%" in section
    row_add = section[section.index("<td>add</td>"):section.index("</tr>", section.index("<td>add</td>"))]
    # right after learning 0.9, at the end 0.3, forgetting 0.6, 50% after 20 steps, 80% after 30
    for value in ("0.900", "0.300", "0.600", ">20<", ">30<"):
        assert value in row_add, (value, row_add)
    row_mul = section[section.index("<td>mul</td>"):]
    assert ">20<" in row_mul and "—" in row_mul  # 80% never reached by mul
