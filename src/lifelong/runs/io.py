"""Atomic file writes, so a crash or Ctrl-C never leaves a half-written result.

Every write goes to a temporary file in the *same* folder (so the final rename
stays on one file system), is flushed and fsync'ed, then moved over the target
with :func:`os.replace`, which is atomic on POSIX and Windows: readers see the
old file or the new one, never a mix. The folder is fsync'ed afterwards (best
effort) so the rename itself survives a power cut.

Permission problems and a full disk become a :class:`StorageError` whose
message names the path and says what to do; the temporary file is removed.
The engine's checkpoint code uses :func:`torch_save_atomic`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

from lifelong.errors import LifelongError

PathLike = str | os.PathLike


class StorageError(LifelongError, OSError):
    """Results could not be written (folder not writable, disk full, ...)."""


def storage_error(exc: OSError, path: PathLike, what: str = "write") -> StorageError:
    """Turn an OSError into a StorageError that names ``path`` and says what to do."""
    p = os.fspath(path)
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = (
            "the folder is not writable (permission denied or read-only file system). "
            "Choose another output folder or fix the folder's permissions."
        )
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "the disk is full (or the quota is exhausted). Free some space or write the results to another disk."
    else:
        hint = f"{exc.strerror or exc}."
    return StorageError(f"cannot {what} {p}: {hint}")


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":  # directories cannot be opened for fsync on Windows
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_UMASK: int | None = None


def _new_file_mode(target: Path) -> int:
    """The mode a plain ``open()`` would give: the old file's, or 0o666 minus the umask.

    (``mkstemp`` creates 0o600 files; results and reports should be readable like any other file.)
    """
    global _UMASK
    try:
        return target.stat().st_mode & 0o777
    except OSError:
        pass
    if _UMASK is None:
        _UMASK = os.umask(0o022)  # reading the umask means setting it; put it back at once
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


def _atomic(path: PathLike, mode: str, writer: Callable[[IO], None], encoding: str | None = None) -> Path:
    target = Path(path)
    folder = target.parent
    tmp_name: str | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, mode, encoding=encoding, newline="" if "b" not in mode else None) as fh:
            writer(fh)
            fh.flush()
            os.fsync(fh.fileno())
        if os.name == "posix":
            os.chmod(tmp_name, _new_file_mode(target))
        os.replace(tmp_name, target)
        tmp_name = None
        _fsync_dir(folder)
    except OSError as exc:
        if isinstance(exc, StorageError):
            raise
        raise storage_error(exc, target) from exc
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return target


def write_text_atomic(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (parents are created). Returns the path."""
    return _atomic(path, "w", lambda fh: fh.write(text), encoding=encoding)


def write_bytes_atomic(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parents are created). Returns the path."""
    return _atomic(path, "wb", lambda fh: fh.write(data))


def write_json_atomic(path: PathLike, obj: Any, indent: int | None = 2) -> Path:
    """Write ``obj`` as JSON atomically. NaN/inf are refused (they are not JSON): use None."""
    text = json.dumps(obj, indent=indent, allow_nan=False, default=_json_default)
    return write_text_atomic(path, text + "\n")


def _json_default(obj: Any) -> Any:
    # numpy scalars/arrays and paths show up in results; convert them instead of failing
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def read_json(path: PathLike) -> Any:
    """Read a JSON file; a missing or corrupt file gives a LifelongError naming it."""
    p = Path(path)
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LifelongError(f"{p} does not exist.") from None
    except json.JSONDecodeError as exc:
        raise LifelongError(f"{p} is not valid JSON ({exc}); the file is damaged.") from None
    except OSError as exc:
        raise storage_error(exc, p, "read") from exc


def torch_save_atomic(obj: Any, path: PathLike) -> Path:
    """``torch.save(obj, path)`` atomically: a checkpoint is either the old one or the new one."""
    import torch

    return _atomic(path, "wb", lambda fh: torch.save(obj, fh))
