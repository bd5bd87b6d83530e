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
import re
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any, Callable

from lifelong.errors import LifelongError

PathLike = str | os.PathLike


class StorageError(LifelongError, OSError):
    """Results could not be written (folder not writable, disk full, ...)."""


def storage_error(exc: OSError, path: PathLike, what: str = "write", needed: int | None = None) -> StorageError:
    """Turn an OSError into a StorageError that names ``path`` and says what to do.

    For a full disk the message names the folder, the space free there and
    (when known) the ``needed`` bytes of the file being written.
    """
    p = os.fspath(path)
    if isinstance(exc, PermissionError) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        hint = (
            "the folder is not writable (permission denied or read-only file system). "
            "Choose another output folder or fix the folder's permissions."
        )
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        folder = Path(p).parent
        free = _free_bytes(folder)
        space = ", ".join(x for x in (f"{human_bytes(needed)} needed" if needed else "",
                                      f"{human_bytes(free)} free" if free is not None else "") if x)
        hint = (f"the disk is full (or the quota is exhausted) in the folder {folder}{f' ({space})' if space else ''}. "
                "Results written so far are kept. Free some space (or write the results to another disk), then "
                "continue the run with --resume.")
    else:
        hint = f"{exc.strerror or exc}."
    return StorageError(f"cannot {what} {p}: {hint}")


def human_bytes(n: int | float | None) -> str:
    """``1536`` -> ``'1.5 KB'``."""
    if n is None:
        return "?"
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"  # pragma: no cover


def _free_bytes(folder: Path) -> int | None:
    probe = Path(folder)
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None


class _Recorder:
    """A file wrapper that remembers the OSError a write raised.

    ``torch.save`` turns a failed write (ENOSPC...) into ``RuntimeError: enforce
    fail ... unexpected pos``; the recorded error says what really happened.
    """

    def __init__(self, fh: IO):
        self._fh = fh
        self.error: OSError | None = None
        self.written = 0

    def write(self, data: Any) -> int:
        try:
            n = self._fh.write(data)
        except OSError as exc:
            self.error = exc
            raise
        self.written += len(data)
        return n

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fh, name)


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


def _atomic(path: PathLike, mode: str, writer: Callable[[IO], None], encoding: str | None = None,
            needed: int | None = None) -> Path:
    target = Path(path)
    folder = target.parent
    tmp_name: str | None = None
    rec: _Recorder | None = None
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, mode, encoding=encoding, newline="" if "b" not in mode else None) as fh:
            rec = _Recorder(fh)
            writer(rec)  # type: ignore[arg-type]
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
        raise storage_error(exc, target, needed=needed) from exc
    except RuntimeError as exc:  # torch.save reports a failed write as RuntimeError ('unexpected pos')
        if rec is not None and rec.error is not None:
            raise storage_error(rec.error, target, needed=needed) from exc
        if "unexpected pos" in str(exc) or "file write failed" in str(exc):
            err = OSError(errno.ENOSPC if _free_bytes(folder) == 0 else errno.EIO, str(exc))
            raise storage_error(err, target, needed=needed) from exc
        raise
    finally:
        if tmp_name is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    return target


def write_text_atomic(path: PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically (parents are created). Returns the path."""
    return _atomic(path, "w", lambda fh: fh.write(text), encoding=encoding, needed=len(text.encode(encoding)))


def write_bytes_atomic(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parents are created). Returns the path."""
    return _atomic(path, "wb", lambda fh: fh.write(data), needed=len(data))


def link_atomic(src: PathLike, dst: PathLike) -> Path:
    """Make ``dst`` the same file as ``src`` atomically: a hard link (no copy), or a copy where links fail.

    Readers of ``dst`` see the old file or the new one, never a part.
    """
    import secrets

    source, target = Path(src), Path(dst)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        try:
            os.link(source, tmp)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EROFS, errno.ENOENT):
                raise
            shutil.copyfile(source, tmp)  # a file system without hard links
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise storage_error(exc, target, needed=_size(source)) from exc
    return target


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None


#: temporary files of the atomic writer: ``.<target name>.<random>.tmp``
_TMP = re.compile(r"^\..+\.[A-Za-z0-9_]{6,}\.tmp$")


def clean_orphans(folder: PathLike) -> list[Path]:
    """Delete the atomic writer's leftover temporary files in ``folder`` (not below it); return them.

    They are left by a process killed in the middle of a write. Only call this
    while no other process writes into the folder (a run holds its lock).
    """
    removed = []
    with contextlib.suppress(OSError):
        for p in Path(folder).iterdir():
            if p.is_file() and _TMP.match(p.name):
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
    return removed


def tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in a nested dict/list (each storage counted once): a checkpoint's size, roughly."""
    seen: set[int] = set()
    total = 0
    stack = [obj]
    while stack:
        o = stack.pop()
        if isinstance(o, dict):
            stack.extend(o.values())
        elif isinstance(o, (list, tuple)):
            stack.extend(o)
        elif hasattr(o, "untyped_storage"):
            with contextlib.suppress(Exception):
                st = o.untyped_storage()
                if st.data_ptr() not in seen:
                    seen.add(st.data_ptr())
                    total += st.nbytes()
    return total


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

    return _atomic(path, "wb", lambda fh: torch.save(obj, fh), needed=tensor_bytes(obj))
