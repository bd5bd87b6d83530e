"""Teachers: schedules that choose which group (task, skill, data source) of a
multi-task pool to study next. Each lives in its own module and registers in
:data:`lifelong.curriculum.registry.SCHEDULES`; import them by class from
:mod:`lifelong.curriculum`."""
