"""What to study next: schedules over a study pool.

Every schedule is registered in :data:`SCHEDULES` under the name configs use.
"""

from lifelong.curriculum.base import Feedback, PoolView, ReviewSchedule, Schedule
from lifelong.curriculum.sampler import ScheduleBatchSampler, ScheduleItemSampler, ScheduleSampler
from lifelong.curriculum.registry import SCHEDULES
from lifelong.curriculum.scorers import (SCORERS, Scorer, compression_ratio, count_syllables,
                                         flesch_reading_ease, text_length, type_token_ratio)

__all__ = ["Feedback", "PoolView", "Schedule", "ReviewSchedule", "ScheduleSampler",
           "ScheduleBatchSampler", "ScheduleItemSampler", "SCHEDULES", "SCORERS", "Scorer",
           "compression_ratio", "count_syllables", "flesch_reading_ease", "text_length", "type_token_ratio"]
