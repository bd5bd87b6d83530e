"""lifelong: curricula, review scheduling, consolidation and forgetting metrics.

The package is organised around three questions a lifelong learner answers at
every step (see DESIGN.md):

* what to study next?            -> :mod:`lifelong.curriculum` (schedules)
* how to keep what was learned?  -> :mod:`lifelong.consolidation` (consolidators)
  and :mod:`lifelong.memory` (replay buffers)
* how well does it know things?  -> :mod:`lifelong.assessment` (metrics)

The training loop that ties them together lives in :mod:`lifelong.engine`.
Nothing heavy is imported here, so ``import lifelong`` stays fast.
"""

from lifelong.errors import LifelongError, ConfigError, DataError, TrainingError

__version__ = "0.1.0"
__all__ = ["LifelongError", "ConfigError", "DataError", "TrainingError", "__version__"]
