"""Freeze named modules, e.g. the feature extractor after the first task."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Sequence

from lifelong.consolidation._util import number
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.hft import matches, patterns
from lifelong.consolidation.registry import CONSOLIDATORS
from lifelong.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


@CONSOLIDATORS.register("freeze")
class Freeze(Consolidator):
    """From task ``from_task`` on (0-based), parameters in ``modules`` stop training.

    ``modules`` are module or parameter names, dotted prefixes or wildcards
    (``backbone``, ``transformer.h.0``, ``*.bias``). Frozen parameters stay
    frozen for the rest of the stream. A pattern that matches nothing is an
    error that lists the model's top-level modules; it is checked at every
    ``before_task``, the first task's included, so a typo stops the run
    before any training rather than after the tasks before ``from_task``.
    """

    name: ClassVar[str] = "freeze"
    title: ClassVar[str] = "Freeze named modules (default: the backbone) from a given task on."
    state_attrs: ClassVar[tuple[str, ...]] = ("frozen",)

    def __init__(self, modules: Sequence[str] = ("backbone",), from_task: int = 1):
        mods = patterns(self.name, "modules", modules)
        if not mods:
            raise ConfigError("freeze: modules must name at least one module (e.g. backbone); got [].")
        self.modules = mods
        self.from_task = number(self.name, "from_task", from_task, 0, integer=True, note="0-based task index")
        self.frozen: list[str] = []

    def before_task(self, ctx: "Context") -> None:
        named = list(ctx.model.named_parameters())
        for pat in self.modules:
            if not any(matches(n, [pat]) for n, _ in named):
                tops = sorted({n.split(".")[0] for n, _ in named})
                raise ConfigError(f"freeze.modules: '{pat}' matches no parameter of the model; "
                                  f"its top-level modules are: {', '.join(tops)}.")
        if ctx.phase < self.from_task:
            return
        for n, p in named:
            if matches(n, self.modules) and p.requires_grad:
                p.requires_grad_(False)
                self.frozen.append(n)
