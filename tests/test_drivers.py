"""One engine, two drivers: every consolidator and every review schedule gives the same
accuracy matrix and losses through `train_stream` and through `ContinualTrainer` around a
plain `transformers.Trainer` (both draw their batches from `lifelong.engine.phase.Teacher`)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from lifelong.consolidation.registry import CONSOLIDATORS  # noqa: E402
from lifelong.curriculum.base import ReviewSchedule  # noqa: E402
from lifelong.curriculum.registry import SCHEDULES  # noqa: E402
from lifelong.data.benchmarks import BENCHMARKS  # noqa: E402
from lifelong.engine import TrainConfig, train_stream  # noqa: E402
from lifelong.engine.callbacks import Callback  # noqa: E402
from lifelong.engine.config import Recipe  # noqa: E402
from lifelong.hf.models import tiny_causal_lm  # noqa: E402
from lifelong.hf.trainer import ContinualTrainer  # noqa: E402
from lifelong.memory import BUFFERS  # noqa: E402

STEPS, BATCH, LR = 5, 8, 5e-3
PARAMS = {"ewc": {"lambda_": 100.0, "samples": 16}, "online-ewc": {"lambda_": 100.0, "samples": 16},
          "agem": {"sample_size": 8}, "hft": {}, "freeze": {"modules": ["transformer.wte"]},
          "slow-learner": {"lr_multipliers": {"transformer.h.*": 0.1}, "freeze": ["transformer.wpe*"]}}
REVIEWS = [n for n in SCHEDULES.names() if issubclass(SCHEDULES.get(n), ReviewSchedule)]


class Losses(Callback):
    def __init__(self):
        self.losses = []

    def on_step_end(self, ctx, loss):
        self.losses.append(loss)


@pytest.fixture(scope="module")
def stream():
    return BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=48, test_size=16, max_digits=1,
                                              skills=["add", "sub"])


def _recipe(kind: str, name: str) -> Recipe:
    memory = BUFFERS.get("reservoir")(capacity=24)
    if kind == "review":
        params = {"quiz_every": 2, "quiz_size": 4} if name == "spaced-review" else {}
        return Recipe(name=name, memory=memory, review=SCHEDULES.get(name)(**params))
    c = CONSOLIDATORS.get(name)(**PARAMS.get(name, {}))
    needs = getattr(c, "needs_memory", False)
    return Recipe(name=name, consolidators=[c], memory=memory if needs else None)


def _both(stream, kind, name):
    loop_log, hf_log = Losses(), Losses()
    cfg = TrainConfig(steps=STEPS, batch_size=BATCH, optimizer="adamw", lr=LR, device="cpu", seed=0,
                      eval_batch_size=32, log_every=0)
    model = tiny_causal_lm(stream, hidden=16, heads=2, layers=1, seed=0)
    transformers.set_seed(0)  # what the Trainer's constructor does: both runs start from the same global RNG
    loop = train_stream(stream, model, _recipe(kind, name), cfg, callbacks=[loop_log])
    r = _recipe(kind, name)
    args = transformers.TrainingArguments(
        output_dir="/tmp/lifelong-drivers-test", per_device_train_batch_size=BATCH, learning_rate=LR, max_steps=STEPS,
        report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no", disable_tqdm=True,
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, seed=0)
    trainer = transformers.Trainer(model=tiny_causal_lm(stream, hidden=16, heads=2, layers=1, seed=0), args=args)
    hf = ContinualTrainer(trainer, stream, schedule=r.curriculum, review=r.review, memory=r.memory,
                          consolidators=r.consolidators, seed=0, eval_batch_size=32, callbacks=[hf_log]).fit()
    return loop, hf, loop_log.losses, hf_log.losses, r


@pytest.mark.parametrize("kind,name", [("consolidator", n) for n in CONSOLIDATORS.names()]
                         + [("review", n) for n in REVIEWS])
def test_both_drivers_give_the_same_numbers(stream, kind, name):
    loop, hf, loop_losses, hf_losses, r = _both(stream, kind, name)
    assert loop.complete and hf.complete and len(loop.accuracy) == len(hf.accuracy) == 2
    flat = lambda m: [a for row in m for a in row]  # noqa: E731
    assert flat(loop.accuracy) == pytest.approx(flat(hf.accuracy), abs=1e-6), name
    assert loop.task_steps == hf.task_steps == [STEPS, STEPS]
    assert len(loop_losses) == len(hf_losses) == 2 * STEPS
    assert loop_losses == pytest.approx(hf_losses, rel=1e-4, abs=1e-5), name
    if r.memory is not None:  # memory was filled through the engine, with the consolidators' extras
        assert len(r.memory) == 24
        for f in getattr(r.consolidators[0], "memory_fields", ()) if r.consolidators else ():
            assert f in r.memory.examples, f"{name}: memory lacks its '{f}' field"


def _hf_tokenizer(stream):
    """The stream's character tokenizer as a transformers tokenizer (SFTTrainer insists on one)."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    ct = stream.info["tokenizer"]
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=Tokenizer(WordLevel(ct.vocab, unk_token=ct.tokens[3])), pad_token=ct.tokens[0],
        bos_token=ct.tokens[1], eos_token=ct.tokens[2], unk_token=ct.tokens[3])


@pytest.mark.parametrize("kind,name", [("consolidator", n) for n in CONSOLIDATORS.names()]
                         + [("review", n) for n in REVIEWS])
def test_trl_sft_trainer_gives_the_loop_numbers(stream, kind, name):
    """TRL's SFTTrainer, built by ContinualTrainer.build (no placeholder dataset, no column tricks):
    the same numbers as the loop, so distillation, logit replay and quizzes are live under it."""
    trl = pytest.importorskip("trl")
    loop_log, hf_log = Losses(), Losses()
    cfg = TrainConfig(steps=STEPS, batch_size=BATCH, optimizer="adamw", lr=LR, device="cpu", seed=0,
                      eval_batch_size=32, log_every=0)
    model = tiny_causal_lm(stream, hidden=16, heads=2, layers=1, seed=0)
    transformers.set_seed(0)
    loop = train_stream(stream, model, _recipe(kind, name), cfg, callbacks=[loop_log])
    r = _recipe(kind, name)
    # SFTConfig's own defaults are bf16 autocast and activation checkpointing: the same job is fp32 here
    args = trl.SFTConfig(
        output_dir="/tmp/lifelong-drivers-sft", per_device_train_batch_size=BATCH, learning_rate=LR, max_steps=STEPS,
        report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no", disable_tqdm=True,
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, seed=0, bf16=False,
        gradient_checkpointing=False)
    learner = ContinualTrainer.build(trl.SFTTrainer, stream, model=tiny_causal_lm(stream, hidden=16, heads=2, layers=1,
                                                                                   seed=0),
                                     args=args, processing_class=_hf_tokenizer(stream), schedule=r.curriculum,
                                     review=r.review, memory=r.memory, consolidators=r.consolidators, seed=0,
                                     eval_batch_size=32, callbacks=[hf_log])
    hf = learner.fit()
    flat = lambda m: [a for row in m for a in row]  # noqa: E731
    assert isinstance(learner.trainer, trl.SFTTrainer)
    assert flat(loop.accuracy) == pytest.approx(flat(hf.accuracy), abs=1e-6)
    assert loop_log.losses == pytest.approx(hf_log.losses, rel=1e-4, abs=1e-5)
