"""The schedule registries. Method files register themselves; this module
imports them all explicitly so every name is available once the package is."""

from lifelong.registry import Registry

SCHEDULES: Registry = Registry("schedule")


def _load() -> None:
    # Each import registers its classes. Keep this list explicit.
    from lifelong.curriculum import basic  # noqa: F401


_load()
