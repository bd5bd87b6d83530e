"""Metrics against matrices computed by hand (the expected numbers are worked out in comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lifelong.assessment import (
    METRICS,
    SUMMARY_KEYS,
    average_accuracy,
    average_accuracy_curve,
    backward_transfer,
    first_learned,
    forgetting,
    forward_transfer,
    learning_curve_area,
    memory_summary,
    per_task_forgetting,
    per_task_learning_curve_area,
    per_task_plasticity,
    plasticity,
    summarize,
    time_summary,
)
from lifelong.engine.result import RunResult
from lifelong.errors import DataError

# Three sequential tasks.
#            task0  task1  task2
R3 = [
    [0.90, 0.10, 0.20],  # after task 0
    [0.70, 0.80, 0.30],  # after task 1
    [0.60, 0.75, 0.95],  # after task 2
]
B3 = [0.10, 0.10, 0.10]


def test_sequential_three_tasks_by_hand():
    # ACC = (0.60 + 0.75 + 0.95) / 3 = 2.30 / 3
    assert average_accuracy(R3) == pytest.approx(2.30 / 3)
    # curve: 0.90 ; (0.70+0.80)/2 = 0.75 ; 2.30/3
    assert average_accuracy_curve(R3) == pytest.approx([0.90, 0.75, 2.30 / 3])
    # f0 = max(0.90, 0.70) - 0.60 = 0.30 ; f1 = 0.80 - 0.75 = 0.05 ; f2 undefined (last task)
    pf = per_task_forgetting(R3)
    assert pf[0] == pytest.approx(0.30) and pf[1] == pytest.approx(0.05) and pf[2] is None
    assert forgetting(R3) == pytest.approx(0.175)
    # BWT = ((0.60-0.90) + (0.75-0.80)) / 2 = -0.175
    assert backward_transfer(R3) == pytest.approx(-0.175)
    # FWT = ((R01 - b1) + (R12 - b2)) / 2 = ((0.10-0.10) + (0.30-0.10)) / 2 = 0.10
    assert forward_transfer(R3, B3) == pytest.approx(0.10)
    # plasticity = diagonal = 0.90, 0.80, 0.95 ; mean 2.65/3
    assert per_task_plasticity(R3) == pytest.approx([0.90, 0.80, 0.95])
    assert plasticity(R3) == pytest.approx(2.65 / 3)


def test_numpy_input_gives_the_same_numbers():
    arr = np.array(R3)
    assert average_accuracy(arr) == pytest.approx(2.30 / 3)
    assert forgetting(arr) == pytest.approx(0.175)
    assert forward_transfer(arr, np.array(B3)) == pytest.approx(0.10)


def test_forgetting_uses_the_best_earlier_value_not_the_diagonal():
    # task0 improves after task1 (0.5 -> 0.9) then drops to 0.6:
    # forgetting = 0.9 - 0.6 = 0.3, but BWT = 0.6 - 0.5 = +0.1 (they disagree on purpose)
    R = [
        [0.5, 0.0, 0.0],
        [0.9, 0.7, 0.0],
        [0.6, 0.7, 0.8],
    ]
    # f1 = 0.7 - 0.7 = 0 ; forgetting = (0.3 + 0.0)/2 = 0.15 ; BWT = (0.1 + 0.0)/2 = 0.05
    assert forgetting(R) == pytest.approx(0.15)
    assert backward_transfer(R) == pytest.approx(0.05)


def test_forgetting_ignores_accuracy_before_the_task_was_learned():
    # zero-shot accuracy on task1 (0.9) before it was learned is not counted as "known":
    # f1 is measured from row 1 on: 0.5 - 0.4 = 0.1 (not 0.9 - 0.4 = 0.5)
    R = [
        [0.8, 0.9, 0.0],
        [0.8, 0.5, 0.0],
        [0.8, 0.4, 0.7],
    ]
    assert per_task_forgetting(R)[:2] == pytest.approx([0.0, 0.1])


def test_one_task_has_no_forgetting_or_transfer_but_has_accuracy():
    R = [[0.83]]
    assert average_accuracy(R) == pytest.approx(0.83)
    assert forgetting(R) is None
    assert backward_transfer(R) is None
    assert forward_transfer(R, [0.5]) is None
    assert plasticity(R) == pytest.approx(0.83)
    assert per_task_forgetting(R) == [None]


def test_joint_training_single_row():
    # one row, every task learned at once
    R = [[0.9, 0.8, 0.7, 0.6]]
    rt = [[0, 1, 2, 3]]
    assert average_accuracy(R, rt) == pytest.approx(0.75)
    assert forgetting(R, rt) is None
    assert backward_transfer(R, rt) is None
    assert forward_transfer(R, [0.25] * 4, rt) is None
    assert plasticity(R, rt) == pytest.approx(0.75)
    assert first_learned(R, rt) == [0, 0, 0, 0]


def test_stopped_run_fewer_rows_than_tasks():
    # 2 of 4 tasks finished: averages only over learned tasks; task 2 and 3 never learned
    R = [
        [0.9, 0.2, 0.3, 0.1],
        [0.6, 0.8, 0.4, 0.2],
    ]
    b = [0.25, 0.25, 0.25, 0.25]
    assert average_accuracy(R) == pytest.approx(0.7)  # (0.6 + 0.8) / 2
    assert forgetting(R) == pytest.approx(0.3)  # only task 0: 0.9 - 0.6
    assert backward_transfer(R) == pytest.approx(-0.3)
    assert forward_transfer(R, b) == pytest.approx(-0.05)  # only task 1: 0.2 - 0.25
    assert per_task_forgetting(R) == [pytest.approx(0.3), None, None, None]
    assert per_task_plasticity(R) == [pytest.approx(0.9), pytest.approx(0.8), None, None]
    assert first_learned(R) == [0, 1, None, None]


def test_task_never_learned_is_left_out_of_every_metric():
    # row_tasks skip task 1 entirely (e.g. an evaluation-only task)
    R = [
        [0.9, 0.3, 0.1],
        [0.7, 0.4, 0.8],
    ]
    rt = [[0], [0, 2]]
    assert average_accuracy(R, rt) == pytest.approx(0.75)  # (0.7 + 0.8)/2
    assert forgetting(R, rt) == pytest.approx(0.2)  # task 0 only
    # FWT: task 2 learned at row 1 -> R[0][2] - b2 = 0.1 - 0.0
    assert forward_transfer(R, [0.0, 0.0, 0.0], rt) == pytest.approx(0.1)
    assert per_task_plasticity(R, rt) == [pytest.approx(0.9), None, pytest.approx(0.8)]


def test_missing_cells():
    # task 2 not evaluated before it was learned -> FWT leaves it out
    R = [
        [0.9, 0.5, None],
        [0.8, 0.7, None],
        [0.6, 0.6, 0.9],
    ]
    assert forward_transfer(R, [0.1, 0.1, 0.1]) == pytest.approx(0.4)  # only task 1: 0.5 - 0.1
    # forgetting ignores the missing history but needs the final values: (0.3 + 0.1)/2
    assert forgetting(R) == pytest.approx(0.2)
    # a learned task without a final value is an error for average accuracy
    with pytest.raises(DataError, match=r"accuracy\[1\]\[1\] is missing"):
        average_accuracy([[0.9, 0.0], [0.8, float("nan")]])


def test_forward_transfer_needs_a_baseline():
    assert forward_transfer(R3, None) is None
    assert forward_transfer(R3, []) is None
    with pytest.raises(DataError, match="baseline has 2 values"):
        forward_transfer(R3, [0.1, 0.1])


@pytest.mark.parametrize("bad", [[], [[]], np.zeros((0, 3)), None])
def test_empty_matrix_is_a_clear_error(bad):
    with pytest.raises(DataError, match="empty"):
        average_accuracy(bad)


def test_malformed_matrices():
    with pytest.raises(DataError, match="different lengths"):
        forgetting([[0.1, 0.2], [0.3]])
    with pytest.raises(DataError, match="row_tasks has 1 entries"):
        forgetting(R3, [[0]])
    with pytest.raises(DataError, match="task 5"):
        forgetting([[0.1, 0.2]], [[5]])
    with pytest.raises(DataError, match="pass row_tasks"):
        forgetting([[0.1], [0.2]])
    with pytest.raises(DataError, match="numbers"):
        forgetting([["a", 0.2]])


def test_learning_curve_area_trapezoid_by_hand():
    curves = [
        # task 0: accuracy 0.0 at step 0, 1.0 at step 10, 1.0 at step 20 ->
        # area = (10*0.5 + 10*1.0) / 20 = 0.75
        {"step": 0, "task": 0, "eval_task": 0, "accuracy": 0.0},
        {"step": 10, "task": 0, "eval_task": 0, "accuracy": 1.0},
        {"step": 20, "task": 0, "eval_task": 0, "accuracy": 1.0},
        # evaluations of other tasks while training task 1 are not part of its curve
        {"step": 30, "task": 1, "eval_task": 0, "accuracy": 0.1},
        # task 1: 0.4 at 30, 0.8 at 40 -> mean 0.6
        {"step": 30, "task": 1, "eval_task": 1, "accuracy": 0.4},
        {"step": 40, "task": 1, "eval_task": 1, "accuracy": 0.8},
        # task 2: a single point -> its value
        {"step": 50, "task": 2, "eval_task": 2, "accuracy": 0.3},
    ]
    per = per_task_learning_curve_area(curves)
    assert per == {0: pytest.approx(0.75), 1: pytest.approx(0.6), 2: pytest.approx(0.3)}
    assert learning_curve_area(curves) == pytest.approx((0.75 + 0.6 + 0.3) / 3)
    assert learning_curve_area([]) is None
    with pytest.raises(DataError, match="eval_task"):
        learning_curve_area([{"step": 0, "task": 0, "accuracy": 0.5}])


def _result(**kw) -> RunResult:
    base = dict(
        task_names=["a", "b", "c"],
        accuracy=R3,
        row_tasks=[[0], [0, 1], [0, 1, 2]],
        baseline=B3,
        task_seconds=[1.5, 2.0, 2.5],
        task_peak_memory=[100 * 2**20, 300 * 2**20, 200 * 2**20],
        task_steps=[10, 20, 30],
        wall_seconds=7.25,
        complete=True,
    )
    base.update(kw)
    return RunResult(**base)


def test_time_and_memory_summaries():
    r = _result()
    t = time_summary(r)
    assert t["wall_seconds"] == 7.25 and t["train_seconds"] == pytest.approx(6.0)
    assert t["mean_task_seconds"] == pytest.approx(2.0)
    m = memory_summary(r)
    assert m["peak_memory_mb"] == pytest.approx(300.0)
    assert m["task_peak_memory_mb"] == pytest.approx([100.0, 300.0, 200.0])
    assert memory_summary(_result(task_peak_memory=[]))["peak_memory_mb"] is None


def test_summarize_standard_dict():
    s = summarize(_result())
    assert tuple(s) == SUMMARY_KEYS
    assert s["average_accuracy"] == pytest.approx(2.30 / 3)
    assert s["forgetting"] == pytest.approx(0.175)
    assert s["bwt"] == pytest.approx(-0.175)
    assert s["fwt"] == pytest.approx(0.10)
    assert s["plasticity"] == pytest.approx(2.65 / 3)
    assert s["wall_seconds"] == 7.25
    assert s["peak_memory_mb"] == pytest.approx(300.0)
    assert s["steps"] == 60
    # no value is NaN
    assert not any(isinstance(v, float) and math.isnan(v) for v in s.values())


def test_summarize_without_row_tasks_assumes_sequential():
    assert summarize(_result(row_tasks=[]))["forgetting"] == pytest.approx(0.175)


def test_summarize_empty_result_is_a_clear_error():
    with pytest.raises(DataError, match="empty"):
        summarize(RunResult(task_names=["a"]))


def test_registry_lists_the_metrics():
    for name in ["average_accuracy", "forgetting", "backward_transfer", "forward_transfer", "plasticity", "learning_curve_area"]:
        assert name in METRICS
    assert METRICS.get("forgetting") is forgetting
    assert "Average forgetting" in METRICS.entries()[METRICS.names().index("forgetting")].summary
