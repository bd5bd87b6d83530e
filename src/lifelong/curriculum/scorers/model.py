"""Model-based difficulty scorers.

* ``loss``: the current model's per-sample loss (self-paced difficulty);
* ``confidence``: 1 - the model's confidence in the right answer,
  exp(-loss) (the true-class probability for cross-entropy; the geometric
  mean token probability for language models);
* ``transfer``: the loss of a fresh copy of the model (re-initialised) trained
  briefly on the task ("transfer teacher"). Cross-fitted over ``folds``: each
  fold is scored by a copy trained on the other folds, so an example's score
  is never its own training loss;
* ``ensemble``: the disagreement of ``members`` briefly trained copies:
  mean total-variation distance of each member's predictive distribution from
  the ensemble mean for classifiers, the standard deviation of the members'
  per-sample losses otherwise.

Scores are computed in batches of ``ctx.config.batch_size`` (eval batches of
at least 256), without gradients.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lifelong.curriculum.scorers.base import SCORERS, Scorer
from lifelong.data.task import Task
from lifelong.errors import ConfigError


def _fields(task: Task, ctx: Any):
    names = getattr(ctx.objective, "model_fields", tuple(task.train))
    from lifelong.data.examples import Examples

    cols = {f: task.train[f] for f in names if f in task.train}
    cols["task"] = torch.full((task.num_train,), task.index, dtype=torch.long)
    return Examples(cols)


@torch.no_grad()
def batched_outputs(model: nn.Module, data, ctx: Any, want_out: bool = False) -> tuple[Tensor, Tensor | None]:
    """Per-sample losses (and optionally outputs) of ``model`` over ``data``, in batches."""
    was = model.training
    model.eval()
    bs = max(256, int(getattr(ctx.config, "batch_size", 256)))
    losses, outs = [], []
    for s in range(0, data.size, bs):
        part = data.take(slice(s, s + bs)).to(ctx.device)
        out = ctx.objective.forward(model, part)
        losses.append(ctx.objective.per_sample_loss(out, part).float().cpu())
        if want_out:
            outs.append(out.float().cpu())
    model.train(was)
    return torch.cat(losses), (torch.cat(outs) if want_out else None)


def reinitialise(model: nn.Module, seed: int) -> nn.Module:
    """A deep copy of ``model`` with every layer's parameters reset (seeded)."""
    twin = copy.deepcopy(model)
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        for m in twin.modules():
            if hasattr(m, "reset_parameters") and callable(m.reset_parameters):
                m.reset_parameters()
    finally:
        torch.random.set_rng_state(state)
    for p in twin.parameters():
        p.requires_grad_(True)
    return twin.train()


def train_briefly(model: nn.Module, data, ctx: Any, steps: int, lr: float, seed: int) -> nn.Module:
    """Adam for ``steps`` batches drawn from ``data`` with a seeded generator."""
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(seed)
    bs = min(int(getattr(ctx.config, "batch_size", 32)), data.size)
    model.train()
    for _ in range(steps):
        idx = torch.randint(data.size, (bs,), generator=gen)
        part = data.take(idx).to(ctx.device)
        loss = ctx.objective.per_sample_loss(ctx.objective.forward(model, part), part).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model


class _ModelScorer(Scorer):
    def __init__(self, refresh_every: int = 0) -> None:
        super().__init__(refresh_every)


@SCORERS.register("loss")
class LossScorer(_ModelScorer):
    """The current model's per-sample loss (self-paced difficulty); refresh every `refresh_every` steps."""

    name: ClassVar[str] = "loss"

    def score(self, task: Task, ctx: Any) -> Tensor:
        return batched_outputs(ctx.model, _fields(task, ctx), ctx)[0]


@SCORERS.register("confidence")
class ConfidenceScorer(_ModelScorer):
    """1 - the current model's confidence in the right answer, exp(-loss)."""

    name: ClassVar[str] = "confidence"

    def score(self, task: Task, ctx: Any) -> Tensor:
        return 1.0 - torch.exp(-batched_outputs(ctx.model, _fields(task, ctx), ctx)[0])


def _check_training(steps: int, lr: float) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"scorer steps must be an integer >= 1; got {steps!r}.")
    if not isinstance(lr, (int, float)) or not lr > 0:
        raise ConfigError(f"scorer lr must be > 0; got {lr!r}.")


@SCORERS.register("transfer")
class TransferScorer(_ModelScorer):
    """Transfer teacher: loss of a re-initialised copy trained briefly on the task (cross-fitted over `folds`)."""

    name: ClassVar[str] = "transfer"

    def __init__(self, steps: int = 100, lr: float = 1e-3, folds: int = 2, refresh_every: int = 0) -> None:
        super().__init__(refresh_every)
        _check_training(steps, lr)
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 1:
            raise ConfigError(f"transfer scorer folds must be an integer >= 1; got {folds!r}.")
        self.steps, self.lr, self.folds = steps, float(lr), folds

    def score(self, task: Task, ctx: Any) -> Tensor:
        data = _fields(task, ctx)
        seed = int(getattr(ctx.config, "seed", 0)) * 1009 + max(task.index, 0)
        n = data.size
        folds = min(self.folds, n)
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
        out = torch.empty(n)
        for f in range(folds):
            held = perm[f::folds]
            if folds == 1:
                train = perm
            else:
                mask = torch.ones(n, dtype=torch.bool)
                mask[held] = False
                train = torch.nonzero(mask).flatten()
            twin = train_briefly(reinitialise(ctx.model, seed + f), data.take(train), ctx, self.steps, self.lr, seed + f)
            out[held] = batched_outputs(twin, data.take(held), ctx)[0]
        return out


@SCORERS.register("ensemble")
class EnsembleScorer(_ModelScorer):
    """Disagreement of `members` briefly trained re-initialised copies (total variation, or loss spread)."""

    name: ClassVar[str] = "ensemble"

    def __init__(self, members: int = 3, steps: int = 100, lr: float = 1e-3, refresh_every: int = 0) -> None:
        super().__init__(refresh_every)
        _check_training(steps, lr)
        if isinstance(members, bool) or not isinstance(members, int) or members < 2:
            raise ConfigError(f"ensemble scorer members must be an integer >= 2; got {members!r}.")
        self.members, self.steps, self.lr = members, steps, float(lr)

    def score(self, task: Task, ctx: Any) -> Tensor:
        data = _fields(task, ctx)
        seed = int(getattr(ctx.config, "seed", 0)) * 2003 + max(task.index, 0)
        losses, outs = [], []
        for m in range(self.members):
            twin = train_briefly(reinitialise(ctx.model, seed + m), data, ctx, self.steps, self.lr, seed + m)
            loss, out = batched_outputs(twin, data, ctx, want_out=True)
            losses.append(loss)
            outs.append(out)
        if outs[0] is not None and outs[0].dim() == 2:
            probs = torch.stack([torch.softmax(o, 1) for o in outs])  # [members, n, classes]
            mean = probs.mean(0, keepdim=True)
            return 0.5 * (probs - mean).abs().sum(2).mean(0)
        return torch.stack(losses).std(0)
