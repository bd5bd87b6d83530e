"""Replay memory buffers, registered in :data:`BUFFERS`.

* ``reservoir``: every example offered so far is equally likely to be stored
  (vectorised reservoir sampling, O(1) per example);
* ``class-balanced``: an equal share of the capacity per class seen so far,
  evicting from the largest classes (GDumb's sampler);
* ``herding``: iCaRL's exemplar selection, the examples whose feature mean best
  matches their class's mean, kept in herding order so old classes shrink by
  dropping their last exemplars.

Build one by name with ``lifelong.registry.build(BUFFERS, name, {"capacity": 200, "seed": 0})``.
"""

from lifelong.memory.base import Memory
from lifelong.memory.registry import BUFFERS
from lifelong.memory import class_balanced, herding, reservoir  # noqa: F401  (registers the buffers)
from lifelong.memory.class_balanced import ClassBalanced
from lifelong.memory.herding import Herding
from lifelong.memory.reservoir import Reservoir

__all__ = ["Memory", "BUFFERS", "Reservoir", "ClassBalanced", "Herding"]
