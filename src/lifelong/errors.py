"""Errors meant for people.

Every error the library raises on bad input is a :class:`LifelongError`: its
message names the input that is wrong and what would be accepted. The command
line prints the message alone (no traceback) and exits with status 2.
"""

from __future__ import annotations


class LifelongError(Exception):
    """Base class: a problem with the user's input or environment, not a bug."""


class ConfigError(LifelongError, ValueError):
    """A configuration field has a wrong name, type or value."""


class DataError(LifelongError, ValueError):
    """A dataset, task or stream is malformed (empty, wrong labels, shapes...)."""


class TrainingError(LifelongError, RuntimeError):
    """Training cannot go on (NaN loss, diverged run). Results so far are kept."""


class MissingDependencyError(LifelongError, ImportError):
    """An optional extra is needed for this feature."""

    def __init__(self, package: str, extra: str, feature: str):
        super().__init__(
            f"{feature} needs the '{package}' package, which is not installed. "
            f"Install it with: pip install 'lifelong[{extra}]'"
        )


def require(module: str, extra: str, feature: str):
    """Import an optional dependency or raise a MissingDependencyError."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise MissingDependencyError(module.split(".")[0], extra, feature) from exc


class RunStopped(KeyboardInterrupt):
    """A run stopped on request (an observer set ``Context.stop``, e.g. a TrainerCallback's
    ``should_training_stop``), after a checkpoint: handled like Ctrl-C (results kept, resumable)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

