"""Difficulty scorers: per-item difficulty (higher = harder) for curricula.

Registered in :data:`SCORERS` by name: ``given``, ``loss``, ``confidence``,
``transfer``, ``ensemble``, ``length``, ``compression``, ``diversity``,
``readability``.
"""

from lifelong.curriculum.scorers.base import SCORERS, Scorer
from lifelong.curriculum.scorers import given, model, text  # noqa: F401  (registers the scorers)
from lifelong.curriculum.scorers.text import (compression_ratio, flesch_reading_ease, text_length,
                                              type_token_ratio, count_syllables)

__all__ = ["SCORERS", "Scorer", "compression_ratio", "flesch_reading_ease", "text_length",
           "type_token_ratio", "count_syllables"]
