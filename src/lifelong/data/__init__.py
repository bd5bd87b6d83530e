"""Task streams: ``Examples``, ``Task``, ``Stream``, scenario builders and built-in benchmarks."""

from lifelong.data.examples import Examples, ExamplesDataset
from lifelong.data.task import SCENARIOS, Stream, Task

__all__ = ["Examples", "ExamplesDataset", "Task", "Stream", "SCENARIOS"]

from lifelong.data.scenarios import by_group, permuted, split_by_classes, stratified_split  # noqa: E402
from lifelong.data.benchmarks import BENCHMARKS, make_benchmark  # noqa: E402

__all__ += ["split_by_classes", "permuted", "by_group", "stratified_split", "BENCHMARKS", "make_benchmark"]
