"""One engine, two drivers: `lifelong run`'s loop and `ContinualTrainer` around a plain
`transformers.Trainer` must give the same numbers on the same job.

Same tiny causal LM (same initial weights), same `arithmetic-skills` data, same batches
(both drivers draw them from the one engine), same optimiser (AdamW, constant learning
rate, no weight decay, no clipping) and steps, for naive, er, ewc, lwf, der++ and spaced
review. Prints, per method, the largest absolute difference between the two accuracy
matrices and between the final training losses.

Usage: python benchmarks/drivers.py [--steps 80] [--hidden 64]
Last line: ``drivers_max_abs_diff: X`` (largest accuracy-matrix difference; target <= 0.01).
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

METHODS = ("naive", "er", "ewc", "lwf", "der++", "spaced-review")


def recipe_for(name: str):
    """A fresh Recipe for a method (schedules and memory hold state, so never shared)."""
    from lifelong.curriculum.registry import SCHEDULES
    from lifelong.engine.config import Recipe
    from lifelong.memory import BUFFERS
    from lifelong.strategies import compose

    if name == "spaced-review":
        return Recipe(name=name, memory=BUFFERS.get("reservoir")(capacity=120),
                      review=SCHEDULES.get("spaced-review")(quiz_every=10, quiz_size=8))
    params = {"er": {"memory_size": 120}, "der++": {"memory_size": 120}, "ewc": {"lambda_": 500.0}}.get(name, {})
    return compose({name: params})


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=80)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--methods", default=",".join(METHODS))
    a = ap.parse_args()
    torch.set_num_threads(1)

    import transformers

    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.engine import TrainConfig, train_stream
    from lifelong.engine.callbacks import Callback
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.hf.trainer import ContinualTrainer

    transformers.utils.logging.set_verbosity_error()

    class LastLoss(Callback):
        def on_step_end(self, ctx, loss):
            self.loss = loss

    stream = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=200, test_size=48, max_digits=1,
                                                  skills=["add", "sub", "mul"])
    lr, out = 3e-3, tempfile.mkdtemp(prefix="drivers-")
    worst = 0.0
    print(f"{'method':<14} {'max |dR|':>9} {'|d loss|':>9}  loop R[-1]            trainer R[-1]")
    for name in a.methods.split(","):
        loop_last = LastLoss()
        cfg = TrainConfig(steps=a.steps, batch_size=a.batch, optimizer="adamw", lr=lr, device="cpu", seed=0,
                          eval_batch_size=64, log_every=0)
        model = tiny_causal_lm(stream, hidden=a.hidden, heads=4, seed=0)
        transformers.set_seed(0)  # what the Trainer's constructor does: both runs start from the same global RNG
        loop = train_stream(stream, model, recipe_for(name), cfg, callbacks=[loop_last])
        r = recipe_for(name)
        args = transformers.TrainingArguments(
            output_dir=out, per_device_train_batch_size=a.batch, learning_rate=lr, max_steps=a.steps, report_to=[],
            use_cpu=True, logging_strategy="no", save_strategy="no", disable_tqdm=True, lr_scheduler_type="constant",
            weight_decay=0.0, max_grad_norm=0.0, seed=0, optim="adamw_torch")
        trainer = transformers.Trainer(model=tiny_causal_lm(stream, hidden=a.hidden, heads=4, seed=0), args=args)
        trainer.remove_callback(transformers.PrinterCallback)
        hf_last = LastLoss()
        hf = ContinualTrainer(trainer, stream, schedule=r.curriculum, review=r.review, memory=r.memory,
                              consolidators=r.consolidators, seed=0, eval_batch_size=64, callbacks=[hf_last]).fit()
        d_acc = max(abs(x - y) for ra, rb in zip(loop.accuracy, hf.accuracy) for x, y in zip(ra, rb))
        d_loss = abs(loop_last.loss - hf_last.loss)
        worst = max(worst, d_acc)
        fmt = lambda row: "[" + ", ".join(f"{v:.3f}" for v in row) + "]"  # noqa: E731
        print(f"{name:<14} {d_acc:>9.4f} {d_loss:>9.2e}  {fmt(loop.accuracy[-1]):<21} {fmt(hf.accuracy[-1])}")
    print(f"drivers_max_abs_diff: {worst:.4f}")


if __name__ == "__main__":
    main()
