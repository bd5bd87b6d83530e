"""Continual fine-tuning with a plain ``transformers.Trainer`` wrapped by ``ContinualTrainer``.

Three arithmetic skills (add, then sub, then mul) are taught in turn to a small
Llama. The Trainer is configured as usual; ``ContinualTrainer`` decides which
rows it trains on (each task's data plus 30% replay from a reservoir memory),
adds EWC's penalty to its loss and measures every task after each one: the
accuracy matrix and forgetting. Offline, on CPU, in seconds with ``--steps 20``.

    python examples/trainer_continual.py [--steps 150] [--batch 16] [--out DIR]

The model is built from a ``LlamaConfig``, saved with ``save_pretrained`` and
loaded back by path with its tokenizer -- exactly how you would start from
your own checkpoint folder (``AutoModelForCausalLM.from_pretrained(path)``).
"""

from __future__ import annotations

import argparse
import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainingArguments  # noqa: E402

from lifelong.assessment import average_accuracy, forgetting  # noqa: E402
from lifelong.consolidation import EWC  # noqa: E402
from lifelong.curriculum.basic import UniformReplay  # noqa: E402
from lifelong.data.benchmarks import BENCHMARKS  # noqa: E402
from lifelong.hf.trainer import ContinualTrainer  # noqa: E402
from lifelong.memory import Reservoir  # noqa: E402


def hf_tokenizer(stream) -> transformers.PreTrainedTokenizerFast:
    """The stream's character tokenizer as a ``PreTrainedTokenizerFast`` (same ids), which
    ``save_pretrained``/``AutoTokenizer`` handle. With your own data, use your model's tokenizer
    (``text_stream(..., tokenizer=path)``) instead."""
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel

    ct = stream.info["tokenizer"]
    pad, bos, eos, unk = ct.tokens[:4]
    return transformers.PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel(ct.vocab, unk_token=unk)),
                                                pad_token=pad, bos_token=bos, eos_token=eos, unk_token=unk)


def save_tiny_llama(folder: str, tokenizer, max_length: int, seed: int = 0) -> None:
    """A 2-layer Llama with the tokenizer's vocabulary, saved as a Hugging Face model folder."""
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4, max_position_embeddings=max(64, 2 * max_length),
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True)
    transformers.set_seed(seed)
    AutoModelForCausalLM.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def print_matrix(result) -> None:
    """The accuracy matrix (row i: after learning task i; column j: exact match on task j) and summary."""
    names = result.task_names
    print("accuracy matrix (rows: after task; columns: " + " ".join(names) + ")")
    for name, row in zip(names, result.accuracy):
        print(f"after {name:>6s}: " + " ".join(f"{a:.3f}" for a in row))
    print(f"average accuracy: {average_accuracy(result.accuracy):.3f}")
    fgt = forgetting(result.accuracy)
    print(f"forgetting: {fgt:.3f}" if fgt is not None else "forgetting: n/a")


def setup(description: str):
    """Command-line options, the three-task stream, and the model and tokenizer loaded from their folder."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--steps", type=int, default=150, help="optimiser steps per task")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--out", default=None, help="the Trainer's output_dir (default: a temporary folder)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()

    stream = BENCHMARKS.get("arithmetic-skills")(seed=a.seed, skills=["add", "sub", "mul"], max_digits=1,
                                                train_size=400, test_size=60, general_size=0)
    with tempfile.TemporaryDirectory(prefix="tiny-llama-") as folder:
        save_tiny_llama(folder, hf_tokenizer(stream), stream.info["max_length"], a.seed)
        model = AutoModelForCausalLM.from_pretrained(folder)   # your model folder or Hub name
        tokenizer = AutoTokenizer.from_pretrained(folder)
    return a, stream, model, tokenizer


def main() -> None:
    a, stream, model, tokenizer = setup(__doc__.splitlines()[0])
    out = a.out or tempfile.mkdtemp(prefix="trainer-continual-")
    trainer = Trainer(
        model=model, processing_class=tokenizer,
        args=TrainingArguments(output_dir=out, per_device_train_batch_size=a.batch, learning_rate=a.lr,
                               max_steps=a.steps, lr_scheduler_type="constant", warmup_steps=0, seed=a.seed,
                               logging_strategy="no", save_strategy="no", report_to=[], disable_tqdm=True))
    learner = ContinualTrainer(
        trainer, stream,
        review=UniformReplay(ratio=0.3),                 # 30% of each batch replayed from memory
        memory=Reservoir(capacity=120),                  # 40 rows kept per task on average
        consolidators=[EWC(lambda_=100.0, samples=64)],  # penalise moving weights important to old tasks
    )
    result = learner.fit()
    print_matrix(result)


if __name__ == "__main__":
    main()
