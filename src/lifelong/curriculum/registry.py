"""The schedule registries. Method files register themselves; this module
imports them all explicitly so every name is available once the package is."""

from lifelong.registry import Registry

SCHEDULES: Registry = Registry("schedule")


def _load() -> None:
    # Each import registers its classes. Keep this list explicit.
    from lifelong.curriculum import basic  # noqa: F401
    from lifelong.curriculum import pacing, cyclical, annealed, self_paced  # noqa: F401
    from lifelong.curriculum import data_dropout, difficulty_filter  # noqa: F401
    from lifelong.curriculum.teachers import sequential, mixture, learning_progress  # noqa: F401
    from lifelong.curriculum.teachers import mastering_rate, alp_gmm, ucb  # noqa: F401
    from lifelong.curriculum.review import power_law, spaced  # noqa: F401


_load()
