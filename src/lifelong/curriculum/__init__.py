"""What to study next: schedules over a study pool.

Every schedule is registered in :data:`SCHEDULES` under the name configs use,
and importable by class from here (``from lifelong.curriculum import
LinearPacing, UniformReplay``). Adding a schedule: one file that subclasses
:class:`Schedule` (or :class:`ReviewSchedule`), decorated with
``@SCHEDULES.register("name")``, plus its import line below.
"""

from lifelong.curriculum.base import Feedback, PoolView, ReviewSchedule, Schedule
from lifelong.curriculum.sampler import ScheduleBatchSampler, ScheduleItemSampler, ScheduleSampler
from lifelong.curriculum.registry import SCHEDULES
from lifelong.curriculum.scorers import (SCORERS, CompressionScorer, ConfidenceScorer, DiversityScorer,
                                         EnsembleScorer, GivenScorer, LengthScorer, LossScorer, ReadabilityScorer,
                                         Scorer, TransferScorer, compression_ratio, count_syllables,
                                         flesch_reading_ease, text_length, type_token_ratio)

# every schedule, one line per method file (the import registers it)
from lifelong.curriculum.basic import Uniform, UniformReplay
from lifelong.curriculum.pacing import (AntiCurriculum, GeometricPacing, LinearPacing, PacedSchedule,
                                        RandomOrderPacing, RootPacing, StepPacing)
from lifelong.curriculum.cyclical import CyclicalCurriculum
from lifelong.curriculum.annealed import AnnealedReweighting
from lifelong.curriculum.self_paced import SelfPaced
from lifelong.curriculum.data_dropout import ProgressiveDataDropout
from lifelong.curriculum.difficulty_filter import DifficultyFilter
from lifelong.curriculum.teachers.sequential import SequentialTeacher
from lifelong.curriculum.teachers.mixture import MixtureTeacher
from lifelong.curriculum.teachers.learning_progress import LearningProgressTeacher
from lifelong.curriculum.teachers.mastering_rate import MasteringRateTeacher
from lifelong.curriculum.teachers.alp_gmm import ALPGMMTeacher
from lifelong.curriculum.teachers.ucb import UCBTeacher
from lifelong.curriculum.review.power_law import PowerLawReview
from lifelong.curriculum.review.spaced import SpacedReview

__all__ = [
    # contracts, samplers, registries
    "Feedback", "PoolView", "Schedule", "ReviewSchedule", "ScheduleSampler", "ScheduleBatchSampler",
    "ScheduleItemSampler", "SCHEDULES", "SCORERS", "Scorer",
    # schedules
    "Uniform", "UniformReplay", "PacedSchedule", "LinearPacing", "RootPacing", "GeometricPacing", "StepPacing",
    "AntiCurriculum", "RandomOrderPacing", "CyclicalCurriculum", "AnnealedReweighting", "SelfPaced",
    "ProgressiveDataDropout", "DifficultyFilter",
    # teachers
    "SequentialTeacher", "MixtureTeacher", "LearningProgressTeacher", "MasteringRateTeacher", "ALPGMMTeacher",
    "UCBTeacher",
    # review schedules
    "PowerLawReview", "SpacedReview",
    # difficulty scorers
    "GivenScorer", "LossScorer", "ConfidenceScorer", "TransferScorer", "EnsembleScorer", "LengthScorer",
    "CompressionScorer", "DiversityScorer", "ReadabilityScorer",
    "compression_ratio", "count_syllables", "flesch_reading_ease", "text_length", "type_token_ratio",
]
