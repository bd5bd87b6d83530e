"""Keeping schedules identical across the ranks of a distributed job.

Every rank draws the same global batch from its copy of a schedule and keeps
its own slice (:class:`~lifelong.curriculum.sampler.ScheduleSampler`). For the
copies to stay identical, each must then learn from the feedback of the whole
global batch, not only its slice: :func:`gather_feedback` concatenates the
ranks' feedback (in rank order, i.e. the order of the global draw). Outside a
distributed job it returns the feedback unchanged. The synchronisation lives
here, outside the schedules, so no schedule needs to know about ranks.
"""

from __future__ import annotations

import torch

from lifelong.curriculum.base import Feedback


def is_distributed() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def gather_feedback(fb: Feedback) -> Feedback:
    if not is_distributed():
        return fb
    import torch.distributed as dist

    parts: list = [None] * dist.get_world_size()
    mine = {k: (v.cpu() if isinstance(v, torch.Tensor) else v)
            for k, v in (("indices", fb.indices), ("losses", fb.losses), ("correct", fb.correct),
                         ("groups", fb.groups), ("scores", fb.scores))}
    dist.all_gather_object(parts, mine)

    def cat(key):
        vals = [p[key] for p in parts if p[key] is not None]
        return torch.cat(vals) if vals else None

    scores = None
    if any(p["scores"] for p in parts):
        # per-group scores: average the ranks' values for each group
        acc: dict[int, list[float]] = {}
        for p in parts:
            for g, v in (p["scores"] or {}).items():
                acc.setdefault(g, []).append(v)
        scores = {g: sum(v) / len(v) for g, v in acc.items()}
    return Feedback(fb.step, cat("indices"), cat("losses"), cat("correct"), cat("groups"), scores)


# ----------------------------------------------------------------------------- launching
def join_from_env(device: str = "auto") -> bool:
    """Join the process group that ``torchrun`` or ``accelerate launch`` describe in the environment
    (``WORLD_SIZE`` > 1, ``RANK``, ``MASTER_ADDR``...); True when this process is one of several.

    The launcher is theirs; this only calls ``torch.distributed.init_process_group`` (NCCL on CUDA,
    gloo on CPU) when nobody has yet."""
    import os

    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return is_distributed()
    if not dist.is_initialized():
        use_cuda = torch.cuda.is_available() and not device.startswith("cpu")
        if use_cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if use_cuda else "gloo")
    return dist.get_world_size() > 1


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def is_main_process() -> bool:
    """Rank 0 (or the only process): the one that writes the run folder and shows progress."""
    return rank() == 0


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` for the forward pass of a multi-process step: DistributedDataParallel averages the
    gradients over the ranks (torch's engine, re-wrapped each phase as heads and adapters change)."""
    if not is_distributed():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None,
                                   broadcast_buffers=False)


def mean_over_ranks(value: float) -> float:
    """The mean of a per-process scalar over the ranks (the loss of the global batch); every rank
    gets the same number, so a NaN on one stops them all instead of leaving the others waiting."""
    if not is_distributed():
        return value
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / dist.get_world_size()
