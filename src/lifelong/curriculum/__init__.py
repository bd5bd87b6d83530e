"""What to study next: schedules over a study pool.

Every schedule is registered in :data:`SCHEDULES` under the name configs use.
"""

from lifelong.curriculum.base import Feedback, PoolView, ReviewSchedule, Schedule
from lifelong.curriculum.sampler import ScheduleBatchSampler, ScheduleItemSampler, ScheduleSampler
from lifelong.curriculum.registry import SCHEDULES

__all__ = ["Feedback", "PoolView", "Schedule", "ReviewSchedule", "ScheduleSampler",
           "ScheduleBatchSampler", "ScheduleItemSampler", "SCHEDULES"]
