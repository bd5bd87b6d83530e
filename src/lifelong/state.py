"""Checkpoint state that names what it saves.

Every stateful part of a run (schedules, consolidators, memory buffers,
samplers) has ``state_dict()`` / ``load_state_dict(state)``. A state dict holds
only *plain* values -- tensors, Python numbers, strings, bools, ``None`` and
lists, tuples and dicts of them -- so a checkpoint loads with
``torch.load(path, weights_only=True)`` and nothing read from disk runs code.
A module is saved as its ``state_dict()``, a generator as its
``get_state()`` tensor, an array as a tensor.

Classes list the attributes their checkpoint saves in ``state_attrs`` (what
the object learned or counted; hyper-parameters come from the config that
built it); :func:`save_attrs` and :func:`load_attrs` do the rest.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

import torch

_SCALARS = (int, float, bool, str, type(None))


def check_plain(value: Any, where: str = "state") -> Any:
    """``value`` itself if it is plain (see the module docs); else a TypeError naming where it is.

    Only exact Python scalar types pass: a numpy scalar is a ``float``
    subclass but would need numpy's pickle to load, so it is refused."""
    if isinstance(value, torch.Tensor) or type(value) in _SCALARS:
        return value
    if isinstance(value, Mapping):
        for k, v in value.items():
            if type(k) not in _SCALARS:
                raise TypeError(f"{where}: key {k!r} of type {type(k).__name__} cannot be checkpointed")
            check_plain(v, f"{where}[{k!r}]")
        return value
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            check_plain(v, f"{where}[{i}]")
        return value
    raise TypeError(f"{where} is a {type(value).__name__}, which a weights-only checkpoint cannot hold; save "
                    "tensors, numbers, strings, bools, None or lists/dicts of them (a module's state_dict(), "
                    "a generator's get_state(), an array as a tensor).")


def save_attrs(obj: Any, names: Iterable[str]) -> dict[str, Any]:
    """``{name: obj.name}`` for the listed attributes that ``obj`` has (an
    attribute set only once training starts is absent before), checked plain."""
    owner = getattr(obj, "name", None) or type(obj).__name__
    return {n: check_plain(getattr(obj, n), f"{owner}.{n}") for n in names if hasattr(obj, n)}


def load_attrs(obj: Any, names: Iterable[str], state: Mapping[str, Any]) -> None:
    """Set the listed attributes found in ``state`` (others keep their values,
    e.g. those set by ``start``); keys ``obj`` does not list are ignored, so
    older checkpoints that saved more still load."""
    for n in names:
        if n in state:
            setattr(obj, n, state[n])


__all__ = ["check_plain", "save_attrs", "load_attrs"]
