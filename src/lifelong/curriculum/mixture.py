"""General-data replay as the engine's third source of rows: a share ``r`` of every batch's tokens.

A stream that carries a general corpus (``stream.info["general"]``, e.g. the
``text`` benchmark's ``general: {path: FILE, ratio: 0.25, schedule: ...}``)
gets a :class:`GeneralMixture`: after the curriculum's pool rows and the review
schedule's memory rows, :meth:`lifelong.engine.phase.Teacher.take` appends
general rows chosen by :meth:`GeneralMixture.draw`.

**The budget is counted in tokens** (``attention_mask`` ones; rows for data
without one). With ``f`` the mixture's fraction at this batch and ``T`` the
batch's task tokens (pool plus replayed rows), the target is
``f / (1 - f) * T`` general tokens, so general tokens are a share ``f`` of the
batch. Rows are whole, so each batch takes rows from the mixture's own shuffled
pass over the corpus while that brings its tokens closer to the target, and
the difference (the *debt*) carries to the next batch: over a run the measured
token share equals ``r`` to within about one general row's tokens.

Schedules of the fraction (``schedule``; registry :data:`MIXTURE_SCHEDULES`):

* ``constant``: ``f = r``;
* ``linear-decay``: from ``r`` at a phase's first batch to ``final`` (default 0)
  at its last, ``f = r + (final - r) * step / total``;
* ``loss-driven``: ``f = clip(r * (L / L0) ** gain, min_ratio, max_ratio)``
  where ``L0`` is the mean general loss of the run's first batch with general
  rows and ``L`` an exponential average (momentum 0.9) of the per-batch mean
  general loss since. General loss rising above its start (forgetting) raises
  the share, falling below it lowers the share.

The mixture draws with its own generator (never the global RNGs), so ``r = 0``
draws nothing and a run is exactly the run without the feature. Its state is
plain data (:meth:`GeneralMixture.state_dict`) and goes into every checkpoint.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from lifelong.data.examples import Examples
from lifelong.errors import ConfigError, DataError
from lifelong.registry import Registry

#: schedules of the general fraction: ``fn(mixture, step) -> fraction``
MIXTURE_SCHEDULES: Registry = Registry("general mixture schedule")


@MIXTURE_SCHEDULES.register("constant")
def constant(mix: "GeneralMixture", step: int) -> float:
    return mix.ratio


@MIXTURE_SCHEDULES.register("linear-decay")
def linear_decay(mix: "GeneralMixture", step: int) -> float:
    progress = min(1.0, step / max(1, mix.total))
    return mix.ratio + (mix.final - mix.ratio) * progress


@MIXTURE_SCHEDULES.register("loss-driven")
def loss_driven(mix: "GeneralMixture", step: int) -> float:
    if mix.start_loss is None or mix.avg_loss is None or mix.start_loss <= 0:
        return mix.ratio
    f = mix.ratio * (mix.avg_loss / mix.start_loss) ** mix.gain
    return min(mix.max_ratio, max(mix.min_ratio, f))


def token_count(ex: Examples) -> int:
    """Tokens of ``ex``: the ones of its ``attention_mask`` (its rows when it has none)."""
    return int(ex["attention_mask"].sum()) if "attention_mask" in ex else int(ex.size)


class GeneralMixture:
    """A general corpus mixed into every batch at a token share given by a schedule (module docs)."""

    def __init__(self, train: Examples, ratio: float = 0.25, schedule: str = "constant", test: Examples | None = None,
                 seed: int = 0, final: float = 0.0, gain: float = 1.0, min_ratio: float = 0.0,
                 max_ratio: float = 0.9, momentum: float = 0.9):
        for name, v in (("ratio", ratio), ("final", final), ("min_ratio", min_ratio), ("max_ratio", max_ratio)):
            if not 0.0 <= float(v) < 1.0:
                raise ConfigError(f"general mixture: {name} must be in [0, 1) (a share of each batch's tokens); "
                                  f"got {v}.")
        if schedule not in MIXTURE_SCHEDULES:
            raise ConfigError(f"general mixture: unknown schedule '{schedule}'; choose one of: "
                              f"{', '.join(MIXTURE_SCHEDULES.names())}.")
        if train.size == 0:
            raise DataError("general mixture: the general corpus has no training rows; give a non-empty file.")
        self.train, self.test = train, test
        self.ratio, self.schedule, self.final, self.gain = float(ratio), schedule, float(final), float(gain)
        self.min_ratio, self.max_ratio, self.momentum = float(min_ratio), float(max_ratio), float(momentum)
        self._fraction: Callable[[GeneralMixture, int], float] = MIXTURE_SCHEDULES.get(schedule)
        self.lengths = (train["attention_mask"].sum(1).long() if "attention_mask" in train
                        else torch.ones(train.size, dtype=torch.long))
        self.needs_feedback = schedule == "loss-driven"
        #: batches of the current phase (the decay's horizon)
        self.total = 1
        self._gen = torch.Generator().manual_seed(int(seed) * 7_919 + 17)
        self._perm = torch.randperm(train.size, generator=self._gen)
        self._pos = 0
        #: general tokens owed to the target so far (positive: too few given)
        self.debt = 0.0
        self.start_loss: float | None = None
        self.avg_loss: float | None = None
        #: tokens drawn so far (general, and task tokens of the batches they joined), for the measured share
        self.general_tokens = 0
        self.task_tokens = 0
        self.last_fraction = self.ratio

    # -- the schedule --------------------------------------------------------------------
    def start(self, total_batches: int) -> None:
        """A phase of ``total_batches`` batches begins (the decay restarts from ``ratio``)."""
        self.total = max(1, int(total_batches))

    def fraction(self, step: int) -> float:
        """The token share of general rows at batch ``step`` of the phase."""
        return float(self._fraction(self, step))

    def update(self, losses: Tensor) -> None:
        """Per-row losses of the general rows of the last batch (the loss-driven schedule's signal)."""
        if losses.numel() == 0:
            return
        value = float(losses.float().mean())
        if self.start_loss is None:
            self.start_loss = self.avg_loss = value
        else:
            self.avg_loss = self.momentum * float(self.avg_loss) + (1 - self.momentum) * value

    # -- the sampler ---------------------------------------------------------------------
    def _next_row(self) -> int:
        if self._pos >= len(self._perm):
            self._perm, self._pos = torch.randperm(self.train.size, generator=self._gen), 0
        return int(self._perm[self._pos])

    def draw(self, task_tokens: int, step: int) -> Tensor | None:
        """Indices of the general rows for a batch with ``task_tokens`` task tokens (None: none)."""
        f = self.fraction(step)
        self.last_fraction = f
        self.task_tokens += task_tokens
        if f <= 0.0:
            return None
        target = f / (1.0 - f) * task_tokens + self.debt
        rows: list[int] = []
        given = 0
        while True:
            length = int(self.lengths[self._next_row()])
            if abs(target - given - length) >= abs(target - given):  # one more row overshoots more than it helps
                break
            rows.append(self._next_row())
            self._pos += 1
            given += length
        self.debt = target - given
        self.general_tokens += given
        return torch.tensor(rows, dtype=torch.long) if rows else None

    def rows(self, index: Tensor, like: Examples, fields: tuple[str, ...], task: int) -> Examples:
        """General rows ``index`` with ``fields`` in the dtypes and device of ``like``, trimmed to their longest
        row; their ``task`` column is the current task's (``Batch.general_index`` marks them)."""
        part = self.train.take(index)
        if "attention_mask" in part:
            width = int(part["attention_mask"].sum(1).max())
            part = Examples({k: (v[:, :width] if v.dim() > 1 else v) for k, v in part.items()})
        device = like[fields[0]].device
        cols = {k: part[k].to(device=device, dtype=like[k].dtype) for k in fields if k != "task"}
        cols["task"] = torch.full((part.size,), int(task), dtype=like["task"].dtype, device=device)
        return Examples(cols)

    def share(self) -> float:
        """The measured token share of general rows over every batch so far."""
        total = self.general_tokens + self.task_tokens
        return self.general_tokens / total if total else 0.0

    def log(self) -> dict[str, float]:
        return {"general/fraction": self.last_fraction, "general/token_share": self.share(),
                "general/tokens": self.general_tokens, "general/task_tokens": self.task_tokens}

    # -- validation ----------------------------------------------------------------------
    def validation(self, model: Any, objective: Any, tasks: Any, device: Any, batch_size: int) -> dict[str, float]:
        """Mean token loss on the held-out general split and on each task's test split (a language-model
        objective's ``token_loss``; nothing for objectives without one)."""
        if not hasattr(objective, "token_loss"):
            return {}
        was = model.training
        model.eval()
        row: dict[str, float] = {}
        if self.test is not None and self.test.size:
            row["general/val_loss"] = objective.token_loss(model, self.test, device, batch_size)
        for t in tasks:
            row[f"domain/{t.index}/val_loss"] = objective.token_loss(model, t, device, batch_size)
        model.train(was)
        return row

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"generator": self._gen.get_state(), "perm": self._perm.clone(), "pos": self._pos,
                "debt": self.debt, "start_loss": self.start_loss, "avg_loss": self.avg_loss,
                "general_tokens": self.general_tokens, "task_tokens": self.task_tokens,
                "last_fraction": self.last_fraction, "total": self.total}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._gen.set_state(state["generator"])
        self._perm, self._pos = state["perm"].clone(), int(state["pos"])
        self.debt = float(state["debt"])
        self.start_loss = None if state["start_loss"] is None else float(state["start_loss"])
        self.avg_loss = None if state["avg_loss"] is None else float(state["avg_loss"])
        self.general_tokens, self.task_tokens = int(state["general_tokens"]), int(state["task_tokens"])
        self.last_fraction, self.total = float(state["last_fraction"]), int(state["total"])


