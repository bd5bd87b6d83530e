"""The schedule registry. Method files register their class in :data:`SCHEDULES`
with ``@SCHEDULES.register("name")``; ``lifelong.curriculum`` imports every
schedule class by name (that import registers it)."""

from lifelong.registry import Registry

SCHEDULES: Registry = Registry("schedule")
