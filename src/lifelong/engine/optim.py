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

import math
from typing import TYPE_CHECKING, Any, Iterable

import torch
from torch import nn

from lifelong.errors import ConfigError, LifelongError

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.config import TrainConfig


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


def make_lr_scheduler(optimizer: torch.optim.Optimizer, cfg: TrainConfig, total: int, done: int = 0):
    """The learning-rate schedule of ``cfg`` over ``total`` optimiser steps, ``done`` of them already
    taken (a schedule over the whole stream continues where the last task left it). None for a
    constant rate. Built by ``transformers.get_scheduler``, the schedules Trainer users know."""
    if not cfg.uses_lr_scheduler:
        return None
    from lifelong.errors import require

    transformers = require("transformers", "llm", f"train.lr_scheduler '{cfg.lr_scheduler}'")
    warmup = cfg.warmup_steps or int(math.ceil(cfg.warmup_ratio * total))
    name = "constant_with_warmup" if cfg.lr_scheduler == "constant" else cfg.lr_scheduler
    kwargs = dict(cfg.lr_scheduler_kwargs or {})
    if name == "warmup_stable_decay" and "num_decay_steps" not in kwargs:
        kwargs["num_decay_steps"] = max(1, int(0.1 * total))  # the last 10% of the steps, a common choice
    try:
        sched = transformers.get_scheduler(name, optimizer, num_warmup_steps=warmup, num_training_steps=total,
                                           scheduler_specific_kwargs=kwargs or None)
    except TypeError as exc:
        raise LifelongError(f"train.lr_scheduler_kwargs {kwargs} do not fit the '{name}' schedule ({exc}).") from None
    if done:
        set_schedule_step(sched, done)
    return sched


def set_schedule_step(sched: Any, step: int, base_lr: float | None = None) -> None:
    """Put a ``LambdaLR`` schedule at ``step`` (optionally with a new base rate, each group keeping its
    ``lr_multiplier``) and give every group the rate of that step."""
    groups = sched.optimizer.param_groups
    if base_lr is not None:
        sched.base_lrs = [base_lr * g.get("lr_multiplier", 1.0) for g in groups]
    sched.last_epoch = step
    for group, base, fn in zip(groups, sched.base_lrs, sched.lr_lambdas):
        group["lr"] = base * fn(step)


def regroup(optimizer: torch.optim.Optimizer, model: nn.Module, consolidators: Iterable[Any]) -> torch.optim.Optimizer:
    """``optimizer`` (built by someone else, e.g. a ``transformers.Trainer``) with the consolidators'
    learning-rate multipliers applied: each of its groups is split by multiplier, keeping the group's
    own settings (weight decay...). Returned unchanged when no consolidator declares groups."""
    groups = build_param_groups(model, consolidators, 1.0)
    factor = {id(p): float(g["lr_multiplier"]) for g in groups for p in g["params"]}
    if all(f == 1.0 for f in factor.values()):
        return optimizer
    out: list[dict[str, Any]] = []
    for group in optimizer.param_groups:
        by: dict[float, list] = {}
        for p in group["params"]:
            by.setdefault(factor.get(id(p), 1.0), []).append(p)
        for f, params in by.items():
            settings = {k: v for k, v in group.items() if k not in ("params", "initial_lr")}
            base = float(settings.get("lr", optimizer.defaults.get("lr", 0.0)))
            out.append({**settings, "params": params, "lr": base * f, "lr_multiplier": f})
    optimizer.param_groups = []  # a fresh optimiser (no state yet): its groups are replaced in place
    for group in out:
        optimizer.add_param_group(group)
    return optimizer
