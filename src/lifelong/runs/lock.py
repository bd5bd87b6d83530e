"""One writer per run folder: an exclusive OS file lock held for the life of a run.

A run takes ``<run>/.lock`` with ``fcntl.flock`` before it writes anything
and keeps it until it ends. The operating system releases the lock when the
process exits for any reason (a crash, SIGKILL, a power cut), so a stale lock
never blocks a resume. A second writer (``--overwrite`` or ``--resume`` of a
live run) is refused with a message naming the process that holds the lock.
The file holds the holder's PID and command line, for that message.

Where ``fcntl`` does not exist (Windows) the lock is not taken.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

from lifelong.errors import LifelongError
from lifelong.runs.io import PathLike, storage_error

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK = ".lock"


class RunBusyError(LifelongError):
    """The run folder is being written by another live process."""


class RunLock:
    """``with RunLock(run_dir):`` holds the folder's lock, or raises :class:`RunBusyError` at once."""

    def __init__(self, folder: PathLike):
        self.folder = Path(folder)
        self.path = self.folder / LOCK
        self._fd: int | None = None

    @staticmethod
    def holder(folder: PathLike) -> str | None:
        """Who holds the lock of ``folder`` ('PID 123 (lifelong run ...)'), or None when nobody does."""
        path = Path(folder) / LOCK
        if fcntl is None or not path.exists():
            return None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except OSError:
                return _describe(path)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def acquire(self) -> "RunLock":
        if fcntl is None:  # pragma: no cover - Windows
            return self
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error(exc, self.path, "create the lock file") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            who = _describe(self.path)
            raise RunBusyError(
                f"the run folder {self.folder} is in use by {who}, which is still writing to it. Wait for it to "
                "finish, or stop it first (Ctrl-C in its terminal, or kill -INT with its PID); then resume with "
                f"lifelong run --resume {self.folder}, or start it again with --overwrite.") from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n{' '.join(sys.argv)}\n".encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        with contextlib.suppress(OSError):
            os.close(self._fd)
        self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _describe(path: Path) -> str:
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        lines = []
    pid = lines[0].strip() if lines else "?"
    cmd = lines[1].strip() if len(lines) > 1 else ""
    return f"process PID {pid}" + (f" ({cmd})" if cmd else "")
