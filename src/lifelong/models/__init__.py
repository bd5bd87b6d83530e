"""Small reference models and the heads that continual scenarios need.

``IncrementalClassifier`` grows its output layer when a task brings classes it
has not seen (class-incremental learning), keeping the old units' weights.
Task-incremental learning uses masking of the logits to the task's classes
(see :class:`lifelong.engine.objective.ClassificationObjective`), which is
equivalent to one head per task sharing nothing but the backbone.

``MODELS`` maps config names to factories ``factory(stream, **params)``. The
language-model factories (``tiny-causal-lm``, ``hf-causal-lm``) live in
:mod:`lifelong.hf.models` and are loaded the first time their name is asked for.
"""

from lifelong.models.nets import MLP, MODELS, IncrementalClassifier, SmallCNN, build_model, cnn, mlp

__all__ = ["MLP", "SmallCNN", "IncrementalClassifier", "build_model", "MODELS", "mlp", "cnn"]
