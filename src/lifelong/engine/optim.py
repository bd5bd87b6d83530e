"""Building the optimiser, with the parameter groups consolidators ask for.

:func:`make_optimizer` does what the loop's optimiser construction always did
(SGD with momentum, Adam or AdamW over every parameter that requires grad)
and, in addition, honours :meth:`Consolidator.param_groups
<lifelong.consolidation.base.Consolidator.param_groups>`: a consolidator such
as ``slow-learner`` can give parts of the model their own learning rate.
Every group carries ``lr_multiplier`` (its rate over the base rate), so code
that changes the base rate later (a schedule, a resumed run with a lower
rate) sets ``group['lr'] = base_lr * group['lr_multiplier']``.
"""

from __future__ import annotations

from typing import Any, Iterable

import torch
from torch import nn

from lifelong.errors import ConfigError, LifelongError


def build_param_groups(model: nn.Module, consolidators: Iterable[Any], lr: float) -> list[dict[str, Any]]:
    """Parameter groups over ``model``'s trainable parameters at base rate ``lr``.

    At most one consolidator may declare groups (two would disagree about a
    parameter's rate); its groups may list only parameters that require grad,
    each at most once; trainable parameters it leaves out form one more group
    at ``lr``. Without such a consolidator the result is a single group of every
    trainable parameter at ``lr``. Groups that end up empty are dropped.
    """
    trainable = [p for p in model.parameters() if p.requires_grad]
    if not trainable:
        raise LifelongError("the model has no trainable parameters (every parameter is frozen).")
    declared = [(c, g) for c in consolidators
                for g in [c.param_groups(model, lr) if hasattr(c, "param_groups") else None] if g is not None]
    if len(declared) > 1:
        raise ConfigError("consolidators " + " and ".join(f"'{c.name}'" for c, _ in declared)
                          + " both set optimiser parameter groups; keep only one of them.")
    groups: list[dict[str, Any]] = []
    seen: set[int] = set()
    wanted = {id(p) for p in trainable}
    if declared:
        owner, given = declared[0]
        for group in given:
            params = list(group["params"])
            for p in params:
                if id(p) not in wanted:
                    raise ConfigError(f"'{owner.name}' put a frozen or foreign parameter into an optimiser group; "
                                      "groups may only hold parameters that require grad.")
                if id(p) in seen:
                    raise ConfigError(f"'{owner.name}' put a parameter into two optimiser groups.")
                seen.add(id(p))
            if params:
                out = {k: v for k, v in group.items() if k != "params"}
                out.setdefault("lr", lr)
                out.setdefault("lr_multiplier", out["lr"] / lr)
                groups.append({"params": params, **out})
    rest = [p for p in trainable if id(p) not in seen]
    if rest:
        groups.append({"params": rest, "lr": lr, "lr_multiplier": 1.0})
    return groups


def make_optimizer(model: nn.Module, cfg: Any, consolidators: Iterable[Any] = ()) -> torch.optim.Optimizer:
    """The optimiser ``cfg.optimizer`` (sgd, adam, adamw) over ``model``'s trainable parameters,
    grouped by :func:`build_param_groups` (``cfg`` is a :class:`~lifelong.engine.config.TrainConfig`)."""
    groups = build_param_groups(model, consolidators, cfg.lr)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adam":
        return torch.optim.Adam(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
