"""What the weight-merging consolidators (``average``, ``magmax``, ``ema``) share.

A merging consolidator keeps, besides the model being trained, a *merged*
model built from the weights the training reaches. At each task end
(``after_task``) the merged weights are copied into the model, so the model
the loop assesses right after (the accuracy-matrix row), the one replay
extras are computed with, and the one the run ends with is the merge.

What the next task trains from is ``train_from``:

* ``live`` (default): the task-end weights *before* merging, stashed at the
  task end and put back at the next task start -- the sequential fine-tuning
  chain of MagMax (Marczak et al. 2024: each task fine-tunes the previous
  task's fine-tuned model; the merge is what is deployed and assessed);
* ``merged``: the merged weights themselves (the merge becomes the new start).

Which parameters are merged: by default every parameter that requires grad at
some task start (the union over tasks, so HFT's changing halves and a LoRA
adapter that the user attached are covered; frozen weights never change and
need no merge). ``params`` (names, dotted prefixes or wildcards as for
``freeze``) selects parameters by name instead, whether they train or not --
e.g. ``['*base_layer.weight']`` to merge the base weights that the ``lora``
consolidator (merge mode) folds each task's adapter into; list ``lora`` first
so its adapters are merged into the base weights before the merge reads them.

Every parameter's anchor (theta_0) is its value when it is first tracked, at
a task start before any training. State is plain tensors, numbers, strings
and lists/dicts of them (``torch.load(weights_only=True)`` loads it), so a run
resumes exactly from a task end (the stash is part of the state) or mid-task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import torch
from torch import Tensor, nn

from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.hft import matches, patterns
from lifelong.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context

TRAIN_FROM = ("live", "merged")


def grown(old: Tensor, full: Tensor) -> Tensor:
    """``full`` with its leading block (the shape of ``old``) replaced by ``old``: a tensor
    recorded before a classifier head grew, widened with ``full``'s values for the new entries."""
    if old.shape == full.shape:
        return old
    out = full.detach().clone()
    idx = tuple(slice(0, min(a, b)) for a, b in zip(old.shape, full.shape))
    out[idx] = old[idx]
    return out


def copy_into(p: Tensor, value: Tensor) -> None:
    """Write ``value`` into parameter ``p`` in place (the optimiser keeps the same objects);
    only the common block when ``p`` has grown since ``value`` was recorded."""
    if p.shape == value.shape:
        p.copy_(value)
    else:
        idx = tuple(slice(0, min(a, b)) for a, b in zip(p.shape, value.shape))
        p[idx].copy_(value[idx])


def _copied(tensors: dict[str, Tensor]) -> dict[str, Tensor]:
    """Detached copies: a saved state must not change when training goes on (the EMA updates in place)."""
    return {n: t.detach().clone() for n, t in tensors.items()}


class WeightMerge(Consolidator):
    """Base class: parameter tracking, anchors, the task-end swap and the live-weights stash.

    Subclasses implement :meth:`start_tracking` (set up their accumulators for
    newly tracked names), :meth:`grow` (widen them when a parameter grew) and
    :meth:`merge` (fold the task-end weights in, return the merged weights).
    """

    name: ClassVar[str] = "merge"
    #: the accumulator dicts (name -> tensor) a subclass keeps; saved and grown with the anchors
    accumulators: ClassVar[tuple[str, ...]] = ()

    def __init__(self, params: str | Sequence[str] | None = None, train_from: str = "live"):
        if train_from not in TRAIN_FROM:
            raise ConfigError(f"{self.name}: train_from must be one of {', '.join(TRAIN_FROM)}; got {train_from!r}.")
        self.params = None if params is None else patterns(self.name, "params", params)
        if self.params is not None and not self.params:
            raise ConfigError(f"{self.name}: params must name at least one parameter pattern, or be left out "
                              "(= every trainable parameter).")
        self.train_from = train_from
        self.base: dict[str, Tensor] = {}     # theta_0 per tracked parameter
        self.stash: dict[str, Tensor] | None = None  # task-end live weights (train_from: live)
        self.tasks_merged = 0
        for acc in self.accumulators:
            setattr(self, acc, {})

    # -- which parameters ---------------------------------------------------------------
    def selected(self, model: nn.Module) -> dict[str, nn.Parameter]:
        named = dict(model.named_parameters())
        if self.params is None:
            return {n: p for n, p in named.items() if p.requires_grad}
        chosen = {n: p for n, p in named.items() if matches(n, self.params)}
        if not chosen:
            tops = sorted({n.split(".")[0] for n in named})
            raise ConfigError(f"{self.name}.params: {self.params} match no parameter of the model; its top-level "
                              f"modules are: {', '.join(tops)} (with lora, list lora before {self.name}).")
        return chosen

    def tracked(self, model: nn.Module) -> dict[str, nn.Parameter]:
        named = dict(model.named_parameters())
        return {n: named[n] for n in self.base if n in named}

    # -- hooks --------------------------------------------------------------------------
    @torch.no_grad()
    def before_task(self, ctx: "Context") -> None:
        model = ctx.model
        named = dict(model.named_parameters())
        if self.stash is not None:  # train_from live: the next task trains on from the un-merged weights
            for n, value in self.stash.items():
                if n in named:
                    copy_into(named[n], value.to(named[n].device))
            self.stash = None
        for n, p in named.items():  # a head that grew: widen anchors and accumulators
            if n in self.base and self.base[n].shape != p.shape:
                self.base[n] = grown(self.base[n], p)
                self.grow(n, p)
        new = {n: p for n, p in self.selected(model).items() if n not in self.base}
        for n, p in new.items():
            self.base[n] = p.detach().clone()
        if new:
            self.start_tracking(new)

    @torch.no_grad()
    def after_task(self, ctx: "Context") -> None:
        params = self.tracked(ctx.model)
        if not params:
            return
        ends = {n: p.detach().clone() for n, p in params.items()}
        merged = self.merge(ends)
        self.tasks_merged += 1
        self.stash = ends if self.train_from == "live" else None
        for n, value in merged.items():
            copy_into(params[n], value)

    # -- subclass API ---------------------------------------------------------------------
    def start_tracking(self, new: dict[str, nn.Parameter]) -> None:
        raise NotImplementedError

    def grow(self, name: str, p: Tensor) -> None:
        raise NotImplementedError

    def merge(self, ends: dict[str, Tensor]) -> dict[str, Tensor]:
        raise NotImplementedError

    # -- state --------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "params": None if self.params is None else list(self.params), "train_from": self.train_from,
            "base": _copied(self.base), "stash": None if self.stash is None else _copied(self.stash),
            "tasks_merged": int(self.tasks_merged)}
        for acc in self.accumulators:
            state[acc] = _copied(getattr(self, acc))
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.base = dict(state["base"])
        self.stash = None if state["stash"] is None else dict(state["stash"])
        self.tasks_merged = int(state["tasks_merged"])
        for acc in self.accumulators:
            setattr(self, acc, dict(state[acc]))
