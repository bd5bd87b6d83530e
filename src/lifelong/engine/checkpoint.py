"""Every checkpoint key in one place: capture a complete state, restore it, read and write files.

A checkpoint is taken at a step boundary and holds plain data only (tensors,
numbers, strings, lists, dicts), so it loads with
``torch.load(weights_only=True)``: a run folder someone sends you cannot run
code when it is resumed. Two kinds exist:

* at a phase end (``step == 0``, ``phase`` = the next phase): the run resumes
  with a normal phase start;
* mid-phase (``step > 0``): the run-level state is restored first
  (:func:`restore_run`), the phase is set up normally, and then its own state
  (optimiser, schedules, samplers, RNGs) is put back (:func:`restore_phase`).

Head growth and modules that consolidators add (LoRA adapters) are re-created
here, in :func:`restore_structure`, before any weights load.
"""

from __future__ import annotations

import pickle
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from lifelong.engine.result import RunResult
from lifelong.errors import LifelongError

if TYPE_CHECKING:  # pragma: no cover
    from lifelong.engine.phase import Phase, Teacher

#: keys every checkpoint holds
KEYS = ("phase", "step", "global_step", "model", "optimizer", "scaler", "consolidators", "memory", "curriculum",
        "sampler", "review", "review_sampler", "difficulty", "rng", "result", "task_seconds_so_far",
        "assess_seconds_so_far", "lr_scheduler", "general")
#: keys a checkpoint written by an earlier version may lack
OPTIONAL = ("assess_seconds_so_far", "lr_scheduler", "general")


class CheckpointError(LifelongError):
    """A checkpoint file cannot be used."""


# ----------------------------------------------------------------------------- RNGs as plain data
def rng_state() -> dict[str, Any]:
    """The global RNG states (Python, NumPy, torch, CUDA) as plain data."""
    return plain_rng(random.getstate(), np.random.get_state(), torch.get_rng_state(),
                     torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None)


