"""Tokenised text on disk: one Arrow IPC file per (source, tokenizer, settings), memory-mapped.

A text source is tokenised once into an Arrow file (pyarrow's IPC writer, no
storage engine of ours) with variable-length rows, unpadded::

    input_ids   list<int32>   the row's tokens
    labels      list<int32>   the token to learn at each position, -100 where nothing is learned
    prompt_len  int32         tokens before the first learned one
    task        string        the task the row belongs to
    difficulty  float32       (NaN when the data has none)
    prompt, completion  string  the raw texts (text scorers, inspection)

The file lives under the cache folder (``$LIFELONG_CACHE``, else
``~/.cache/lifelong/text``) named by a key that hashes the source's content,
the tokenizer's identity and every setting that changes the rows, so a
second run, or another process, opens it instead of tokenising again. It is
written to a temporary file in the same folder and moved into place with
``os.replace``: concurrent builders each write their own temporary file and
the last rename wins with identical content; a reader never sees a partial
file. Opening memory-maps the file: rows are read from the page cache when
gathered, so resident memory follows the batches, not the data set.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor

from lifelong.data.stored import register_source
from lifelong.errors import DataError, require

IGNORE = -100
FORMAT_VERSION = 1
STORED_FIELDS = ("input_ids", "attention_mask", "labels", "prompt_len")
_OPEN: dict[str, "TokenStore"] = {}


def cache_root() -> Path:
    """Where token stores live: ``$LIFELONG_CACHE`` or ``~/.cache/lifelong/text``."""
    env = os.environ.get("LIFELONG_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lifelong" / "text"


def file_digest(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes (read in chunks: constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A string that changes whenever the tokenizer would encode text differently."""
    if hasattr(tokenizer, "alphabet"):  # CharTokenizer
        return "char:" + tokenizer.alphabet
    parts = [type(tokenizer).__name__, str(getattr(tokenizer, "name_or_path", ""))]
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        parts.append(backend.to_str())
    else:
        parts.append(json.dumps(sorted(tokenizer.get_vocab().items())))
    parts.append(str(getattr(tokenizer, "chat_template", None)))
    parts.append(json.dumps([getattr(tokenizer, k, None) for k in ("bos_token_id", "eos_token_id", "pad_token_id")]))
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()


