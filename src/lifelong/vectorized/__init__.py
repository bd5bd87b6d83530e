"""Vectorised runs: many runs of one shape trained as one batched computation.

Runs of a grid that share a model architecture, data shape and batch
schedule but differ in seed or scalar hyper-parameters train together: their
parameters are stacked (``torch.func.stack_module_state``), and each step's
forward pass, backward pass, consolidator penalties and SGD update run once
for all of them. Each run keeps its own objects and results, and gets the
numbers the sequential loop gives it.

* :func:`vectorizable` ``(configs) -> (groups, reasons)``: which configs can
  share a stack, and why the others cannot;
* :func:`train_vectorized` ``(configs) -> [RunResult]``;
* :func:`run_vectorized` ``(configs, out_dirs)``: the same, writing each run's
  folder as ``lifelong run`` does;
* :func:`train_stacked` ``([RunSpec]) -> [RunResult]``: the engine-level
  entry point for built streams, models and recipes.
"""

from lifelong.vectorized.runs import run_vectorized, train_vectorized
from lifelong.vectorized.support import check_runs, vectorizable
from lifelong.vectorized.trainer import RunSpec, train_stacked

__all__ = ["vectorizable", "train_vectorized", "run_vectorized", "train_stacked", "RunSpec", "check_runs"]
