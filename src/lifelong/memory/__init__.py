"""Replay memory buffers, registered in :data:`BUFFERS`.

* ``reservoir``: every example offered so far is equally likely to be stored
  (vectorised reservoir sampling, O(1) per example);
* ``class-balanced``: an equal share of the capacity per class seen so far,
  evicting from the largest classes (GDumb's sampler);
* ``herding``: iCaRL's exemplar selection, the examples whose feature mean best
  matches their class's mean, kept in herding order so old classes shrink by
  dropping their last exemplars.

Build one by class (``Reservoir(capacity=200, seed=0)``) or by name with
``BUFFERS.build("reservoir", {"capacity": 200, "seed": 0})``. A new buffer is one
file subclassing :class:`Memory` with ``@BUFFERS.register("name")``, plus its
import line below.
"""

from lifelong.memory.base import Memory
from lifelong.memory.registry import BUFFERS

# every buffer, one line per method file (the import registers it)
from lifelong.memory.class_balanced import ClassBalanced
from lifelong.memory.herding import Herding
from lifelong.memory.reservoir import Reservoir

__all__ = ["Memory", "BUFFERS", "Reservoir", "ClassBalanced", "Herding"]
