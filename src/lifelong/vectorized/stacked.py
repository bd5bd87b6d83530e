"""Many copies of one model as stacked tensors: a batched forward pass and a batched SGD step.

The parameters of R models of the same architecture are stacked along a new
first dimension (``torch.func.stack_module_state``). The forward pass of all
R models at once is a short list of operations compiled from the module tree
(``Flatten``, ``Linear``, element-wise activations), each applied to
``[R, batch, ...]`` tensors.

Why not ``vmap(functional_call(...))``: the numbers must be those of R
separate runs, not approximately those. On CPU, ``vmap``'s batching rule for
``linear`` gives outputs and weight gradients that differ from the unbatched
``addmm`` in the last bits (1e-8), which a few hundred SGD steps amplify. The
:class:`_StackedLinear` function below computes the forward pass with
``baddbmm`` and the weight gradient as ``grad^T @ input`` (the layout the
unbatched backward of ``F.linear`` uses), which reproduces each run's
numbers bit for bit (``tests/test_vectorized.py`` checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor, nn

#: element-wise modules the compiler accepts (and their functional form)
_ACTIVATIONS: dict[type, Callable[[Tensor], Tensor]] = {
    nn.ReLU: torch.relu,
    nn.Tanh: torch.tanh,
    nn.Sigmoid: torch.sigmoid,
    nn.GELU: torch.nn.functional.gelu,
    nn.Identity: lambda t: t,
}


class Unsupported(Exception):
    """The model (or a part of the run) cannot be vectorised; the message says why."""


#: products ``rows x in x out`` under this size are multiplied run by run: ATen's ``bmm`` then uses a
#: naive kernel that does not round like the unbatched ``addmm`` (measured: 3e-8 apart); single rows
#: (EWC's per-example Fisher) are too, as a precaution
SMALL_PRODUCT = 400


def _small(x: Tensor, w: Tensor) -> bool:
    return x.shape[1] == 1 or x.shape[1] * w.shape[1] * w.shape[2] < SMALL_PRODUCT


class _StackedLinear(torch.autograd.Function):
    """``y[r] = x[r] @ w[r]^T + b[r]`` for every run r, with the unbatched layouts in both passes."""

    @staticmethod
    def forward(ctx, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, w)
        ctx.has_bias = b is not None
        if _small(x, w):  # see SMALL_PRODUCT
            return torch.stack([torch.addmm(b[r], x[r], w[r].t()) if b is not None else x[r].mm(w[r].t())
                                for r in range(x.shape[0])])
        if b is None:
            return torch.bmm(x, w.transpose(1, 2))
        return torch.baddbmm(b.unsqueeze(1), x, w.transpose(1, 2))

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        loop = _small(x, w)
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            gx = torch.stack([g[r].mm(w[r]) for r in range(len(g))]) if loop else torch.bmm(g, w)
        if ctx.needs_input_grad[1]:
            gw = torch.stack([g[r].t().mm(x[r]) for r in range(len(g))]) if loop else torch.bmm(g.transpose(1, 2), x)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            gb = g.sum(1)
        return gx, gw, gb


@dataclass(frozen=True)
class _Op:
    kind: str               # "flatten", "linear" or "act"
    weight: str = ""        # parameter names, for "linear"
    bias: str | None = None
    fn: Callable[[Tensor], Tensor] | None = None


def _compile(module: nn.Module, prefix: str, ops: list[_Op]) -> None:
    from lifelong.models.nets import MLP, IncrementalClassifier

    name = type(module).__name__
    if isinstance(module, IncrementalClassifier):
        _compile(module.backbone, prefix + "backbone.", ops)
        _compile(module.head, prefix + "head.", ops)
    elif isinstance(module, MLP):
        _compile(module.net, prefix + "net.", ops)
    elif type(module) is nn.Sequential:
        for child_name, child in module.named_children():
            _compile(child, f"{prefix}{child_name}.", ops)
    elif type(module) is nn.Linear:
        ops.append(_Op("linear", prefix + "weight", prefix + "bias" if module.bias is not None else None))
    elif type(module) is nn.Flatten:
        if module.start_dim != 1 or module.end_dim != -1:
            raise Unsupported(f"the model has a Flatten({module.start_dim}, {module.end_dim}); only Flatten() is "
                              "supported")
        ops.append(_Op("flatten"))
    elif type(module) is nn.Dropout:
        if module.p > 0:
            raise Unsupported("the model uses dropout (each run would need its own dropout masks); use dropout: 0")
    elif type(module) in _ACTIVATIONS:
        ops.append(_Op("act", fn=_ACTIVATIONS[type(module)]))
    else:
        raise Unsupported(f"the model contains a {name} layer; the vectorised path supports MLPs made of "
                          "Linear layers and element-wise activations (model: mlp)")


def compile_model(model: nn.Module) -> list[_Op]:
    """The model's forward pass as a list of stackable operations, or :class:`Unsupported`."""
    if any(b is not None for b in model.buffers()):
        raise Unsupported("the model has buffers (e.g. batch norm statistics), which the vectorised path does not "
                          "stack")
    ops: list[_Op] = []
    _compile(model, "", ops)
    return ops


