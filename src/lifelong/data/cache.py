"""An on-disk cache for generated benchmark data: computed once per machine, not once per process.

Generating MNIST-1D takes 6-8 s, longer than a small run's training, and
every process of a grid used to pay it. :func:`cached_arrays` keeps the
generated arrays in ``$LIFELONG_CACHE`` (default ``$XDG_CACHE_HOME/lifelong``
or ``~/.cache/lifelong``; ``LIFELONG_CACHE=off`` disables it):

* content-keyed: the file name is a hash of everything that determines the
  data (the generator's arguments and the generating package's version), so
  a change of either makes a new entry instead of reusing a stale one;
* safe under concurrent writers: each writer writes a temporary file in the
  cache folder and renames it into place (``os.replace`` is atomic), so a
  reader sees a whole file or none; two processes generating the same entry
  at once both succeed;
* safe to read: ``numpy.load(allow_pickle=False)`` (no code runs from the
  file); a damaged or unreadable entry is regenerated with a warning.

A cache that cannot be written (read-only home, full disk) only costs the
speed-up: the data is generated and returned as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable

import numpy as np

#: bump when the layout of cached files changes
FORMAT = 1


def cache_dir() -> Path | None:
    """The cache folder, or None when ``LIFELONG_CACHE=off`` (also ``0``, ``none``, ``false``)."""
    env = os.environ.get("LIFELONG_CACHE", "").strip()
    if env.lower() in ("off", "0", "none", "false", "no"):
        return None
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME", "").strip()
    return (Path(base).expanduser() if base else Path.home() / ".cache") / "lifelong"


def cache_key(name: str, args: dict[str, Any]) -> str:
    """The entry's file stem: ``name`` plus a hash of ``args`` (JSON, sorted keys)."""
    text = json.dumps({"format": FORMAT, **args}, sort_keys=True, default=str)
    return f"{name}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


def _read(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 - any damage (truncated, not a zip, bad header) means regenerate
        warnings.warn(f"the cached data file {path} is damaged ({type(exc).__name__}: {exc}); it is being "
                      "generated again.", RuntimeWarning, stacklevel=3)
        return None


def _write(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp.npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a cache entry is ordinary data
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def cached_arrays(name: str, args: dict[str, Any], make: Callable[[], dict[str, np.ndarray]],
                  folder: Path | None = None) -> dict[str, np.ndarray]:
    """The arrays ``make()`` returns for ``args``, from the cache when a valid entry exists.

    ``args`` must hold everything the arrays depend on (generator arguments,
    package versions). ``folder`` overrides :func:`cache_dir`.
    """
    root = folder if folder is not None else cache_dir()
    if root is None:
        return make()
    path = root / f"{cache_key(name, args)}.npz"
    found = _read(path)
    if found is not None:
        return found
    arrays = make()
    try:
        _write(path, arrays)
    except OSError as exc:
        warnings.warn(f"could not write the data cache {path} ({exc}); the data will be generated again next time. "
                      "Set LIFELONG_CACHE to a writable folder (or LIFELONG_CACHE=off).", RuntimeWarning, stacklevel=2)
    return arrays
