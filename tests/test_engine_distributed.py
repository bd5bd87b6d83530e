"""Two real processes (gloo on CPU): disjoint shards of one draw, identical schedules after feedback."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lifelong.curriculum.base import Feedback, PoolView, Schedule
from lifelong.curriculum.sampler import ScheduleSampler
from lifelong.engine.distributed import gather_feedback


class LossWeighted(Schedule):
    """Weights follow the last loss seen for each item: state depends on all feedback."""

    needs_feedback = True

    def start(self, pool, total_steps, seed=0):
        super().start(pool, total_steps, seed)
        self.w = torch.ones(pool.size)

    def weights(self, step):
        return self.w

    def update(self, fb):
        self.w[fb.indices] = fb.losses + 0.1


def _worker(rank: int, world: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    sched = LossWeighted()
    sched.start(PoolView.single(100), total_steps=20, seed=0)
    sampler = ScheduleSampler(sched, batch_size=8, seed=5)
    drawn = []
    for step in range(20):
        idx = sampler.next_batch()
        drawn.append(idx)
        # a rank-specific "loss" so ranks would diverge without the gather
        fb = Feedback(step, idx, losses=(idx.float() % 7) * (rank + 1))
        sched.update(gather_feedback(fb))
    torch.save({"drawn": drawn, "w": sched.w}, os.path.join(out_dir, f"rank{rank}.pt"))
    dist.destroy_process_group()


def test_two_ranks_draw_disjoint_shards_and_stay_identical(tmp_path):
    mp.spawn(_worker, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    r0 = torch.load(tmp_path / "rank0.pt")
    r1 = torch.load(tmp_path / "rank1.pt")
    for a, b in zip(r0["drawn"], r1["drawn"]):
        assert len(a) == len(b) == 8
        assert not set(a.tolist()) & set(b.tolist())  # disjoint shards of one global draw
    assert torch.equal(r0["w"], r1["w"])  # schedules saw the same (gathered) feedback


def test_gather_is_identity_outside_a_distributed_job():
    fb = Feedback(3, torch.arange(4), torch.ones(4))
    assert gather_feedback(fb) is fb
