"""Helpers shared by the per-class buffers (class-balanced, herding).

Both keep their bookkeeping as tensors over slots (the class of each slot),
so a task's update is a fixed number of tensor operations over the capacity
and the new data: no Python loop over the classes or tasks seen so far.
"""

from __future__ import annotations

import torch
from torch import Tensor

from lifelong.data.examples import Examples
from lifelong.errors import ConfigError


def balance_key(key: str, ctx: object = None) -> str:
    """Resolve ``key='auto'``: balance on the class ``y``, except in a
    domain-incremental stream, where every task has the same classes and the
    units to keep apart are the tasks (balancing by class there lets the
    newest task's examples crowd out the older ones)."""
    if key != "auto":
        return key
    stream = getattr(ctx, "stream", None)
    return "task" if getattr(stream, "scenario", None) == "domain" else "y"


def class_labels(data: Examples, key: str) -> Tensor:
    """The per-example class used for balancing: ``data[key]`` (``y`` by default)
    or, for data without that field (language-model rows), the ``task`` field."""
    if key in data:
        labels = data[key]
    elif "task" in data:
        labels = data["task"]
    else:
        raise ConfigError(f"the memory balances on field '{key}', but the data has only {sorted(data)}; "
                          "set the buffer's key to one of those fields.")
    if labels.dim() != 1:
        labels = labels.reshape(labels.shape[0], -1)[:, 0]
    labels = labels.long().cpu()
    if len(labels) and int(labels.min()) < 0:
        raise ConfigError(f"the memory balances on field '{key}', whose values must be >= 0 class ids; "
                          f"got {int(labels.min())}.")
    return labels


def water_fill(available: Tensor, capacity: int) -> Tensor:
    """Equal shares of ``capacity`` per class, capped by what each class has.

    ``available[k]`` is how many examples class k could keep. Classes with
    fewer than an equal share keep all they have; the others share what is
    left equally, the remainder going one each to the lowest class ids.
    When everything fits, every class keeps everything. A few tensor
    operations on K classes, no Python loop.
    """
    available = available.long()
    if int(available.sum()) <= capacity:
        return available.clone()
    k = len(available)
    a_sorted, order = torch.sort(available, stable=True)
    before = torch.cumsum(a_sorted, 0) - a_sorted           # total of the smaller classes
    rest = torch.arange(k, 0, -1)                            # classes from position i on
    fits = a_sorted <= (capacity - before) // rest           # kept whole if all smaller ones were
    j = int(torch.cumprod(fits.long(), 0).sum())             # first position that does not fit
    out = torch.zeros_like(available)
    out[order[:j]] = a_sorted[:j]
    left = capacity - int(a_sorted[:j].sum())
    big = order[j:].sort().values                            # the capped classes, by id
    base, extra = divmod(left, len(big))
    out[big] = base
    out[big[:extra]] += 1
    return out


def shuffle_by_group(groups: Tensor, num_groups: int, generator: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """Items ``0..len(groups)-1`` in random order grouped by ``groups``, with each
    item's group and its rank inside the group (0, 1, ...)."""
    perm = torch.randperm(len(groups), generator=generator)
    g = groups[perm]
    idx = torch.argsort(g, stable=True)
    items, g = perm[idx], g[idx]
    counts = torch.bincount(g, minlength=num_groups)
    start = torch.cumsum(counts, 0) - counts
    rank = torch.arange(len(g)) - start[g]
    return items, g, rank


def assign_slots(pending: int, freed: Tensor, filled: int) -> Tensor:
    """Slots for ``pending`` new rows: slots just vacated first, then fresh
    slots from ``filled`` upward (so the filled region stays contiguous)."""
    if len(freed) >= pending:
        return freed[:pending]
    fresh = torch.arange(filled, filled + pending - len(freed), dtype=torch.long)
    return torch.cat([freed, fresh])


def padded(t: Tensor | None, n: int) -> Tensor:
    """``t`` extended with zeros to length ``n`` (a per-class counter that grows)."""
    out = torch.zeros(n, dtype=torch.long)
    if t is not None and len(t):
        out[: len(t)] = t[:n]
    return out
