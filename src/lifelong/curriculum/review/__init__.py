"""Review schedules: when to revisit old material in the replay memory.

Each lives in its own module and registers in
:data:`lifelong.curriculum.registry.SCHEDULES`; import them by class from
:mod:`lifelong.curriculum`."""
