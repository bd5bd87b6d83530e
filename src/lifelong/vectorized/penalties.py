"""Consolidator penalties for stacked runs: the same terms as the consolidators' ``penalty``, for R runs at once.

Each class here mirrors one family of :mod:`lifelong.consolidation` methods.
It reads the state the runs' own consolidator objects hold (those objects
still do their task-end work, e.g. EWC's Fisher, on each run's real model),
stacks it at each task start, and returns one penalty per run (``[R]``)
computed with the same operations, in the same order, as the unbatched
``penalty``: gradients of these terms are element-wise, so each run's
gradient is bit for bit its own.

:data:`PENALTIES` maps consolidator classes to these; anything else is
reported as not vectorisable.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from lifelong.consolidation._util import task_sample, trainable
from lifelong.consolidation.der import DER
from lifelong.consolidation.der_pp import DERPlusPlus
from lifelong.consolidation.ewc import EWC
from lifelong.consolidation.l2 import L2
from lifelong.consolidation.lwf import LwF
from lifelong.consolidation.online_ewc import OnlineEWC
from lifelong.consolidation.si import SI


def _expand(t: Tensor, like: Tensor) -> Tensor:
    """``t`` ([R] or [R, ...]) viewed so that it broadcasts against ``like`` ([R, ...])."""
    return t.view(t.shape + (1,) * (like.dim() - t.dim()))


class StepData:
    """What a penalty may use at one step: the stacked model, the batch, the runs' memories and RNGs."""

    def __init__(self, model, out: Tensor, data: dict[str, Tensor], memory: "StackedMemory | None",
                 generators: list[torch.Generator], objective_forward: Callable[[Tensor, dict[str, Tensor]], Tensor]):
        self.model, self.out, self.data, self.memory = model, out, data, memory
        self.generators = generators
        self.objective_forward = objective_forward


class StackedMemory:
    """The runs' replay memories as ``[R, filled, ...]`` tensors (constant during a task)."""

    def __init__(self, memories: list[Any], device: torch.device):
        self.sizes = [len(m) for m in memories]
        self.filled = max(self.sizes) if memories else 0
        self.fields: dict[str, Tensor] = {}
        if self.filled == 0:
            return
        names = set(memories[0].examples)
        for m in memories[1:]:
            names &= set(m.examples)
        for name in sorted(names):
            parts = [m.examples[name] for m in memories]
            out = torch.zeros((len(parts), self.filled, *parts[0].shape[1:]), dtype=parts[0].dtype)
            for r, p in enumerate(parts):
                out[r, : len(p)] = p
            self.fields[name] = out.to(device)

    def __len__(self) -> int:
        return self.filled

    def take(self, idx: Tensor) -> dict[str, Tensor]:
        """Rows ``idx[r]`` of run r's memory, for every run (``idx``: [R, n])."""
        rows = torch.arange(idx.shape[0]).unsqueeze(1)
        return {k: v[rows, idx] for k, v in self.fields.items()}

    def sample(self, n: int, generators: list[torch.Generator]) -> dict[str, Tensor] | None:
        """``Context.memory_sample(n)`` for every run, each with its own global-RNG stream."""
        if self.filled == 0:
            return None
        counts = {min(n, s) for s in self.sizes}
        if len(counts) != 1:
            raise RuntimeError("the runs' memories hold different numbers of rows; they cannot share a batch")
        k = counts.pop()
        idx = torch.stack([torch.randint(s, (k,), generator=g) for s, g in zip(self.sizes, generators)])
        return self.take(idx)


