"""``StoredExamples``: rows that live in an on-disk store, gathered only when taken.

Text at scale does not fit in memory as padded tensors (1M rows of 512 tokens
is ~12 GB of int64). A *row source* (e.g. :class:`lifelong.hf.store.TokenStore`,
an Arrow file that is memory-mapped) holds variable-length rows; a
``StoredExamples`` is a list of ``(source, row)`` references plus small
in-memory per-row columns (``task``, ``difficulty``...). It behaves like
:class:`~lifelong.data.examples.Examples` where the loop needs it:

* ``take(index)`` gathers those rows from their sources and pads them to the
  longest row *of the batch* (dynamic padding), returning a plain ``Examples``
  on the view's device: pools, evaluation and memory keep working unchanged;
* ``size``, ``in``, ``select``/``with_fields``/``without``, ``to(device)`` and
  :meth:`cat` are cheap: they never touch the token data;
* ``view[name]`` of an in-memory column is that column; of a stored field it
  materialises every row padded to the stream-wide ``width`` (the old
  in-memory layout, O(rows) memory: a fallback for code that wants a whole
  column, not the training path);
* :meth:`refs` turns rows into plain reference columns (``_ref_source``,
  ``_ref_row``) that replay memory stores instead of token copies, and
  :meth:`from_refs` turns them back into a view.

A source implements ``id`` (an int stable across processes, e.g. derived from
its cache key), ``fields`` (the stored field names), ``lengths`` (int array,
tokens per row) and ``gather(rows, width) -> dict[str, Tensor]``; it
registers itself with :func:`register_source` so references resolve by id.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, Mapping, Protocol

import numpy as np
import torch
from torch import Tensor

from lifelong.data.examples import Examples
from lifelong.errors import DataError

REF_SOURCE, REF_ROW = "_ref_source", "_ref_row"


class RowSource(Protocol):
    id: int
    fields: tuple[str, ...]
    lengths: np.ndarray

    def gather(self, rows: np.ndarray, width: int) -> dict[str, Tensor]: ...


_SOURCES: dict[int, RowSource] = {}
#: called with an unknown source id; may open and register it (e.g. from the cache folder)
_FINDERS: list[Callable[[int], Any]] = []


def register_source(source: RowSource, finder: Callable[[int], Any] | None = None) -> None:
    """Make ``source`` resolvable by its id (memory references, checkpoints)."""
    _SOURCES[int(source.id)] = source
    if finder is not None and finder not in _FINDERS:
        _FINDERS.append(finder)


def source_by_id(sid: int) -> RowSource:
    sid = int(sid)
    if sid not in _SOURCES:
        for find in _FINDERS:
            found = find(sid)
            if found is not None:
                _SOURCES[sid] = found
                break
    if sid not in _SOURCES:
        raise DataError(f"replay memory refers to stored text rows of source {sid:#x}, which is not open and not in "
                        "the cache folder; build the same text stream first (same files, tokenizer and settings) "
                        "or set LIFELONG_CACHE to the folder that holds it.")
    return _SOURCES[sid]


def _as_index(index: Tensor | slice | np.ndarray, n: int) -> np.ndarray:
    if isinstance(index, slice):
        return np.arange(n)[index]
    if isinstance(index, Tensor):
        index = index.detach().cpu()
        if index.dtype == torch.bool:
            return np.nonzero(index.numpy())[0]
        return index.long().numpy()
    return np.asarray(index, dtype=np.int64)


class StoredExamples(Mapping[str, Tensor]):
    """References to rows of row sources plus in-memory per-row columns (see module docs)."""

    def __init__(self, sources: list[RowSource], source_index: np.ndarray, rows: np.ndarray,
                 columns: Mapping[str, Tensor] | None = None, fields: tuple[str, ...] | None = None,
                 width: int | None = None, device: torch.device | str | None = None):
        self.sources = list(sources)
        self.source_index = np.asarray(source_index, dtype=np.int64)
        self.rows = np.asarray(rows, dtype=np.int64)
        if self.source_index.shape != self.rows.shape or self.rows.ndim != 1:
            raise DataError("StoredExamples: source_index and rows must be 1-D arrays of one length.")
        self.fields_stored: tuple[str, ...] = tuple(fields if fields is not None
                                                     else (self.sources[0].fields if self.sources else ()))
        self.columns: dict[str, Tensor] = {}
        for k, v in dict(columns or {}).items():
            t = v if isinstance(v, Tensor) else torch.as_tensor(v)
            if t.dim() == 0 or t.shape[0] != len(self.rows):
                raise DataError(f"StoredExamples: column '{k}' needs one value per row ({len(self.rows)}).")
            self.columns[k] = t
        clash = set(self.columns) & set(self.fields_stored)
        if clash:
            raise DataError(f"StoredExamples: column(s) {sorted(clash)} are also stored fields.")
        self.width = int(width) if width is not None else self._longest(np.arange(len(self.rows)))
        self.device = torch.device(device) if device is not None else None

    # Mapping protocol (never materialises for membership or iteration) --------
    def __iter__(self) -> Iterator[str]:
        return iter((*self.fields_stored, *self.columns))

    def __len__(self) -> int:
        return len(self.fields_stored) + len(self.columns)

    def __contains__(self, name: object) -> bool:
        return name in self.columns or name in self.fields_stored

    def __getitem__(self, name: str) -> Tensor:
        if name in self.columns:
            return self._on_device(self.columns[name])
        if name in self.fields_stored:
            return self.take(slice(None), width=self.width)[name]
        raise KeyError(f"no field '{name}'; fields are {sorted(self)}")

    @property
    def size(self) -> int:
        return len(self.rows)

    # views (no token data touched) ----------------------------------------------
    def _view(self, **changes: Any) -> "StoredExamples":
        kw = dict(sources=self.sources, source_index=self.source_index, rows=self.rows, columns=self.columns,
                  fields=self.fields_stored, width=self.width, device=self.device)
        kw.update(changes)
        return StoredExamples(**kw)

    def subset(self, index: Tensor | slice | np.ndarray) -> "StoredExamples":
        """The rows at ``index`` as another view (no gather)."""
        idx = _as_index(index, self.size)
        t = torch.from_numpy(idx)
        return self._view(source_index=self.source_index[idx], rows=self.rows[idx],
                          columns={k: v[t] for k, v in self.columns.items()})

    def select(self, *names: str) -> "StoredExamples":
        missing = [n for n in names if n not in self]
        if missing:
            raise KeyError(f"no field(s) {missing}; fields are {sorted(self)}")
        return self._view(fields=tuple(f for f in self.fields_stored if f in names),
                          columns={k: v for k, v in self.columns.items() if k in names})

    def with_fields(self, **kw: Tensor) -> "StoredExamples":
        cols = dict(self.columns)
        cols.update(kw)
        return self._view(columns=cols)

    def without(self, *names: str) -> "StoredExamples":
        return self._view(fields=tuple(f for f in self.fields_stored if f not in names),
                          columns={k: v for k, v in self.columns.items() if k not in names})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "StoredExamples":
        return self._view(device=device)

    def _on_device(self, t: Tensor) -> Tensor:
        return t.to(self.device) if self.device is not None else t

    # gathering ---------------------------------------------------------------
    def _longest(self, idx: np.ndarray) -> int:
        best = 1
        for s, src in enumerate(self.sources):
            rows = self.rows[idx][self.source_index[idx] == s]
            if len(rows):
                best = max(best, int(src.lengths[rows].max()))
        return best

    def take(self, index: Tensor | slice | np.ndarray, width: int | None = None) -> Examples:
        """Rows at ``index`` gathered from their sources, padded to the batch's
        longest row (or to ``width``), as an ``Examples`` on the view's device."""
        idx = _as_index(index, self.size)
        n = len(idx)
        w = int(width) if width is not None else self._longest(idx)
        out: dict[str, Tensor] = {}
        if self.fields_stored and n:
            src_of = self.source_index[idx]
            parts: dict[str, Tensor] | None = None
            for s in np.unique(src_of).tolist():
                sel = np.nonzero(src_of == s)[0]
                got = self.sources[s].gather(self.rows[idx[sel]], w)
                if parts is None:
                    if len(sel) == n:
                        parts = got
                        break
                    parts = {k: torch.empty((n, *v.shape[1:]), dtype=v.dtype) for k, v in got.items()}
                t = torch.from_numpy(sel)
                for k, v in got.items():
                    parts[k][t] = v
            out.update({k: v for k, v in (parts or {}).items() if k in self.fields_stored})
        elif self.fields_stored:
            g = self.sources[0].gather(np.zeros(0, dtype=np.int64), w)
            out.update({k: v for k, v in g.items() if k in self.fields_stored})
        t = torch.from_numpy(idx)
        out.update({k: v[t] for k, v in self.columns.items()})
        ex = Examples(out)
        return ex.to(self.device) if self.device is not None else ex

    # references (replay memory) ---------------------------------------------
    def refs(self, index: Tensor | slice | np.ndarray) -> Examples:
        """Rows at ``index`` as plain reference columns plus the in-memory columns."""
        idx = _as_index(index, self.size)
        t = torch.from_numpy(idx)
        sid = torch.tensor([int(s.id) for s in self.sources], dtype=torch.long)
        cols = {REF_SOURCE: sid[torch.from_numpy(self.source_index[idx])] if len(idx) else torch.zeros(0, dtype=torch.long),
                REF_ROW: torch.from_numpy(self.rows[idx].copy())}
        cols.update({k: v[t] for k, v in self.columns.items()})
        return Examples(cols)

    @staticmethod
    def from_refs(refs: Mapping[str, Tensor], width: int | None = None) -> "StoredExamples":
        """The view of reference columns made by :meth:`refs` (other columns stay in memory)."""
        ids = refs[REF_SOURCE].long().cpu().numpy()
        uniq, inverse = np.unique(ids, return_inverse=True)
        sources = [source_by_id(int(u)) for u in uniq]
        cols = {k: v for k, v in refs.items() if k not in (REF_SOURCE, REF_ROW)}
        return StoredExamples(sources, inverse.reshape(-1), refs[REF_ROW].long().cpu().numpy(), cols, width=width)

    @staticmethod
    def cat(parts: list["StoredExamples"]) -> "StoredExamples":
        """One view over several views' rows (sources are shared, nothing is gathered)."""
        parts = [p for p in parts if p.size > 0]
        if not parts:
            raise DataError("cannot concatenate zero non-empty StoredExamples")
        names = set(parts[0])
        for p in parts[1:]:
            if set(p) != names:
                raise DataError(f"cannot concatenate stored examples with fields {sorted(names)} and {sorted(p)}")
        sources: list[RowSource] = []
        pos: dict[int, int] = {}
        sidx = []
        for p in parts:
            remap = []
            for s in p.sources:
                if int(s.id) not in pos:
                    pos[int(s.id)] = len(sources)
                    sources.append(s)
                remap.append(pos[int(s.id)])
            sidx.append(np.asarray(remap, dtype=np.int64)[p.source_index])
        cols = {k: torch.cat([p.columns[k] for p in parts]) for k in parts[0].columns}
        return StoredExamples(sources, np.concatenate(sidx), np.concatenate([p.rows for p in parts]), cols,
                              fields=parts[0].fields_stored, width=max(p.width for p in parts),
                              device=parts[0].device)

    def __repr__(self) -> str:
        return (f"StoredExamples(n={self.size}, stored={list(self.fields_stored)}, "
                f"columns={list(self.columns)}, sources={len(self.sources)}, width={self.width})")


def is_stored(data: Any) -> bool:
    """Whether ``data`` is a store-backed view (rows referenced, not held)."""
    return isinstance(data, StoredExamples)
