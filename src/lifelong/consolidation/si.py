"""Synaptic Intelligence (Zenke et al. 2017, "Continual Learning Through Synaptic Intelligence")."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import torch
from torch import Tensor

from lifelong.consolidation._util import number, overlap, quadratic, trainable
from lifelong.consolidation.base import Consolidator
from lifelong.consolidation.registry import CONSOLIDATORS

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.context import Context


@CONSOLIDATORS.register("si")
class SI(Consolidator):
    """Penalty c * sum_i Omega_i (theta_i - theta*_i)^2, importance from the loss's path integral.

    During a task, after every optimiser step, each parameter accumulates
    omega_i += -g_i * delta_i (the gradient used by the step times the change
    the step made): the drop in loss attributed to that parameter. At the
    task's end, Omega_i += omega_i / (Delta_i^2 + xi), where Delta_i is the
    parameter's total change over the task and ``xi`` a damping term, and
    theta* becomes the current weights. Negative contributions (possible with
    noisy steps) are clipped to zero so the penalty always pulls towards theta*.
    """

    name: ClassVar[str] = "si"
    title: ClassVar[str] = "Synaptic Intelligence (Zenke et al. 2017): path-integral importance, quadratic penalty."
    state_attrs: ClassVar[tuple[str, ...]] = ("importance", "anchor", "omega", "start", "previous")

    def __init__(self, c: float = 1.0, xi: float = 0.1):
        self.c = number(self.name, "c", c)
        self.xi = number(self.name, "xi", xi, 0.0, low_open=True)
        self.importance: dict[str, Tensor] = {}  # Omega
        self.anchor: dict[str, Tensor] = {}      # theta*
        self.omega: dict[str, Tensor] = {}       # path integral of the current task
        self.start: dict[str, Tensor] = {}       # weights at the task's start
        self.previous: dict[str, Tensor] = {}    # weights before the latest step

    @torch.no_grad()
    def before_task(self, ctx: "Context") -> None:
        params = trainable(ctx.model)
        self.start = {n: p.detach().clone() for n, p in params.items()}
        self.previous = {n: p.detach().clone() for n, p in params.items()}
        self.omega = {n: torch.zeros_like(p) for n, p in params.items()}

    def expects_penalty(self, ctx: "Context") -> bool:
        return self.c > 0 and ctx.phase > 0

    def penalty(self, ctx: "Context", batch, out: Tensor) -> Tensor | None:
        q = quadratic(ctx.model, self.importance, self.anchor)
        return None if q is None else self.c * q

    @torch.no_grad()
    def after_step(self, ctx: "Context") -> None:
        for n, p in trainable(ctx.model).items():
            prev = self.previous.get(n)
            if prev is None or prev.shape != p.shape:
                continue
            if p.grad is not None:
                self.omega[n].add_(-p.grad.detach().to(p.dtype) * (p.detach() - prev))
            prev.copy_(p.detach())

    @torch.no_grad()
    def after_task(self, ctx: "Context") -> None:
        for n, p in trainable(ctx.model).items():
            if n not in self.omega or self.omega[n].shape != p.shape:
                continue
            delta = p.detach() - self.start[n]
            gain = (self.omega[n] / (delta ** 2 + self.xi)).clamp_min(0)
            old = self.importance.get(n)
            if old is not None:
                grown = torch.zeros_like(gain)
                g, o = overlap(grown, old)
                g.copy_(o)
                gain = gain + grown
            self.importance[n] = gain
            self.anchor[n] = p.detach().clone()
        self.omega, self.start, self.previous = {}, {}, {}