class StackedQuadratic:
    """EWC, online EWC and L2: ``(lambda/2) * (sum_i w_i (theta_i - anchor_i)^2 + constant)`` per run."""

    def __init__(self, consolidators: list[Any]):
        self.items = consolidators
        self.weights: dict[str, Tensor] = {}
        self.anchors: dict[str, Tensor] = {}

    def start_task(self, device: torch.device, names: list[str], ctxs: list[Any]) -> None:
        first = self.items[0]
        weight_of = (lambda c: c.ones) if isinstance(first, L2) else (lambda c: c.importance)
        self.weights, self.anchors = {}, {}
        for n in names:
            ws = [weight_of(c).get(n) for c in self.items]
            if any(w is None for w in ws):
                continue
            self.weights[n] = torch.stack(ws).to(device)
            self.anchors[n] = torch.stack([c.anchor[n] for c in self.items]).to(device)
        # the factor in front of the quadratic: SI's c, (lambda / 2) for the others (as a Python float, like theirs)
        factor = (lambda c: c.c) if isinstance(first, SI) else (lambda c: 0.5 * c.lambda_)
        self.coef = torch.tensor([factor(c) for c in self.items], dtype=torch.float32, device=device)
        self.constant = torch.tensor([float(getattr(c, "constant", 0.0)) for c in self.items],
                                     dtype=torch.float32, device=device)

    def penalty(self, step: StepData) -> Tensor | None:
        total = None
        params = step.model.params
        for n in step.model.names:
            w = self.weights.get(n)
            if w is None:
                continue
            p, a = params[n], self.anchors[n]
            term = (_expand(w, p) * (p - a) ** 2).flatten(1).sum(1)
            total = term if total is None else total + term
        return None if total is None else self.coef * (total + self.constant)

    def after_task(self, ctxs: list[Any], model, forward: Callable[[Tensor, dict[str, Tensor]], Tensor]) -> bool:
        """EWC's and online EWC's task-end Fisher for every run at once; False when the runs must do it alone.

        :func:`lifelong.consolidation._util.empirical_fisher` on each run's own
        sample (``task_sample`` with the run's seed), batch for batch: the
        runs' batches are stacked, so R runs cost one pass over the sample.
        Each run's consolidator then folds its Fisher in with its own method.
        """
        first = self.items[0]
        if type(first) not in (EWC, OnlineEWC):  # a subclass may estimate its Fisher otherwise
            return False
        if len({(c.samples, c.fisher_batch) for c in self.items}) != 1:
            return False
        datas = [task_sample(ctx, c.samples, c.seed * 7919 + ctx.task_index) for c, ctx in zip(self.items, ctxs)]
        if len({d.size for d in datas}) != 1:
            return False
        fisher = stacked_fisher(model, datas, first.fisher_batch, ctxs[0].device, forward)
        for r, (c, ctx) in enumerate(zip(self.items, ctxs)):
            own = {n: f[r] for n, f in fisher.items()}
            weights = trainable(ctx.model)
            if isinstance(c, EWC):
                c.consolidate(own, dict(weights.items()))
            else:
                c.accumulate(own, {n: p.detach() for n, p in weights.items()})
        return True


class StackedSI(StackedQuadratic):
    """Synaptic Intelligence: ``c * sum_i Omega_i (theta_i - theta*_i)^2`` plus the per-step path integral.

    During a task the runs' path integrals (``omega``) and previous weights
    live here, stacked; :meth:`write_back` hands them to the runs' own SI
    objects before their task-end hook and before checkpoints.
    """

    def start_task(self, device: torch.device, names: list[str], ctxs: list[Any]) -> None:
        super().start_task(device, names, ctxs)
        self.omega = {n: torch.stack([c.omega[n] for c in self.items]).to(device) for n in names}
        self.previous = {n: torch.stack([c.previous[n] for c in self.items]).to(device) for n in names}

    @torch.no_grad()
    def after_step(self, model, grads: dict[str, Tensor]) -> None:
        for n in model.names:
            p, prev = model.params[n].detach(), self.previous[n]
            self.omega[n].add_(-grads[n] * (p - prev))
            prev.copy_(p)

    def write_back(self) -> None:
        for r, c in enumerate(self.items):
            c.omega = {n: t[r].clone() for n, t in self.omega.items()}
            c.previous = {n: t[r].clone() for n, t in self.previous.items()}


