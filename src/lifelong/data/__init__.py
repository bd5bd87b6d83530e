"""Task streams: ``Examples``, ``Task``, ``Stream``, scenario builders and built-in benchmarks."""

from lifelong.data.examples import Examples, ExamplesDataset
from lifelong.data.task import SCENARIOS, Stream, Task

__all__ = ["Examples", "ExamplesDataset", "Task", "Stream", "SCENARIOS"]
