"""Small reference models and the heads that continual scenarios need.

``IncrementalClassifier`` grows its output layer when a task brings classes it
has not seen (class-incremental learning), keeping the old units' weights.
Task-incremental learning uses masking of the logits to the task's classes
(see :class:`lifelong.engine.objective.ClassificationObjective`), which is
equivalent to one head per task sharing nothing but the backbone.
"""

from lifelong.models.nets import MLP, SmallCNN, IncrementalClassifier, build_model, MODELS

__all__ = ["MLP", "SmallCNN", "IncrementalClassifier", "build_model", "MODELS"]

# Language-model factories (torch-only at import; transformers loads when one is built).
from lifelong.hf import models as _hf_models  # noqa: E402,F401
