"""lifelong.assessment: how well does the learner know each thing?

Pure functions over an accuracy matrix (``R[i][j]`` = accuracy on task j after
training row i) and learning curves. ``summarize(result)`` gives the standard
dict used by the run store, the run index, comparison tables and reports.
``METRICS`` maps names to the functions (shown by ``lifelong list``).
"""

from lifelong.assessment.metrics import (
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
    steps_to_target,
)

__all__ = [
    "METRICS",
    "SUMMARY_KEYS",
    "average_accuracy",
    "average_accuracy_curve",
    "backward_transfer",
    "first_learned",
    "forgetting",
    "forward_transfer",
    "learning_curve_area",
    "memory_summary",
    "per_task_forgetting",
    "per_task_learning_curve_area",
    "per_task_plasticity",
    "plasticity",
    "steps_to_target",
    "summarize",
    "time_summary",
]
