"""LoRA-per-task runs resume from any checkpoint to the same numbers (merge and keep modes)."""

from __future__ import annotations

import io
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("peft")

from lifelong.consolidation import CONSOLIDATORS  # noqa: E402
from lifelong.data.benchmarks import BENCHMARKS  # noqa: E402
from lifelong.engine import Recipe, TrainConfig, train_stream  # noqa: E402
from lifelong.hf import lora as _lora  # noqa: E402,F401
from lifelong.hf.models import tiny_causal_lm  # noqa: E402


@pytest.mark.parametrize("mode", ["merge", "keep"])
def test_lora_run_resumes_mid_task_and_at_task_boundary(mode):
    stream = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=64, test_size=32, max_digits=1,
                                                 skills=["add", "mul"])
    cfg = TrainConfig(steps=6, batch_size=16, optimizer="adamw", lr=5e-3, device="cpu", seed=0,
                      log_every=1, checkpoint_every=1)

    def fresh():
        return tiny_causal_lm(stream, hidden=32, heads=2, layers=1, seed=0), \
            Recipe(consolidators=[CONSOLIDATORS.get("lora")(rank=4, mode=mode)])

    blobs = []

    def keep(state):
        b = io.BytesIO()
        torch.save(state, b)
        blobs.append(b.getvalue())

    model, recipe = fresh()
    full = train_stream(stream, model, recipe, cfg, checkpointer=keep)
    states = [torch.load(io.BytesIO(b), weights_only=False) for b in blobs]
    for target in [(1, 3), (1, 0)]:  # the middle of task 2, and the boundary after task 1
        state = next(s for s in states if (s["phase"], s["step"]) == target)
        model, recipe = fresh()
        resumed = train_stream(stream, model, recipe, cfg, resume=state)
        assert resumed.losses == full.losses, target
        assert resumed.accuracy == full.accuracy, target