def stacked_forward(ops: list[_Op], params: dict[str, Tensor], x: Tensor) -> Tensor:
    """All runs' outputs ``[R, batch, out]`` for inputs ``x`` ``[R, batch, ...]``."""
    h = x
    for op in ops:
        if op.kind == "flatten":
            h = h.reshape(h.shape[0], h.shape[1], -1)
        elif op.kind == "linear":
            h = _StackedLinear.apply(h, params[op.weight], params[op.bias] if op.bias else None)
        else:
            h = op.fn(h)  # type: ignore[misc]
    return h


class StackedModel:
    """The trainable parameters of R same-shaped models, stacked, with a batched SGD step.

    ``models`` stay the runs' own modules: :meth:`sync` copies run r's slice
    back into ``models[r]`` whenever that run's real module is needed
    (assessment, consolidators' task-end hooks, memory updates, checkpoints).
    """

    def __init__(self, models: list[nn.Module]):
        from torch.func import stack_module_state

        self.models = models
        self.ops = compile_model(models[0])
        for m in models:
            frozen = [n for n, p in m.named_parameters() if not p.requires_grad]
            if frozen:
                raise Unsupported(f"parameters {frozen[:3]} are frozen; the vectorised path trains every parameter")
        params, _ = stack_module_state(models)
        self.names = list(params)
        self.params = {n: p.detach().clone().requires_grad_(True) for n, p in params.items()}
        self.momentum_buffers: dict[str, Tensor] | None = None

    @property
    def runs(self) -> int:
        return len(self.models)

    def forward(self, x: Tensor) -> Tensor:
        return stacked_forward(self.ops, self.params, x)

    @torch.no_grad()
    def sync(self, r: int) -> nn.Module:
        """Copy run ``r``'s parameters into its own module and return the module."""
        model = self.models[r]
        for n, p in model.named_parameters():
            p.copy_(self.params[n][r])
        return model

    @torch.no_grad()
    def load(self, r: int) -> None:
        """The reverse of :meth:`sync`: take run ``r``'s parameters from its module."""
        for n, p in self.models[r].named_parameters():
            self.params[n][r].copy_(p)

    def keep(self, rows: list[int]) -> None:
        """Drop every run but ``rows`` (e.g. after the others stopped); row k is then ``rows[k]``."""
        index = torch.tensor(rows, device=next(iter(self.params.values())).device)
        self.models = [self.models[k] for k in rows]
        self.params = {n: p.detach()[index].clone().requires_grad_(True) for n, p in self.params.items()}
        if self.momentum_buffers is not None:
            self.momentum_buffers = {n: b[index].clone() for n, b in self.momentum_buffers.items()}

    def reset_optimizer(self) -> None:
        self.momentum_buffers = None

    @torch.no_grad()
    def sgd_step(self, grads: dict[str, Tensor], lr: Tensor, momentum: Tensor, weight_decay: Tensor,
                 use_momentum: bool, use_decay: bool) -> None:
        """``torch.optim.SGD``'s update (dampening 0, no Nesterov), for every run at once.

        ``lr``, ``momentum`` and ``weight_decay`` hold one value per run
        (shape ``[R]``). Each run gets exactly the single-tensor SGD formula:
        ``g += wd * p``; ``buf = g`` at the first step, else ``buf = m * buf + g``;
        ``p -= lr * buf``. ``addcmul`` with a per-run factor rounds like
        ``add_(alpha=...)`` with a scalar one (one fused multiply-add).
        """
        first = self.momentum_buffers is None
        if use_momentum and first:
            self.momentum_buffers = {}
        for n in self.names:
            p, g = self.params[n], grads[n]
            shape = (-1,) + (1,) * (p.dim() - 1)
            if use_decay:
                g = torch.addcmul(g, p, weight_decay.view(shape))
            if use_momentum:
                buf = self.momentum_buffers.get(n)  # type: ignore[union-attr]
                if buf is None:
                    buf = g.clone()
                    self.momentum_buffers[n] = buf  # type: ignore[index]
                else:
                    buf.mul_(momentum.view(shape)).add_(g)
                g = buf
            p.addcmul_(g, -lr.view(shape))

    def optimizer_state(self, r: int, model: nn.Module, lr: float, momentum: float, weight_decay: float) -> dict:
        """Run ``r``'s optimiser as ``torch.optim.SGD(...).state_dict()`` would give it (for checkpoints)."""
        params = [p for p in model.parameters() if p.requires_grad]
        names = [n for n, p in model.named_parameters() if p.requires_grad]
        state = {}
        if self.momentum_buffers is not None and momentum != 0:
            state = {i: {"momentum_buffer": self.momentum_buffers[n][r].clone()} for i, n in enumerate(names)}
        group = {"lr": lr, "momentum": momentum, "dampening": 0, "weight_decay": weight_decay, "nesterov": False,
                 "maximize": False, "foreach": None, "differentiable": False, "fused": None,
                 "params": list(range(len(params)))}
        return {"state": state, "param_groups": [group]}
