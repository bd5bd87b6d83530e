"""Task streams: ``Examples``, ``Task``, ``Stream``, scenario builders and built-in benchmarks.

Every benchmark is a factory registered in :data:`BENCHMARKS` and importable
from here (``from lifelong.data import split_digits``); ``make_benchmark(name,
seed, **params)`` builds one by name. The language-model benchmarks live in
:mod:`lifelong.hf` (``from lifelong.hf import arithmetic_skills, text_stream``).
"""

from lifelong.data.examples import Examples, ExamplesDataset
from lifelong.data.task import SCENARIOS, Stream, Task
from lifelong.data.scenarios import by_group, permuted, split_by_classes, stratified_split
from lifelong.data.benchmarks import (BENCHMARKS, make_benchmark, permuted_digits, permuted_mnist1d, split_digits,
                                      split_mnist1d)
# torchvision benchmarks (torchvision itself is imported when one is built)
from lifelong.data.vision import permuted_mnist, split_cifar10, split_cifar100, split_mnist

__all__ = ["Examples", "ExamplesDataset", "Task", "Stream", "SCENARIOS",
           "split_by_classes", "permuted", "by_group", "stratified_split", "BENCHMARKS", "make_benchmark",
           "split_digits", "permuted_digits", "split_mnist1d", "permuted_mnist1d",
           "split_mnist", "permuted_mnist", "split_cifar10", "split_cifar100"]
