"""What ContinualTrainer keeps from the user's Trainer (docs/trainer.md, "What is kept"): an optimiser
and scheduler passed with ``optimizers=`` (the same numbers as the loop with that optimiser, not
AdamW), ``max_grad_norm`` (the same numbers as the loop's clipping), bf16 autocast, and the user's
evaluation collator and ``eval_dataset``."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
transformers = pytest.importorskip("transformers")

from lifelong.data.benchmarks import BENCHMARKS  # noqa: E402
from lifelong.engine import TrainConfig, train_stream  # noqa: E402
from lifelong.engine.callbacks import Callback  # noqa: E402
from lifelong.hf.models import tiny_causal_lm  # noqa: E402
from lifelong.hf.trainer import ContinualTrainer  # noqa: E402

STEPS, BATCH = 4, 8


class StepLosses(Callback):
    """Each optimiser step's loss, checking both drivers count the run's steps 1, 2, 3, ..."""

    def __init__(self):
        self.losses: list[float] = []

    def on_step_end(self, ctx, loss):
        assert ctx.global_step == len(self.losses) + 1
        self.losses.append(loss)


@pytest.fixture(scope="module")
def stream():
    return BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=32, test_size=12, max_digits=1,
                                              skills=["add", "sub"], general_size=0)


def _model(stream):
    return tiny_causal_lm(stream, hidden=16, heads=2, layers=1, seed=0)


def _args(tmp_path, **kw):
    base = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=BATCH, learning_rate=5e-3,
                max_steps=STEPS, report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no",
                disable_tqdm=True, lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, seed=0)
    base.update(kw)
    return transformers.TrainingArguments(**base)


def _loop(stream, **cfg):
    log = StepLosses()
    base = dict(steps=STEPS, batch_size=BATCH, optimizer="adamw", lr=5e-3, device="cpu", seed=0, eval_batch_size=32,
                log_every=0)
    base.update(cfg)
    transformers.set_seed(0)
    result = train_stream(stream, _model(stream), config=TrainConfig(**base), callbacks=[log])
    return result, log.losses


def _trainer(stream, args, optimizers=None):
    log = StepLosses()
    model = _model(stream)
    opts = optimizers(model) if optimizers is not None else (None, None)
    trainer = transformers.Trainer(model=model, args=args, optimizers=opts)
    result = ContinualTrainer(trainer, stream, seed=0, eval_batch_size=32, callbacks=[log]).fit()
    return trainer, result, log.losses


def test_the_users_optimizer_and_scheduler_are_kept(stream, tmp_path):
    """SGD(lr=0.05) passed with optimizers=: the loop's numbers with SGD, lr 0.05 -- not AdamW's."""
    box = {}

    def sgd(model):
        box["opt"] = torch.optim.SGD(model.parameters(), lr=0.05)
        box["sched"] = torch.optim.lr_scheduler.ConstantLR(box["opt"], factor=1.0, total_iters=0)
        return box["opt"], box["sched"]

    trainer, hf, hf_losses = _trainer(stream, _args(tmp_path), optimizers=sgd)
    loop, loop_losses = _loop(stream, optimizer="sgd", lr=0.05)
    adamw, adamw_losses = _loop(stream)
    assert hf_losses == pytest.approx(loop_losses, rel=1e-4, abs=1e-5)
    assert hf_losses != pytest.approx(adamw_losses, rel=1e-3)
    opt = trainer.optimizer
    assert getattr(opt, "optimizer", opt) is box["opt"]  # the same object (accelerate wraps it)
    assert trainer.lr_scheduler is box["sched"] or getattr(trainer.lr_scheduler, "scheduler", None) is box["sched"]
    assert box["opt"].param_groups[0]["lr"] == pytest.approx(0.05)


def test_max_grad_norm_clips_as_the_loop_does(stream, tmp_path):
    _, hf, hf_losses = _trainer(stream, _args(tmp_path, max_grad_norm=0.05))
    _, loop_losses = _loop(stream, max_grad_norm=0.05)
    _, free_losses = _loop(stream)
    assert hf_losses == pytest.approx(loop_losses, rel=1e-4, abs=1e-5)
    assert loop_losses != pytest.approx(free_losses, rel=1e-3)  # the clipping acted


def test_bf16_autocast_of_the_trainer_wraps_the_engine_loss(stream, tmp_path):
    """bf16=True on CPU: the Trainer's autocast runs the engine's forward in bf16 (losses differ from
    fp32 and are close to the loop's bf16 run)."""
    seen = []
    hook_model = {}

    def optimizers(model):
        hook_model["m"] = model
        model.transformer.h[0].mlp.c_fc.register_forward_hook(lambda mod, i, o: seen.append(o.dtype))
        return None, None

    _, hf, hf_losses = _trainer(stream, _args(tmp_path, bf16=True), optimizers=optimizers)
    assert torch.bfloat16 in seen  # the training forward ran under bf16 autocast
    _, fp32_losses = _loop(stream)
    _, bf16_losses = _loop(stream, precision="bf16")
    assert hf_losses != pytest.approx(fp32_losses, rel=1e-6, abs=0)
    assert hf_losses == pytest.approx(bf16_losses, rel=5e-2, abs=5e-2)


def test_the_users_eval_collator_and_dataset_still_evaluate(stream, tmp_path):
    """A normal eval_dataset from datasets.map(tokenizer) with the user's collator: trainer.evaluate() works
    after (and alongside) continual training; only the training loader is the engine's."""
    datasets = pytest.importorskip("datasets")
    tok = stream.info["tokenizer"].to_hf()
    texts = ["1+2=3", "4+4=8", "9-3=6", "7-5=2"]
    eval_ds = datasets.Dataset.from_dict({"text": texts}).map(lambda b: tok(b["text"]), batched=True,
                                                              remove_columns=["text"])
    collator = transformers.DataCollatorForLanguageModeling(tok, mlm=False)
    model = _model(stream)
    trainer = transformers.Trainer(model=model, args=_args(tmp_path, per_device_eval_batch_size=2),
                                   eval_dataset=eval_ds, data_collator=collator, processing_class=tok)
    learner = ContinualTrainer(trainer, stream, seed=0, eval_batch_size=32)
    assert learner.eval_collator is collator
    before = trainer.evaluate()["eval_loss"]
    result = learner.fit()
    after = trainer.evaluate()["eval_loss"]
    assert result.complete and len(result.accuracy) == len(stream)
    assert torch.isfinite(torch.tensor([before, after])).all() and after != before
