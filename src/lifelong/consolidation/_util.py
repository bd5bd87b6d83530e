"""Small pieces shared by the consolidators (parameter bookkeeping, Fisher)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from lifelong.data.examples import Examples
from lifelong.engine.pool import task_examples
from lifelong.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


def number(owner: str, param: str, value: Any, low: float | None = 0.0, high: float | None = None, *,
           low_open: bool = False, high_open: bool = False, integer: bool = False, note: str = "") -> Any:
    """``value`` as a float (or an int with ``integer``) checked against [low, high]; else a ConfigError.

    Every consolidator validates its numeric hyper-parameters with this in
    its constructor, so a config typo (``lambda: abc``, ``gamma: -1``) stops
    the run at once with one message naming the consolidator (``owner``), the
    parameter, the bad value and what is accepted. ``low``/``high`` of None
    leave that side unbounded; ``*_open`` excludes the bound; ``note`` is
    appended to the accepted range (e.g. "0 = the whole task"). Booleans,
    NaN and infinities are refused; an integer parameter accepts ``3``,
    ``3.0`` and ``"3"`` but not ``2.5``.
    """
    kind = "an integer" if integer else "a number"
    bounds = []
    if low is not None and high is not None:
        bounds.append(f"in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}")
    elif low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    elif high is not None:
        bounds.append(f"{'<' if high_open else '<='} {high:g}")
    accepted = " ".join([kind, *bounds]) + (f" ({note})" if note else "")
    try:
        if isinstance(value, bool):
            raise ValueError
        v = float(value)
        if not math.isfinite(v) or (integer and not v.is_integer()):
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"{owner}: {param} must be {accepted}; got {value!r}.") from None
    if (low is not None and (v <= low if low_open else v < low)) or \
            (high is not None and (v >= high if high_open else v > high)):
        raise ConfigError(f"{owner}: {param} must be {accepted}; got {value!r}.")
    if integer:
        return value if isinstance(value, int) else int(v)  # an int keeps its exact value
    return v


def trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    """The parameters the optimiser updates, by name."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def overlap(p: Tensor, ref: Tensor) -> tuple[Tensor, Tensor]:
    """``p`` and ``ref`` cut to their common shape (a classifier head may have
    grown since ``ref`` was recorded: its old rows are compared, new ones are free)."""
    if p.shape == ref.shape:
        return p, ref
    idx = tuple(slice(0, min(a, b)) for a, b in zip(p.shape, ref.shape))
    return p[idx], ref[idx]


def quadratic(model: nn.Module, weight: dict[str, Tensor], anchor: dict[str, Tensor]) -> Tensor | None:
    """sum_i weight_i * (theta_i - anchor_i)^2 over the named trainable parameters, or None."""
    total = None
    for n, p in trainable(model).items():
        w = weight.get(n)
        if w is None:
            continue
        q, a = overlap(p, anchor[n])
        if w.dim() and w.shape != a.shape:
            w = w[tuple(slice(0, s) for s in a.shape)]
        term = (w * (q - a) ** 2).sum()
        total = term if total is None else total + term
    return total


def task_sample(ctx: "Context", n: int, seed: int) -> Examples:
    """Up to ``n`` seeded random training rows of the current task: the model's
    fields plus ``task`` (what the objective needs for masking)."""
    data = task_examples(ctx.task, ctx.objective.model_fields)
    if n and data.size > n:
        g = torch.Generator().manual_seed(int(seed))
        data = data.take(torch.randperm(data.size, generator=g)[:n])
    return data


def empirical_fisher(ctx: "Context", data: Examples, batch_size: int = 1) -> dict[str, Tensor]:
    """Diagonal empirical Fisher of the trainable parameters on ``data``.

    With ``batch_size=1`` it is the mean over examples of the squared
    per-example gradient of the loss (Kirkpatrick et al.'s estimate with the
    observed labels). Larger batches trade accuracy for speed: each batch
    contributes ``batch_size * g_batch^2``, which matches the per-example
    mean when gradients of different examples are uncorrelated.
    The model runs in eval mode (no dropout) and its mode is restored.
    """
    model, objective = ctx.model, ctx.objective
    params = trainable(model)
    names, tensors = list(params), list(params.values())
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    was = model.training
    model.eval()
    try:
        for start in range(0, data.size, max(1, int(batch_size))):
            part = data.take(slice(start, start + max(1, int(batch_size)))).to(ctx.device)
            out = objective.forward(model, part)
            loss = objective.per_sample_loss(out, part).float().mean()
            grads = torch.autograd.grad(loss, tensors, allow_unused=True)
            for n, g in zip(names, grads):
                if g is not None:
                    fisher[n] += g.detach() ** 2 * part.size
    finally:
        model.train(was)
    for n in fisher:
        fisher[n] /= max(1, data.size)
    return fisher


def frozen_copy(model: nn.Module) -> nn.Module:
    """A frozen, independent copy of ``model`` for distillation (LwF's teacher).

    ``copy.deepcopy`` alone is not enough: wrappers (accelerate's mixed precision, TRL) replace a
    module's ``forward`` by a closure over the *original* module, and a copied closure still runs
    the student, so the distillation term is zero. The copy drops such instance-level ``forward``
    overrides and is checked to share no parameter storage with the model."""
    import copy

    teacher = copy.deepcopy(model)
    for m in teacher.modules():
        m.__dict__.pop("forward", None)
    for p in teacher.parameters():
        p.requires_grad_(False)
    shared = {q.data_ptr() for q in model.parameters()} & {p.data_ptr() for p in teacher.parameters()}
    if shared:  # pragma: no cover - deepcopy never shares storage; a guard against wrappers that do
        raise RuntimeError("the frozen copy of the model shares parameters with it")
    return teacher.eval()