class StackedLwF:
    """LwF: ``alpha * KL(teacher || model)`` of the softened outputs on the batch (class- and domain-incremental)."""

    after_task = None

    def __init__(self, items: list[Any]):
        self.items = items

    def start_task(self, device: torch.device, names: list[str], ctxs: list[Any]) -> None:
        teachers = [c.teacher for c in self.items]
        self.teacher = None
        if any(t is None for t in teachers):
            return
        own = [dict(t.named_parameters()) for t in teachers]
        self.teacher = {n: torch.stack([o[n].detach() for o in own]).to(device) for n in names}
        masks = {tuple(c.known) for c in self.items}
        if len(masks) != 1:
            raise ValueError("LwF runs whose teachers know different classes cannot share a batch")
        mask = self.items[0]._class_mask(ctxs[0])
        self.mask = mask.to(device) if mask is not None else None
        self.alpha = torch.tensor([c.alpha for c in self.items], dtype=torch.float32, device=device)
        self.t = torch.tensor([c.temperature for c in self.items], dtype=torch.float32, device=device)
        self.tt = torch.tensor([c.temperature * c.temperature for c in self.items], dtype=torch.float32,
                               device=device)

    def penalty(self, step: StepData) -> Tensor | None:
        if self.teacher is None:
            return None
        from lifelong.vectorized.stacked import stacked_forward

        with torch.no_grad():
            old = step.objective_forward(stacked_forward(step.model.ops, self.teacher, step.data["x"]), step.data)
        mask = self.mask if self.mask is not None else torch.isfinite(old[0, 0])
        mask = mask[: step.out.shape[-1]]
        new, old = step.out[:, :, mask], old[:, :, mask]
        t = _expand(self.t, new)
        kl = torch.nn.functional.kl_div(torch.log_softmax(new / t, 2), torch.log_softmax(old / t, 2),
                                        reduction="none", log_target=True)
        return self.alpha * (kl.flatten(1).sum(1) / new.shape[1] * self.tt)


def stacked_fisher(model, datas: list[Any], batch_size: int, device: torch.device,
                   forward: Callable[[Tensor, dict[str, Tensor]], Tensor]) -> dict[str, Tensor]:
    """:func:`~lifelong.consolidation._util.empirical_fisher` of every run (``[R, ...]`` per parameter),
    run r on ``datas[r]``, with the same batches and accumulation order."""
    if int(batch_size) == 1 and all(op.kind != "act" or op.fn is torch.relu for op in model.ops):
        return _per_example_fisher(model, datas, device, forward)
    names = model.names
    tensors = [model.params[n] for n in names]
    fisher = {n: torch.zeros_like(p.detach()) for n, p in model.params.items()}
    size, step = datas[0].size, max(1, int(batch_size))
    for start in range(0, size, step):
        parts = [d.take(slice(start, start + step)) for d in datas]
        part = {k: torch.stack([p[k] for p in parts]).to(device) for k in parts[0]}
        out = forward(model.forward(part["x"]), part)
        r, n, c = out.shape
        loss = torch.nn.functional.cross_entropy(out.reshape(r * n, c), part["y"].reshape(-1).long(),
                                                 reduction="none").view(r, n).float().mean(1)
        grads = torch.autograd.grad(loss.sum(), tensors, allow_unused=True)
        for name, g in zip(names, grads):
            if g is not None:
                fisher[name] += g.detach() ** 2 * parts[0].size
    for name in fisher:
        fisher[name] /= max(1, size)
    return fisher


@torch.no_grad()
def _per_example_fisher(model, datas: list[Any], device: torch.device,
                        forward: Callable[[Tensor, dict[str, Tensor]], Tensor]) -> dict[str, Tensor]:
    """The ``fisher_batch=1`` case (EWC's default) with the backward pass written out.

    One example per run at a time, as the unbatched loop does; single-row
    products are computed run by run with ``addmm``/``mm`` (the unbatched
    kernels), the per-example weight gradient is an outer product (one
    multiplication per entry: exact whatever computes it), and the
    cross-entropy gradient comes from ATen's own log-softmax backward. The
    autograd engine, whose per-call cost dominated, is not involved.
    """
    params = model.params
    fields = {k: torch.stack([d[k] for d in datas]).to(device) for k in ("x", "y", "task")}
    size, runs = datas[0].size, len(datas)
    rows = torch.arange(runs, device=device)
    fisher = {n: torch.zeros_like(p) for n, p in params.items()}
    linears = [op for op in model.ops if op.kind == "linear"]
    for i in range(size):
        h = fields["x"][:, i:i + 1]
        saved: list[tuple[Any, Tensor]] = []  # (op, its input or its output for relu)
        for op in model.ops:
            if op.kind == "flatten":
                h = h.reshape(runs, 1, -1)
            elif op.kind == "linear":
                saved.append((op, h))
                w, b = params[op.weight].detach(), params[op.bias].detach() if op.bias else None
                h = torch.stack([torch.addmm(b[r], h[r], w[r].t()) if b is not None else h[r].mm(w[r].t())
                                 for r in range(runs)])
            else:  # relu (checked by the caller)
                h = op.fn(h)  # type: ignore[misc]
                saved.append((op, h))
        logits = forward(h, {"task": fields["task"][:, i:i + 1]})[:, 0]
        logp = torch.log_softmax(logits, 1)
        grad = torch.zeros_like(logp)
        grad[rows, fields["y"][:, i].long()] = -1.0  # d(mean of one loss)/d(log p_target)
        delta = torch.ops.aten._log_softmax_backward_data(grad, logp, 1, logp.dtype).unsqueeze(1)
        for op, t in reversed(saved):
            if op.kind == "linear":
                g_w = delta.transpose(1, 2) * t.reshape(runs, 1, -1)
                fisher[op.weight] += g_w.mul_(g_w)  # g ** 2, in place (the same rounding)
                if op.bias:
                    fisher[op.bias] += delta[:, 0] ** 2
                if op is not linears[0]:
                    w = params[op.weight].detach()
                    delta = torch.stack([delta[r].mm(w[r]) for r in range(runs)])
            else:  # relu: the gradient passes where the output is positive
                delta = torch.where(t > 0, delta, torch.zeros_like(delta))
    for n in fisher:
        fisher[n] /= max(1, size)
    return fisher


