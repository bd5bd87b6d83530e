"""The training loop and what surrounds it: configs, context, callbacks, results."""

from lifelong.engine.callbacks import Callback, History, ProgressBar
from lifelong.engine.config import Recipe, TrainConfig
from lifelong.engine.context import Batch, Context
from lifelong.engine.loop import evaluate_tasks, make_objective, resolve_device, seed_everything, train_stream
from lifelong.engine.objective import ClassificationObjective, Objective
from lifelong.engine.result import RunResult

__all__ = ["train_stream", "TrainConfig", "Recipe", "Context", "Batch", "Callback", "ProgressBar", "History",
           "RunResult", "Objective", "ClassificationObjective", "make_objective", "evaluate_tasks", "resolve_device",
           "seed_everything"]