#: keys of ``stream.info["general"]`` besides ``train``/``test`` that configure the mixture
SETTINGS = ("ratio", "schedule", "final", "gain", "min_ratio", "max_ratio", "momentum")


def general_mixture(stream: Any, seed: int = 0) -> GeneralMixture | None:
    """A fresh mixture for a run on ``stream`` (None when the stream carries no general corpus).

    ``stream.info["general"]`` is a dict with ``train`` (Examples of the corpus's training rows),
    optionally ``test`` (held-out rows, for the general validation loss) and the settings of
    :class:`GeneralMixture` (``ratio``, ``schedule``, ``final``, ``gain``, ``min_ratio``, ``max_ratio``)."""
    spec = stream.info.get("general")
    if spec is None:
        return None
    if not isinstance(spec, dict) or "train" not in spec:
        raise DataError(f"stream '{stream.name}': info['general'] must be a dict with the corpus's 'train' rows "
                        "(Examples) and its settings (ratio, schedule, ...); got "
                        f"{type(spec).__name__}.")
    unknown = sorted(set(spec) - set(SETTINGS) - {"train", "test", "path"})
    if unknown:
        raise ConfigError(f"general mixture: unknown setting(s) {unknown}; use: {', '.join(SETTINGS)}.")
    return GeneralMixture(spec["train"], test=spec.get("test"), seed=seed,
                          **{k: spec[k] for k in SETTINGS if k in spec})


__all__ = ["GeneralMixture", "MIXTURE_SCHEDULES", "general_mixture", "token_count"]
