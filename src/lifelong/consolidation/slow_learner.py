"""``slow-learner``: per-module learning rates and frozen embeddings (the slow learner of
SLCA, Zhang et al. 2023, "SLCA: Slow Learner with Classifier Alignment for Continual
Learning on a Pre-trained Model")."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

from torch import nn

from lifelong.consolidation._util import number
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.hft import matches, patterns
from lifelong.consolidation.registry import CONSOLIDATORS
from lifelong.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


@CONSOLIDATORS.register("slow-learner")
class SlowLearner(Consolidator):
    """Learning-rate multipliers by module-name pattern (e.g. backbone x0.1, head x1); frozen modules by pattern.

    ``lr_multipliers`` maps patterns (names, dotted prefixes or wildcards, as
    for ``freeze``: ``backbone``, ``backbone.*``, ``*.wte``) to a factor of the
    base learning rate; the first pattern (in the order given) that matches a
    parameter decides, parameters no pattern matches get ``default``. A factor
    of 0 freezes the parameter. ``freeze`` lists patterns frozen from the first
    task on (e.g. the embeddings: ``['*wte*', '*wpe*']`` for GPT-2,
    ``['*embed_tokens*']`` for Llama); where the output layer is tied to the
    token embeddings (GPT-2, tied Llama configs) it is the same parameter, listed
    once under the embedding's name, so freezing one freezes both. SLCA's observation: a pre-trained
    representation trained with a much smaller rate than the classifier
    (0.01-0.1x) overfits each task far less, which removes most forgetting in
    the representation layer. Every pattern must match a parameter of the
    model (checked at each task start, so a typo stops the run at once).

    The groups are built by :func:`lifelong.engine.optim.make_optimizer`.
    """

    name: ClassVar[str] = "slow-learner"
    title: ClassVar[str] = "Slow learner (SLCA, Zhang et al. 2023): per-module learning-rate multipliers, frozen embeddings."

    def __init__(self, lr_multipliers: Mapping[str, float] | None = None, freeze: str | Sequence[str] = (),
                 default: float = 1.0):
        raw = {"backbone": 0.1} if lr_multipliers is None else lr_multipliers
        if not isinstance(raw, Mapping):
            raise ConfigError("slow-learner: lr_multipliers must map module patterns to factors, e.g. "
                              f"{{'backbone': 0.1, 'head': 1.0}}; got {lr_multipliers!r}.")
        self.lr_multipliers: dict[str, float] = {}
        for pat, factor in raw.items():
            patterns(self.name, "lr_multipliers", [pat])
            self.lr_multipliers[pat] = number(self.name, f"lr_multipliers['{pat}']", factor, 0.0,
                                              note="0 freezes the parameter")
        self.freeze = patterns(self.name, "freeze", list(freeze) if not isinstance(freeze, str) else freeze)
        self.default = number(self.name, "default", default, 0.0, note="the factor of unmatched parameters")

    def multiplier(self, name: str) -> float:
        """The learning-rate factor of parameter ``name`` (0 = frozen)."""
        if matches(name, self.freeze):
            return 0.0
        for pat, factor in self.lr_multipliers.items():
            if matches(name, [pat]):
                return factor
        return self.default

    def before_task(self, ctx: "Context") -> None:
        names = [n for n, _ in ctx.model.named_parameters()]
        for pat in [*self.lr_multipliers, *self.freeze]:
            if not any(matches(n, [pat]) for n in names):
                tops = sorted({n.split(".")[0] for n in names})
                raise ConfigError(f"slow-learner: pattern '{pat}' matches no parameter of the model; its "
                                  f"top-level modules are: {', '.join(tops)}.")
        for n, p in ctx.model.named_parameters():
            if p.requires_grad and self.multiplier(n) == 0.0:
                p.requires_grad_(False)

    def param_groups(self, model: nn.Module, lr: float) -> list[dict[str, Any]]:
        groups: dict[float, dict[str, Any]] = {}
        for n, p in model.named_parameters():
            if not p.requires_grad:
                continue
            factor = self.multiplier(n)
            if factor == 0.0:
                continue
            groups.setdefault(factor, {"params": [], "lr": lr * factor, "lr_multiplier": factor})["params"].append(p)
        return list(groups.values())

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass
