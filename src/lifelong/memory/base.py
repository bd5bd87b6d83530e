"""Replay memory: a fixed-capacity store of past examples.

Buffers preallocate one tensor per field at their capacity and overwrite slots
in place: adding an example is O(1) amortised, and nothing is concatenated or
rebuilt as tasks accumulate. Selection policies (reservoir, class-balanced,
herding) differ only in *which* slots new examples take; each lives in its own
file and registers in ``BUFFERS``.

Memory is filled at the end of each task (``add``) with the task's training
examples, a ``task`` field holding the task index, and any extra fields the
consolidators ask for (e.g. DER's logits, computed by the model at the end of
the task).
"""

from __future__ import annotations

from typing import Any, Callable, ClassVar

import torch
from torch import Tensor

from lifelong.data.examples import Examples
from lifelong.data.stored import REF_ROW, StoredExamples, is_stored
from lifelong.errors import ConfigError


class Memory:
    """Base buffer: storage and bookkeeping; subclasses choose the slots."""

    name: ClassVar[str] = "memory"

    def __init__(self, capacity: int = 200, seed: int = 0):
        if int(capacity) < 0:
            raise ConfigError(f"memory size must be >= 0; got {capacity}.")
        self.capacity = int(capacity)
        self.generator = torch.Generator().manual_seed(int(seed))
        self.store: dict[str, Tensor] = {}
        self.filled = 0
        self.seen = 0  # examples offered so far (reservoir needs it)

    def __len__(self) -> int:
        return self.filled

    @property
    def examples(self) -> Examples | StoredExamples:
        """A view of the filled slots (no copy). Store-backed text is kept as row
        references (see :meth:`add`), so this is then a
        :class:`~lifelong.data.stored.StoredExamples` whose ``take`` gathers the rows."""
        view = Examples({k: v[: self.filled] for k, v in self.store.items()})
        return StoredExamples.from_refs(view) if REF_ROW in self.store else view

    def _ensure_storage(self, data: Examples) -> None:
        if self.store:
            missing = set(self.store) ^ set(data)
            if missing:
                raise ConfigError(f"memory fields changed between tasks: {sorted(missing)}")
            return
        self.store = {k: torch.zeros((self.capacity, *v.shape[1:]), dtype=v.dtype) for k, v in data.items()}

    def write(self, slots: Tensor, data: Examples, rows: Tensor) -> None:
        """Copy ``data`` rows ``rows`` into memory ``slots`` (one scatter per field)."""
        if len(slots) == 0:
            return
        for k, v in data.items():
            self.store[k][slots] = v[rows].to(self.store[k].dtype)

    def select(self, data: Examples, ctx: Any = None) -> tuple[Tensor, Tensor]:
        """Choose where new examples go: ``(slots, rows)`` pairs, meaning row
        ``rows[k]`` of ``data`` is stored in slot ``slots[k]`` (a slot may be
        a fresh one, ``< capacity``, or one being overwritten). Subclasses
        implement their selection policy here; it must not touch storage."""
        raise NotImplementedError

    def add(self, data: Examples, ctx: Any = None,
            extras: Callable[[Examples], dict[str, Tensor]] | None = None) -> None:
        """Offer ``data`` (one task's examples, with a ``task`` field) to the memory.

        ``extras(chosen)`` computes additional per-sample fields (e.g. DER's
        logits) for the rows actually stored, so the cost stays proportional
        to what is kept, not to the task's size.
        """
        if self.capacity == 0 or data.size == 0:
            return
        slots, rows = self.select(data, ctx)
        self.seen += data.size
        if len(rows) == 0:
            return
        # store-backed text: keep (source, row) references, not copies of the tokens
        stored = is_stored(data)
        chosen = data.refs(rows) if stored else data.take(rows)
        if extras is not None:
            more = extras(data.take(rows, width=data.width) if stored else chosen)
            if more:
                chosen = chosen.with_fields(**{k: v.detach().cpu() for k, v in more.items()})
        self._ensure_storage(chosen)
        self.write(slots, chosen, torch.arange(len(rows)))
        self.filled = min(self.capacity, max(self.filled, int(slots.max()) + 1))

    def task_counts(self, num_tasks: int) -> Tensor:
        if not self.filled:
            return torch.zeros(num_tasks, dtype=torch.long)
        return torch.bincount(self.store["task"][: self.filled].long(), minlength=num_tasks)

    def state_dict(self) -> dict[str, Any]:
        return {"store": self.store, "filled": self.filled, "seen": self.seen,
                "generator": self.generator.get_state(), "extra": self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.store, self.filled, self.seen = state["store"], state["filled"], state["seen"]
        self.generator.set_state(state["generator"])
        self.load_extra_state(state.get("extra", {}))

    def extra_state(self) -> dict[str, Any]:
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        pass