def _masked_mse(current: Tensor, stored: Tensor) -> Tensor:
    """:func:`lifelong.consolidation.der.masked_mse` per run (``[R, n, C]`` -> ``[R]``)."""
    idx = (slice(None),) + tuple(slice(0, min(a, b)) for a, b in zip(current.shape[1:], stored.shape[1:]))
    cur, old = current[idx].float(), stored[idx].to(current.device).float()
    valid = torch.isfinite(cur) & torch.isfinite(old)
    diff = torch.where(valid, cur - torch.nan_to_num(old), torch.zeros_like(cur))
    return (diff ** 2).flatten(1).sum(1) / valid.flatten(1).sum(1).clamp_min(1)


class StackedDER:
    after_task = None  # DER's task-end work is its memory extras, done per run

    """DER (alpha * logit MSE on replayed rows) and DER++ (plus beta * their label loss)."""

    def __init__(self, consolidators: list[Any], batch_size: int):
        self.items = consolidators
        self.plus = isinstance(consolidators[0], DERPlusPlus)
        self.n = consolidators[0].batch_size or batch_size

    def start_task(self, device: torch.device, names: list[str], ctxs: list[Any]) -> None:
        self.alpha = torch.tensor([c.alpha for c in self.items], dtype=torch.float32, device=device)
        if self.plus:
            self.beta = torch.tensor([c.beta for c in self.items], dtype=torch.float32, device=device)

    def penalty(self, step: StepData) -> Tensor | None:
        if step.memory is None:
            return None
        mem = step.memory.sample(self.n, step.generators)
        if mem is None or "logits" not in mem:
            return None
        logit = _masked_mse(step.model.forward(mem["x"]), mem["logits"])
        if not self.plus:
            return self.alpha * logit
        mem2 = step.memory.sample(self.n, step.generators)
        out2 = step.objective_forward(step.model.forward(mem2["x"]), mem2)
        r, n, c = out2.shape
        label = torch.nn.functional.cross_entropy(out2.reshape(r * n, c).float(), mem2["y"].reshape(-1).long(),
                                                  reduction="none").view(r, n).mean(1)
        return self.alpha * logit + self.beta * label


def _same_class(items: list[Any]) -> bool:
    return len({type(c) for c in items}) == 1


#: consolidator classes with a stacked counterpart
PENALTIES: dict[type, Callable[..., Any]] = {
    SI: lambda items, bs: StackedSI(items),
    LwF: lambda items, bs: StackedLwF(items),
    EWC: lambda items, bs: StackedQuadratic(items),
    OnlineEWC: lambda items, bs: StackedQuadratic(items),
    L2: lambda items, bs: StackedQuadratic(items),
    DER: lambda items, bs: StackedDER(items, bs),
    DERPlusPlus: lambda items, bs: StackedDER(items, bs),
}


def stacked_penalties(per_run: list[list[Any]], batch_size: int) -> list[Any]:
    """One stacked penalty per consolidator position (the runs' i-th consolidators stacked)."""
    out = []
    for i in range(len(per_run[0])):
        items = [cs[i] for cs in per_run]
        if not _same_class(items) or type(items[0]) not in PENALTIES:
            raise ValueError(f"consolidator '{getattr(items[0], 'name', type(items[0]).__name__)}' has no stacked form")
        if isinstance(items[0], DER) and len({c.batch_size for c in items}) != 1:
            raise ValueError("DER runs with different batch_size cannot share a batch")
        out.append(PENALTIES[type(items[0])](items, batch_size))
    return out
