"""``Examples``: equal-length named tensors, the unit of data everywhere.

Pools, buffers and batches index tensors instead of concatenating datasets
(DESIGN.md, "fast by default"): a batch is ``examples.take(indices)``, one
gather per field. Classification data has fields ``x`` and ``y``; text data
has ``input_ids``, ``attention_mask`` and ``labels``; any extra per-sample
column (``difficulty``, ``group``, ``logits``...) is just another field.
"""

from __future__ import annotations

from typing import Iterator, Mapping

import torch
from torch import Tensor
from torch.utils.data import Dataset

from lifelong.errors import DataError


class Examples(Mapping[str, Tensor]):
    """A read-only mapping of field name -> tensor, all with the same first dimension."""

    __slots__ = ("_fields", "_n")

    def __init__(self, fields: Mapping[str, Tensor] | None = None, **kw: Tensor):
        merged = dict(fields or {})
        merged.update(kw)
        if not merged:
            raise DataError("Examples needs at least one field (e.g. x and y).")
        tensors: dict[str, Tensor] = {}
        n = None
        for name, value in merged.items():
            t = value if isinstance(value, Tensor) else torch.as_tensor(value)
            if t.dim() == 0:
                raise DataError(f"field '{name}' is a scalar; every field needs one row per example.")
            if n is None:
                n = t.shape[0]
            elif t.shape[0] != n:
                raise DataError(
                    f"field '{name}' has {t.shape[0]} rows but other fields have {n}; "
                    "every field needs one row per example."
                )
            tensors[name] = t
        self._fields = tensors
        self._n = int(n or 0)

    # Mapping protocol -------------------------------------------------
    def __getitem__(self, name: str) -> Tensor:
        try:
            return self._fields[name]
        except KeyError:
            raise KeyError(f"no field '{name}'; fields are {sorted(self._fields)}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:  # number of fields (Mapping protocol)
        return len(self._fields)

    # Examples API -------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of examples (rows)."""
        return self._n

    @property
    def fields(self) -> dict[str, Tensor]:
        return dict(self._fields)

    def take(self, index: Tensor | slice) -> "Examples":
        """Rows at ``index`` (a LongTensor or a slice), one gather per field."""
        return Examples({k: v[index] for k, v in self._fields.items()})

    def with_fields(self, **kw: Tensor) -> "Examples":
        out = dict(self._fields)
        out.update(kw)
        return Examples(out)

    def without(self, *names: str) -> "Examples":
        return Examples({k: v for k, v in self._fields.items() if k not in names})

    def select(self, *names: str) -> "Examples":
        """Only the fields ``names`` (no copy)."""
        missing = [n for n in names if n not in self._fields]
        if missing:
            raise KeyError(f"no field(s) {missing}; fields are {sorted(self._fields)}")
        return Examples({k: self._fields[k] for k in names})

    def to(self, device: torch.device | str, non_blocking: bool = False) -> "Examples":
        return Examples({k: v.to(device, non_blocking=non_blocking) for k, v in self._fields.items()})

    @staticmethod
    def cat(parts: list["Examples"]) -> "Examples":
        """Rows of ``parts`` one after another. Fields whose rows have different
        widths (text batches padded per batch) are right-padded to the widest,
        with :data:`PAD_VALUES` (``labels``: -100; others: 0)."""
        parts = [p for p in parts if p.size > 0]
        if not parts:
            raise DataError("cannot concatenate zero non-empty Examples")
        names = set(parts[0])
        for p in parts[1:]:
            if set(p) != names:
                raise DataError(f"cannot concatenate Examples with fields {sorted(names)} and {sorted(p)}")
        return Examples({k: _cat_padded(k, [p[k] for p in parts]) for k in parts[0]})

    def __repr__(self) -> str:
        shapes = ", ".join(f"{k}={tuple(v.shape)}:{str(v.dtype).replace('torch.', '')}" for k, v in self._fields.items())
        return f"Examples(n={self._n}, {shapes})"


#: fill value when rows of different widths are concatenated (per-batch padded text):
#: ``labels`` get the ignore index, every other field 0 (``attention_mask`` 0 = padding)
PAD_VALUES: dict[str, float] = {"labels": -100}


def _cat_padded(name: str, tensors: list[Tensor]) -> Tensor:
    """``torch.cat`` along rows; tensors whose later dimensions differ (text
    batches padded to their own longest row) are right-padded to the largest."""
    shapes = {tuple(t.shape[1:]) for t in tensors}
    if len(shapes) == 1 or len({len(s) for s in shapes}) != 1:
        return torch.cat(tensors)
    target = [max(dims) for dims in zip(*shapes)]
    fill = PAD_VALUES.get(name, 0)
    out = []
    for t in tensors:
        if list(t.shape[1:]) != target:
            big = torch.full((t.shape[0], *target), fill, dtype=t.dtype, device=t.device)
            big[(slice(None), *[slice(0, d) for d in t.shape[1:]])] = t
            t = big
        out.append(t)
    return torch.cat(out)


class ExamplesDataset(Dataset):
    """A torch ``Dataset`` view of :class:`Examples` for ordinary ``DataLoader`` use.

    Supports the batched ``__getitems__`` protocol, so a DataLoader with a
    batch sampler gathers a whole batch in one indexing operation; pass
    ``collate_fn=ExamplesDataset.collate``.
    """

    def __init__(self, examples: Examples):
        self.examples = examples

    def __len__(self) -> int:
        return self.examples.size

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: v[i] for k, v in self.examples.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {k: v[idx] for k, v in self.examples.items()}

    @staticmethod
    def collate(batch):
        if isinstance(batch, dict):
            return batch
        return torch.utils.data.default_collate(batch)
