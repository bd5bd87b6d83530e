"""Half fine-tuning (Hui et al. 2024, "HFT: Half Fine-Tuning for Large Language Models")."""

from __future__ import annotations

import fnmatch
import math
from typing import TYPE_CHECKING, ClassVar, Sequence

import torch

from lifelong.consolidation._util import number
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.registry import CONSOLIDATORS
from lifelong.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


def patterns(owner: str, param: str, value: str | Sequence[str]) -> list[str]:
    """``value`` (one pattern or a list of them) as a list of non-empty strings; else a ConfigError."""
    pats = [value] if isinstance(value, str) else value
    if not isinstance(pats, (list, tuple)) or not all(isinstance(p, str) and p for p in pats):
        raise ConfigError(f"{owner}: {param} must be a module/parameter name or pattern, or a list of them "
                          f"(e.g. backbone, '*.bias'); got {value!r}.")
    return list(pats)


def matches(name: str, patterns: Sequence[str]) -> bool:
    """Whether parameter ``name`` lies in a module named by one of ``patterns``:
    the exact name, a dotted prefix (``backbone`` matches ``backbone.net.1.weight``)
    or a shell-style wildcard (``*.bias``, ``layers.1*``)."""
    for pat in patterns:
        if name == pat or name.startswith(pat + ".") or fnmatch.fnmatchcase(name, pat) \
                or fnmatch.fnmatchcase(name, pat + ".*"):
            return True
    return False


@CONSOLIDATORS.register("hft")
class HFT(Consolidator):
    """Each task trains a seeded random half of the parameter tensors; the other half is frozen.

    ``before_task`` draws, with a generator seeded by ``seed`` and the task
    index, floor(``fraction`` * N) of the N trainable parameter tensors
    (leaving out those matching ``keep_trainable``, e.g. ``head``) and sets
    ``requires_grad=False`` on them; the loop builds the optimiser after
    ``before_task``, so it never sees the frozen half. ``after_task``
    unfreezes them. The paper selects half of the parameters to learn each
    new task and freezes the other half; here the choice is among whole
    parameter tensors, the granularity torch offers, which works for any
    model (the paper's exact per-block selection rule for transformers is
    not reproduced).
    """

    name: ClassVar[str] = "hft"
    title: ClassVar[str] = ("Half fine-tuning (Hui et al. 2024): each task trains a seeded random half of the "
                            "parameter tensors.")
    state_attrs: ClassVar[tuple[str, ...]] = ("frozen",)

    def __init__(self, fraction: float = 0.5, seed: int = 0, keep_trainable: Sequence[str] = ()):
        self.fraction = number(self.name, "fraction", fraction, 0.0, 1.0, high_open=True,
                               note="the share of parameter tensors frozen per task")
        self.seed = number(self.name, "seed", seed, None, integer=True)
        self.keep_trainable = patterns(self.name, "keep_trainable", keep_trainable)
        self.frozen: list[str] = []

    def choose(self, names: list[str], task_index: int) -> list[str]:
        """The names frozen for task ``task_index`` (deterministic given the seed)."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(task_index))
        k = math.floor(len(names) * self.fraction)
        pick = torch.randperm(len(names), generator=g)[:k].sort().values.tolist()
        return [names[i] for i in pick]

    def before_task(self, ctx: "Context") -> None:
        params = dict(ctx.model.named_parameters())
        names = [n for n, p in params.items() if p.requires_grad and not matches(n, self.keep_trainable)]
        self.frozen = self.choose(names, ctx.phase)
        for n in self.frozen:
            params[n].requires_grad_(False)

    def after_task(self, ctx: "Context") -> None:
        params = dict(ctx.model.named_parameters())
        for n in self.frozen:
            if n in params:
                params[n].requires_grad_(True)
        self.frozen = []