def store_key(**parts: Any) -> str:
    """The cache key of a store: a hash of everything that determines its rows."""
    blob = json.dumps({"version": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:40]


def _schema(pa: Any) -> Any:
    return pa.schema([("input_ids", pa.list_(pa.int32())), ("labels", pa.list_(pa.int32())),
                      ("prompt_len", pa.int32()), ("task", pa.string()), ("difficulty", pa.float32()),
                      ("prompt", pa.string()), ("completion", pa.string())])


def encoded_batch(pa: Any, ids: Sequence[Sequence[int]], labels: Sequence[Sequence[int]], prompt_len: Sequence[int],
                  task: Sequence[str], difficulty: Sequence[float], prompt: Sequence[str],
                  completion: Sequence[str]) -> Any:
    """One Arrow record batch of encoded rows (lists of python ints per row)."""
    lengths = np.fromiter((len(r) for r in ids), dtype=np.int64, count=len(ids))
    offsets = np.zeros(len(ids) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat_ids = np.fromiter((t for r in ids for t in r), dtype=np.int32, count=int(offsets[-1]))
    flat_lab = np.fromiter((t for r in labels for t in r), dtype=np.int32, count=int(offsets[-1]))
    off = pa.array(offsets)
    return pa.record_batch([
        pa.ListArray.from_arrays(off, pa.array(flat_ids)), pa.ListArray.from_arrays(off, pa.array(flat_lab)),
        pa.array(np.asarray(prompt_len, dtype=np.int32)), pa.array(list(task), pa.string()),
        pa.array(np.asarray(difficulty, dtype=np.float32)), pa.array(list(prompt), pa.string()),
        pa.array(list(completion), pa.string())], schema=_schema(pa))


def build_store(key: str, batches: Iterable[Any], pad_id: int, meta: dict[str, Any] | None = None,
                root: Path | None = None, rows_per_chunk: int = 65536) -> "TokenStore":
    """Write the record batches ``batches`` as the store ``key`` (atomically) and open it.

    Small batches are combined into chunks of about ``rows_per_chunk`` rows, so
    a gather touches few chunks; memory while building is one chunk."""
    pa = require("pyarrow", "llm", "Tokenised text stores")
    root = Path(root) if root is not None else cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{key}.arrow"
    info = {"key": key, "pad_id": int(pad_id), "version": FORMAT_VERSION, **(meta or {})}
    schema = _schema(pa).with_metadata({"lifelong": json.dumps(info)})
    fd, tmp = tempfile.mkstemp(prefix=f".{key}.", suffix=".tmp", dir=root)
    os.close(fd)
    try:
        pending: list[Any] = []
        count = 0
        rows = 0
        with pa.OSFile(tmp, "wb") as sink, pa.ipc.new_file(sink, schema) as writer:
            def flush() -> None:
                if pending:
                    table = pa.Table.from_batches(pending, schema=_schema(pa)).combine_chunks()
                    writer.write_table(table.replace_schema_metadata(schema.metadata), max_chunksize=1 << 30)
                    pending.clear()
            for batch in batches:
                pending.append(batch)
                count += batch.num_rows
                rows += batch.num_rows
                if count >= rows_per_chunk:
                    flush()
                    count = 0
            flush()
        if rows == 0:
            raise DataError(f"text store {key}: the source produced no rows.")
        os.replace(tmp, final)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return TokenStore.open(final)


def find_store(key: str, root: Path | None = None) -> "TokenStore | None":
    """The cached store ``key``, or None when it has not been built."""
    path = (Path(root) if root is not None else cache_root()) / f"{key}.arrow"
    return TokenStore.open(path) if path.is_file() else None


def _find_by_id(sid: int) -> "TokenStore | None":
    root = cache_root()
    if not root.is_dir():
        return None
    for p in root.glob("*.arrow"):
        if _id_of(p.stem) == sid:
            return TokenStore.open(p)
    return None


def _random_access_map(path: Path) -> Any:
    """The file memory-mapped read-only, advised as randomly accessed: batches
    gather scattered rows, and read-ahead around each one would only make the
    mapped (resident) pages grow with the file's size."""
    import mmap

    with open(path, "rb") as fh:
        m = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if hasattr(m, "madvise") and hasattr(mmap, "MADV_RANDOM"):
        m.madvise(mmap.MADV_RANDOM)
    return m


def _id_of(key: str) -> int:
    return int(key[:15], 16)


class TokenStore:
    """A memory-mapped Arrow file of tokenised rows (see module docs); a row source
    for :class:`~lifelong.data.stored.StoredExamples`."""

    fields = STORED_FIELDS

    def __init__(self, path: str | os.PathLike):
        pa = require("pyarrow", "llm", "Tokenised text stores")
        self.path = Path(path)
        try:
            self._mmap = _random_access_map(self.path)
            self.table = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(self._mmap))).read_all()
            self.meta = json.loads((self.table.schema.metadata or {})[b"lifelong"].decode("utf-8"))
        except (OSError, KeyError, ValueError, pa.ArrowInvalid) as exc:
            raise DataError(f"'{self.path}' is not a lifelong text store ({exc}); delete it and run again to "
                            "rebuild it.") from None
        self.key = str(self.meta["key"])
        self.id = _id_of(self.key)
        self.pad_id = int(self.meta["pad_id"])
        self._ids = [self._flat(c) for c in self.table.column("input_ids").chunks]
        self._labels = [self._flat(c) for c in self.table.column("labels").chunks]
        self._plen = [c.to_numpy(zero_copy_only=False) for c in self.table.column("prompt_len").chunks]
        starts = np.cumsum([0] + [len(o) - 1 for o, _ in self._ids])
        self._starts = starts
        self.lengths = np.concatenate([np.diff(o) for o, _ in self._ids]).astype(np.int32) if self._ids else \
            np.zeros(0, dtype=np.int32)

    @staticmethod
    def _flat(chunk: Any) -> tuple[np.ndarray, np.ndarray]:
        """(offsets, values) numpy views of one list<int32> chunk (zero-copy from the map)."""
        offsets = chunk.offsets.to_numpy()
        values = chunk.values.to_numpy()
        return offsets, values

    @classmethod
    def open(cls, path: str | os.PathLike) -> "TokenStore":
        """The store at ``path`` (opened once per process) and registered as a row source."""
        p = str(Path(path).resolve())
        if p not in _OPEN:
            store = cls(p)
            _OPEN[p] = store
            register_source(store, _find_by_id)
        return _OPEN[p]

    def __len__(self) -> int:
        return int(self._starts[-1])

    def column(self, name: str) -> np.ndarray:
        """A small per-row column (task, difficulty, prompt_len) as a numpy array."""
        col = self.table.column(name)
        if name == "task":
            enc = col.dictionary_encode().combine_chunks()
            names = enc.dictionary.to_pylist()
            return np.asarray(names, dtype=object)[enc.indices.to_numpy(zero_copy_only=False)]
        return col.to_numpy()

    def task_codes(self) -> tuple[list[str], np.ndarray]:
        """Task names in first-appearance order and each row's index into them."""
        enc = self.table.column("task").dictionary_encode().combine_chunks()
        return enc.dictionary.to_pylist(), enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)

    def texts(self, rows: np.ndarray, name: str) -> list[str]:
        """The raw strings of column ``name`` ('prompt' or 'completion') at ``rows``."""
        pa = require("pyarrow", "llm", "Tokenised text stores")
        return self.table.column(name).take(pa.array(np.asarray(rows, dtype=np.int64))).to_pylist()

    def gather(self, rows: np.ndarray, width: int) -> dict[str, Tensor]:
        """``input_ids``, ``attention_mask``, ``labels``, ``prompt_len`` of ``rows``,
        right-padded (or cut) to ``width`` tokens."""
        rows = np.asarray(rows, dtype=np.int64)
        n, w = len(rows), max(1, int(width))
        ids = np.full((n, w), self.pad_id, dtype=np.int64)
        labels = np.full((n, w), IGNORE, dtype=np.int64)
        mask = np.zeros((n, w), dtype=np.int64)
        plen = np.zeros(n, dtype=np.int64)
        chunk = np.searchsorted(self._starts, rows, side="right") - 1
        cols = np.arange(w)
        for c in np.unique(chunk).tolist():
            sel = np.nonzero(chunk == c)[0]
            local = rows[sel] - self._starts[c]
            offsets, values = self._ids[c]
            _, lab_values = self._labels[c]
            start = offsets[local].astype(np.int64)
            length = np.minimum(offsets[local + 1] - offsets[local], w)
            inside = cols[None, :] < length[:, None]
            src = (start[:, None] + cols[None, :])[inside]
            block_ids = ids[sel]
            block_ids[inside] = values[src]
            ids[sel] = block_ids
            block_lab = labels[sel]
            block_lab[inside] = lab_values[src]
            labels[sel] = block_lab
            mask[sel] = inside
            plen[sel] = self._plen[c][local]
        return {"input_ids": torch.from_numpy(ids), "attention_mask": torch.from_numpy(mask),
                "labels": torch.from_numpy(labels), "prompt_len": torch.from_numpy(plen)}

    def __repr__(self) -> str:
        return f"TokenStore({self.path.name}, rows={len(self)})"


class StoredTexts(Sequence[str]):
    """A read-only list of one raw-text column (``prompt + completion`` by default)
    at some rows of some stores, read from disk on access (no copy in memory)."""

    def __init__(self, stores: list[TokenStore], source_index: np.ndarray, rows: np.ndarray,
                 columns: tuple[str, ...] = ("prompt", "completion")):
        self.stores, self.source_index, self.rows, self.columns = stores, source_index, rows, columns

    def __len__(self) -> int:
        return len(self.rows)

    def _read(self, idx: np.ndarray) -> list[str]:
        out = [""] * len(idx)
        src = self.source_index[idx]
        for s in np.unique(src).tolist():
            sel = np.nonzero(src == s)[0]
            pieces = [self.stores[s].texts(self.rows[idx[sel]], c) for c in self.columns]
            for j, parts in zip(sel.tolist(), zip(*pieces)):
                out[j] = "".join(parts)
        return out

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self._read(np.arange(len(self))[i])
        n = len(self)
        if not -n <= i < n:
            raise IndexError(i)
        return self._read(np.array([i % n]))[0]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self), 8192):
            yield from self._read(np.arange(start, min(start + 8192, len(self))))
