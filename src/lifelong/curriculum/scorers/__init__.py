"""Difficulty scorers: per-item difficulty (higher = harder) for curricula.

Registered in :data:`SCORERS` by name: ``given``, ``loss``, ``confidence``,
``transfer``, ``ensemble``, ``length``, ``compression``, ``diversity``,
``readability``; importable by class from here.
"""

from lifelong.curriculum.scorers.base import SCORERS, Scorer

# every scorer, one line per method file (the import registers it)
from lifelong.curriculum.scorers.given import GivenScorer
from lifelong.curriculum.scorers.model import ConfidenceScorer, EnsembleScorer, LossScorer, TransferScorer
from lifelong.curriculum.scorers.text import (CompressionScorer, DiversityScorer, LengthScorer, ReadabilityScorer,
                                              compression_ratio, count_syllables, flesch_reading_ease,
                                              text_length, type_token_ratio)

__all__ = ["SCORERS", "Scorer", "GivenScorer", "LossScorer", "ConfidenceScorer", "TransferScorer",
           "EnsembleScorer", "LengthScorer", "CompressionScorer", "DiversityScorer", "ReadabilityScorer",
           "compression_ratio", "flesch_reading_ease", "text_length", "type_token_ratio", "count_syllables"]