def plain_rng(python: Any, numpy: Any, torch_state: torch.Tensor, cuda: Any = None) -> dict[str, Any]:
    """RNG states (``random.getstate()``, ``np.random.get_state()``, torch's) in the checkpoint's plain form."""
    kind, keys, pos, has_gauss, gauss = numpy
    return {"python": python,
            "numpy": {"kind": kind, "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "torch": torch_state, "cuda": cuda}


def set_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    n = state["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def to_device(obj: Any, device: torch.device) -> Any:
    """``obj`` with every tensor (and module) inside dicts, lists and tuples moved to
    ``device``: checkpoints load on the CPU, consolidator state must follow the model."""
    if isinstance(obj, (torch.Tensor, torch.nn.Module)):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: to_device(v, device) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_device(v, device) for v in obj)
    return obj


# ----------------------------------------------------------------------------- capture
def capture(teacher: "Teacher", ph: "Phase", phase_done: bool = False) -> dict[str, Any]:
    """The complete resumable state at this step boundary (``phase_done``: the phase has ended)."""
    ctx, model = teacher.ctx, teacher.model
    optimizer = ctx.optimizer
    teacher.result.wall_seconds = teacher.elapsed()
    reviewing = ph.reviewing and not phase_done
    # a review schedule's knowledge (e.g. spaced review's per-task recall model) carries over between
    # tasks: a phase-end checkpoint keeps it too, and it is loaded before the next phase starts
    review_state = teacher.review.state_dict() if teacher.review is not None and (ph.reviewing or phase_done) \
        else None
    return {
        "phase": ph.index + 1 if phase_done else ph.index,
        "step": 0 if phase_done else ctx.step,
        "global_step": ctx.global_step,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "lr_scheduler": ph.lr_scheduler.state_dict() if ph.lr_scheduler is not None and not phase_done else None,
        "scaler": teacher.scaler.state_dict() if teacher.scaler is not None else None,
        "consolidators": [c.state_dict() for c in teacher.consolidators],
        "memory": teacher.memory.state_dict() if teacher.memory is not None else None,
        "curriculum": teacher.curriculum.state_dict(),
        "sampler": ph.sampler.state_dict(),
        "review": review_state,
        "review_sampler": ph.review_sampler.state_dict() if reviewing else None,
        # the general mixture's sampler, token debt and loss averages carry across phases
        "general": teacher.mixture.state_dict() if teacher.mixture is not None else None,
        "difficulty": ph.view.difficulty,
        "rng": rng_state(),
        "result": teacher.result.to_dict(),
        "task_seconds_so_far": 0.0 if phase_done else ph.train_seconds,
        "assess_seconds_so_far": 0.0 if phase_done else ph.assess_seconds,
    }


# ----------------------------------------------------------------------------- restore
def restore_structure(teacher: "Teacher", state: dict[str, Any]) -> None:
    """Give the fresh model the checkpoint's structure before its weights load: the head grown
    to the classes of the tasks before the checkpoint's phase, and modules consolidators added."""
    model, phase = teacher.model, int(state["phase"])
    if hasattr(model, "adapt"):
        tasks = teacher.stream.tasks[:max(1, phase)]
        model.adapt(sorted({c for t in tasks for c in t.classes}))
    for c, s in zip(teacher.consolidators, state["consolidators"]):
        c.restore_structure(teacher.ctx, s)


def restore_run(teacher: "Teacher", state: dict[str, Any]) -> None:
    """What a checkpoint holds beyond the current phase: results so far, the model, memory,
    consolidator state and, for a phase-end checkpoint, the RNGs."""
    ctx, model = teacher.ctx, teacher.model
    teacher.result = RunResult.from_dict(state["result"])
    ctx.global_step = int(state["global_step"])
    mid_phase = int(state["step"]) > 0
    restore_structure(teacher, state)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        # a mid-phase checkpoint may hold modules a consolidator adds in before_task
        # (LoRA adapters): its weights load after the set-up, in restore_phase
        if not mid_phase:
            raise
    model.to(teacher.device)
    if teacher.memory is not None and state.get("memory") is not None:
        teacher.memory.load_state_dict(state["memory"])
    for c, s in zip(teacher.consolidators, state["consolidators"]):
        c.load_state_dict(to_device(s, teacher.device))
    if teacher.mixture is not None and state.get("general") is not None:
        teacher.mixture.load_state_dict(state["general"])
    if not mid_phase:
        if teacher.review is not None and state.get("review") is not None:
            teacher.review.load_state_dict(state["review"])
        set_rng_state(state["rng"])
    teacher.result.notes.append(f"resumed at task {state['phase']} step {state['step']}")


def restore_phase(teacher: "Teacher", ph: "Phase", state: dict[str, Any]) -> None:
    """A mid-phase checkpoint's own state, after the phase's normal set-up."""
    ctx = teacher.ctx
    teacher.model.load_state_dict(state["model"])
    if ph.optimizer is not None and state.get("optimizer") is not None:
        ph.optimizer.load_state_dict(state["optimizer"])
        for group in ph.optimizer.param_groups:  # a resumed run may lower the rate (after a NaN)
            group["lr"] = teacher.cfg.lr * group.get("lr_multiplier", 1.0)
        if ph.lr_scheduler is not None and state.get("lr_scheduler") is not None:
            from lifelong.engine.optim import set_schedule_step

            ph.lr_scheduler.load_state_dict(state["lr_scheduler"])
            set_schedule_step(ph.lr_scheduler, ph.lr_scheduler.last_epoch, base_lr=teacher.cfg.lr)
    if teacher.scaler is not None and state.get("scaler"):
        teacher.scaler.load_state_dict(state["scaler"])
    for c, s in zip(teacher.consolidators, state["consolidators"]):
        c.load_state_dict(to_device(s, ctx.device))
    teacher.curriculum.load_state_dict(state["curriculum"])
    ph.sampler.load_state_dict(state["sampler"])
    if ph.review_sampler is not None:
        teacher.review.load_state_dict(state["review"])
        ph.review_sampler.load_state_dict(state["review_sampler"])
    set_rng_state(state["rng"])
    ph.train_seconds = float(state.get("task_seconds_so_far") or 0.0)
    ph.assess_seconds = float(state.get("assess_seconds_so_far") or 0.0)


# ----------------------------------------------------------------------------- files
def save_checkpoint(state: dict[str, Any], path: str | Path) -> Path:
    """Write ``state`` atomically (a crash mid-write leaves the previous file intact)."""
    from lifelong.runs.io import torch_save_atomic

    return torch_save_atomic(state, path)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint without running any code from it; one clear message when it cannot be used."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"the checkpoint {path} does not exist.") from None
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"the checkpoint {path} was refused: it holds objects other than tensors and plain data, and loading "
            f"them could run code from the file ({_first_line(exc)}). Only resume run folders you trust to have "
            "been written by lifelong; delete the file to start the run again from its beginning.") from None
    except Exception as exc:  # noqa: BLE001 - a truncated or foreign file
        raise CheckpointError(f"the checkpoint {path} cannot be read ({_first_line(exc)}); it is damaged or not a "
                              "lifelong checkpoint. Delete it to start the run again from its beginning, or "
                              "resume from an earlier checkpoint.") from None
    missing = [k for k in KEYS if k not in OPTIONAL and (not isinstance(state, dict) or k not in state)]
    if missing:
        raise CheckpointError(f"the checkpoint {path} is not a complete lifelong checkpoint: it lacks "
                              f"{', '.join(missing)}. Delete it to start the run again from its beginning, or "
                              "resume from an earlier checkpoint.")
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__
