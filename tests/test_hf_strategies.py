"""Every continual fine-tuning strategy on a tiny causal LM through the ordinary loop.

Stream: 1-digit addition, then 1-digit multiplication (arithmetic-skills).
Each strategy runs once (about a second per task); the checks are about what
the strategy does to the model, compared with naive fine-tuning.
"""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lifelong.consolidation import CONSOLIDATORS  # noqa: E402
from lifelong.curriculum import SCHEDULES  # noqa: E402
from lifelong.data.benchmarks import BENCHMARKS  # noqa: E402
from lifelong.engine.callbacks import Callback  # noqa: E402
from lifelong.engine.config import Recipe, TrainConfig  # noqa: E402
from lifelong.engine.loop import train_stream  # noqa: E402
from lifelong.memory import BUFFERS  # noqa: E402

pytest.importorskip("transformers")
from lifelong.hf import lora as _lora  # noqa: E402,F401  (registers 'lora')
from lifelong.hf.models import tiny_causal_lm  # noqa: E402

STEPS = 250


class Snapshots(Callback):
    """Parameters (by name, LoRA wrappers stripped) at the end of each task."""

    def __init__(self):
        self.after: list[dict[str, torch.Tensor]] = []

    def on_task_end(self, ctx, row):
        self.after.append({n.replace("base_layer.", ""): p.detach().clone()
                           for n, p in ctx.model.named_parameters() if "lora_" not in n})


@pytest.fixture(scope="module")
def stream():
    return BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=300, test_size=100, max_digits=1,
                                              skills=["add", "mul"])


def run(stream, recipe):
    model = tiny_causal_lm(stream, hidden=48, heads=4, layers=2, seed=0)
    snaps = Snapshots()
    cfg = TrainConfig(steps=STEPS, batch_size=32, optimizer="adamw", lr=5e-3, device="cpu", seed=0,
                      eval_batch_size=128, log_every=0)
    result = train_stream(stream, model, recipe, cfg, callbacks=[snaps])
    assert result.complete and len(result.accuracy) == 2
    drift = sum(float((snaps.after[1][n] - p).pow(2).sum()) for n, p in snaps.after[0].items()) ** 0.5
    return result, snaps, drift, model


@pytest.fixture(scope="module")
def naive(stream):
    return run(stream, Recipe())


def test_naive_learns_each_skill_and_forgets_the_first(naive):
    result, _, drift, _ = naive
    acc = result.accuracy
    assert acc[0][0] > 0.3 and acc[1][1] > 0.2  # each skill is learned in its turn
    assert acc[1][0] < acc[0][0] - 0.2  # and addition is forgotten while learning multiplication
    assert result.baseline == [0.0, 0.0] and drift > 0


def test_replay_by_review_schedule_reduces_forgetting(stream, naive):
    review = SCHEDULES.get("replay")(ratio=0.5)
    result, _, _, _ = run(stream, Recipe(name="replay", memory=BUFFERS.get("reservoir")(capacity=150), review=review))
    assert result.accuracy[1][0] > naive[0].accuracy[1][0] + 0.1


@pytest.mark.parametrize("name,params", [("l2", {"lambda_": 50.0}), ("ewc", {"lambda_": 5000.0, "samples": 64}),
                                         ("lwf", {"alpha": 5.0})])
def test_regularisers_keep_weights_closer_to_the_first_task(stream, naive, name, params):
    c = CONSOLIDATORS.get(name)(**params)
    result, _, drift, model = run(stream, Recipe(name=name, consolidators=[c]))
    assert drift < 0.8 * naive[2], f"{name}: drift {drift:.3f} vs naive {naive[2]:.3f}"
    # and the first skill is kept better: its completion loss after the second task stays below naive's
    # (exact-match accuracies after forgetting are near zero for both, too coarse to compare)
    from lifelong.hf.objective import CausalLMObjective

    obj = CausalLMObjective(stream)
    kept, lost = obj.token_loss(model, stream[0]), obj.token_loss(naive[3], stream[0])
    assert kept < lost, f"{name}: first-skill loss {kept:.3f} vs naive {lost:.3f}"


def test_hft_trains_only_half_of_the_parameter_tensors(stream):
    result, snaps, _, _ = run(stream, Recipe(name="hft", consolidators=[CONSOLIDATORS.get("hft")(fraction=0.5)]))
    before, after = snaps.after
    unchanged = [n for n in before if torch.equal(before[n], after[n])]
    assert 0.3 * len(before) <= len(unchanged) <= 0.7 * len(before)
    assert result.accuracy[1][1] > 0.0 or result.accuracy[0][0] > 0.0


@pytest.mark.parametrize("mode", ["merge", "keep"])
def test_lora_per_task_changes_only_adapted_layers(stream, mode):
    from lifelong.hf.lora import tuner_layers

    c = CONSOLIDATORS.get("lora")(rank=8, alpha=16, mode=mode)
    result, snaps, _, model = run(stream, Recipe(name=f"lora-{mode}", consolidators=[c]))
    before, after = snaps.after
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    if mode == "merge":
        # task 1's adapter was folded into the attention projections; nothing else moved
        assert changed and all("c_attn" in n for n in changed)
        assert not any("lora_" in n for n, _ in model.named_parameters())
    else:
        assert not changed  # base weights untouched; the task deltas live in the kept adapters
        assert c.adapter_names() == ["task0", "task1"]
        assert tuner_layers(model)[0].active_adapters == ["task0", "task1"]
    assert not any(p.requires_grad for p in model.parameters())  # nothing left in training
    # a rank-8 adapter on a random base cannot master arithmetic, but it must learn: the last
    # task's completion loss falls below the untrained model's
    from lifelong.hf.objective import CausalLMObjective

    obj = CausalLMObjective(stream)
    fresh = tiny_causal_lm(stream, hidden=48, heads=4, layers=2, seed=0)
    assert obj.token_loss(model, stream[1]) < 0.9 * obj.token_loss(fresh, stream[1])
