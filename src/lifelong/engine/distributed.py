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
