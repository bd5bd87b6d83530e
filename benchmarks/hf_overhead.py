"""Tokens per second: our Trainer integration vs a plain ``transformers.Trainer``, and vs a plain TRL ``SFTTrainer``.

Same tiny GPT-2, same tokenised arithmetic data, same batch size, optimiser
and number of steps, in one process. The plain Trainer gets the rows as a list
of dicts with its random sampler and the same padding-trimming collator
(:class:`~lifelong.hf.trainer.LMCollator`, so only the integration differs); ours runs through
:class:`lifelong.hf.trainer.ContinualTrainer` (schedule sampler, pool dataset,
collator, compute_loss hook) with the uniform schedule. Runs alternate
(plain, ours, plain, ours, ...) so drifts in machine load hit both, and the
ratio of medians is reported. Tokens counted = non-padding tokens of the rows
trained on (identical batch shapes on both sides: 16 rows per step).

The same comparison for TRL's ``SFTTrainer`` (skipped when trl is not
installed): a plain ``SFTTrainer`` on the task's processed rows
(``input_ids`` + ``completion_mask``, its own padding collator and loss) against
``ContinualTrainer.build(SFTTrainer, ...)`` on the same model, data, batch,
optimiser and steps. Both fp32 on CPU: SFTConfig's defaults (bf16 autocast,
activation checkpointing) are turned off on both sides. Trainer construction
(SFTTrainer's dataset preparation) is outside the timed region on both sides.

Usage: python benchmarks/hf_overhead.py [--repeats 5] [--steps 150]
Last lines: ``hf_overhead_ratio_sft: X`` then ``hf_overhead_ratio: X`` (plain tokens/s / ours
tokens/s, the plain-Trainer one last; <= 1.05 is the target).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--steps", type=int, default=150)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--hidden", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--loop-steps", type=int, default=16, help="optimiser steps of the loop-vs-Trainer comparison")
    ap.add_argument("--loop-size", default="medium", help="tiny-causal-lm size for the loop-vs-Trainer comparison")
    ap.add_argument("--no-loop", action="store_true", help="skip the loop-vs-Trainer comparison")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)

    import transformers

    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.hf.trainer import ContinualTrainer, LMCollator, task_dataset

    transformers.utils.logging.set_verbosity_error()
    stream = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=2000, test_size=16, max_digits=3, skills=["add"])
    task = stream[0]
    rows = [{k: task.train[k][i] for k in ("input_ids", "attention_mask", "labels")} for i in range(task.num_train)]
    tokens_per_row = float(task.train["attention_mask"].sum()) / task.num_train
    out = tempfile.mkdtemp(prefix="hf-overhead-")

    def args() -> transformers.TrainingArguments:
        return transformers.TrainingArguments(
            output_dir=out, per_device_train_batch_size=a.batch, learning_rate=1e-3, max_steps=a.steps,
            report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no", disable_tqdm=True,
            lr_scheduler_type="constant", seed=0, dataloader_num_workers=0)

    def fresh_model():
        return tiny_causal_lm(stream, hidden=a.hidden, heads=4, layers=2, seed=0)

    def run_plain() -> float:
        trainer = transformers.Trainer(model=fresh_model(), args=args(), train_dataset=rows,
                                       data_collator=LMCollator())
        t0 = time.perf_counter()
        trainer.train()
        return a.steps * a.batch * tokens_per_row / (time.perf_counter() - t0)

    def run_ours() -> float:
        trainer = transformers.Trainer(model=fresh_model(), args=args())
        cl = ContinualTrainer(trainer, stream, steps=a.steps, evaluate=False)
        t0 = time.perf_counter()
        cl.fit()
        return a.steps * a.batch * tokens_per_row / (time.perf_counter() - t0)

    def compare(label: str, run_plain, run_ours, ours_name: str | None = None) -> float:
        """Alternate plain and ours (after one warm-up each); the ratio of median tokens/s (plain / ours)."""
        run_plain(), run_ours()  # warm-up (imports, allocator)
        plain, ours = [], []
        for r in range(a.repeats):
            for name, fn, acc in (("plain", run_plain, plain), ("ours", run_ours, ours))[:: 1 if r % 2 == 0 else -1]:
                acc.append(fn())
                print(f"{label} repeat {r} {name:5s} {acc[-1]:10.0f} tokens/s", flush=True)
        p, o = statistics.median(plain), statistics.median(ours)
        print(f"plain {label:14s}: {p:10.0f} tokens/s (median of {a.repeats})")
        print(f"{ours_name or f'ContinualTrainer({label})'}: {o:10.0f} tokens/s (median of {a.repeats})")
        return p / o

    ratio = compare("Trainer", run_plain, run_ours)
    ratio_sft = sft_ratio(a, stream, fresh_model, out, tokens_per_row, compare, task_dataset)
    loop = None if a.no_loop else loop_ratio(a, stream, rows, tokens_per_row, out, compare)
    if loop is not None:
        print(f"loop_vs_trainer_ratio: {loop:.3f}   (lifelong run's loop tokens/s / a plain Trainer's; target >= 0.95)")
    print(f"hf_overhead_ratio (Trainer): {ratio:.3f}")
    if ratio_sft is not None:
        print(f"hf_overhead_ratio_sft: {ratio_sft:.3f}")
    print(f"hf_overhead_ratio: {ratio:.3f}")


def loop_ratio(a, stream, rows, tokens_per_row, out, compare) -> float:
    """``lifelong run``'s own loop (``train_stream``) against a plain ``transformers.Trainer``: the same
    ~20M-parameter Llama-style model (``tiny-causal-lm size: medium``), rows, batch, gradient accumulation
    (2), AdamW, cosine schedule with warm-up and precision (fp32), alternating, ratio of median tokens/s
    (ours / Trainer's)."""
    import transformers

    from lifelong.engine import Recipe, TrainConfig, train_stream
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.hf.trainer import LMCollator

    accum, steps = 2, a.loop_steps
    model0 = tiny_causal_lm(stream, size=a.loop_size, seed=0)
    n_params = sum(p.numel() for p in model0.parameters())
    print(f"loop vs Trainer: tiny-causal-lm size {a.loop_size} ({n_params / 1e6:.1f}M parameters), batch {a.batch} x "
          f"accumulation {accum}, {steps} steps, AdamW 1e-3, cosine with 2 warm-up steps, fp32")
    state = {k: v.clone() for k, v in model0.state_dict().items()}

    def fresh():
        m = tiny_causal_lm(stream, size=a.loop_size, seed=0)
        m.load_state_dict(state)
        return m

    tokens = steps * accum * a.batch * tokens_per_row

    def run_trainer() -> float:
        args = transformers.TrainingArguments(
            output_dir=out, per_device_train_batch_size=a.batch, gradient_accumulation_steps=accum, learning_rate=1e-3,
            max_steps=steps, lr_scheduler_type="cosine", warmup_steps=2, weight_decay=0.0, max_grad_norm=0.0,
            report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no", disable_tqdm=True, seed=0,
            dataloader_num_workers=0)
        trainer = transformers.Trainer(model=fresh(), args=args, train_dataset=rows, data_collator=LMCollator())
        t0 = time.perf_counter()
        trainer.train()
        return tokens / (time.perf_counter() - t0)

    def run_loop() -> float:
        model = fresh()
        cfg = TrainConfig(steps=steps, batch_size=a.batch, gradient_accumulation_steps=accum, optimizer="adamw",
                          lr=1e-3, lr_scheduler="cosine", warmup_steps=2, device="cpu", log_every=0, seed=0)
        t0 = time.perf_counter()
        result = train_stream(stream, model, Recipe(), cfg)  # the stream holds one task (add)
        # the task's training time alone: the loop's task-end assessment is not in the Trainer's train()
        return tokens / result.task_seconds[0] if result.task_seconds else tokens / (time.perf_counter() - t0)

    return 1.0 / compare(f"Trainer, {a.loop_size} model", run_trainer, run_loop, ours_name=f"lifelong loop, {a.loop_size} model")


def sft_ratio(a, stream, fresh_model, out, tokens_per_row, compare, task_dataset) -> float | None:
    """Plain ``SFTTrainer`` vs ``ContinualTrainer.build(SFTTrainer, ...)``; None without trl."""
    try:
        import trl
    except ImportError:
        print("trl is not installed: the SFTTrainer comparison is skipped (pip install 'lifelong[llm]')")
        return None
    from lifelong.hf.trainer import ContinualTrainer

    import datasets

    datasets.disable_progress_bars()
    tokenizer = stream.info["tokenizer"].to_hf()
    rows = task_dataset(stream[0])

    def args() -> "trl.SFTConfig":
        return trl.SFTConfig(
            output_dir=out, per_device_train_batch_size=a.batch, learning_rate=1e-3, max_steps=a.steps,
            report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no", disable_tqdm=True,
            lr_scheduler_type="constant", seed=0, dataloader_num_workers=0, bf16=False,
            activation_checkpointing=False)

    def run_plain() -> float:
        trainer = trl.SFTTrainer(model=fresh_model(), args=args(), train_dataset=rows, processing_class=tokenizer)
        t0 = time.perf_counter()
        trainer.train()
        return a.steps * a.batch * tokens_per_row / (time.perf_counter() - t0)

    def run_ours() -> float:
        cl = ContinualTrainer.build(trl.SFTTrainer, stream, model=fresh_model(), args=args(),
                                    processing_class=tokenizer, steps=a.steps, evaluate=False)
        t0 = time.perf_counter()
        cl.fit()
        return a.steps * a.batch * tokens_per_row / (time.perf_counter() - t0)

    return compare("SFTTrainer", run_plain, run_ours)


if __name__ == "__main__":
    main()
