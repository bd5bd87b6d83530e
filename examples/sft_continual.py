"""Continual fine-tuning with TRL's ``SFTTrainer``, built by ``ContinualTrainer.build``.

The same three arithmetic skills and small Llama as ``trainer_continual.py``
(whose helpers this script reuses), now through TRL: ``ContinualTrainer.build``
constructs the ``SFTTrainer`` on the stream itself (its first task, in the
processed form SFTTrainer accepts: no placeholder dataset, no
``remove_unused_columns`` trick) and wraps it. LwF distils the previous
model's predictions on the new task's rows; a spaced review schedule replays
memory rows, quizzing them every few steps and reviewing the tasks that are
slipping. Offline, on CPU, in seconds with ``--steps 20``.

    python examples/sft_continual.py [--steps 150] [--batch 16] [--out DIR]
"""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from trl import SFTConfig, SFTTrainer  # noqa: E402

from lifelong.consolidation import LwF  # noqa: E402
from lifelong.curriculum.review.spaced import SpacedReview  # noqa: E402
from lifelong.hf.trainer import ContinualTrainer  # noqa: E402
from lifelong.memory import Reservoir  # noqa: E402

from trainer_continual import print_matrix, setup  # noqa: E402  (this folder: the same stream and model)


def main() -> None:
    a, stream, model, tokenizer = setup(__doc__.splitlines()[0])
    out = a.out or tempfile.mkdtemp(prefix="sft-continual-")
    args = SFTConfig(
        output_dir=out, per_device_train_batch_size=a.batch, learning_rate=a.lr, max_steps=a.steps,
        lr_scheduler_type="constant", warmup_steps=0, seed=a.seed, logging_strategy="no", save_strategy="no",
        report_to=[], disable_tqdm=True,
        # SFTConfig turns bf16 autocast and activation (gradient) checkpointing on by default; both only slow a
        # tiny fp32 model on a CPU down. On a GPU, leave them on for a large model.
        bf16=False, activation_checkpointing=False)
    learner = ContinualTrainer.build(
        SFTTrainer, stream, model=model, args=args, processing_class=tokenizer,
        review=SpacedReview(quiz_every=10, quiz_size=8, base_interval=40),  # review what is slipping
        memory=Reservoir(capacity=120),
        consolidators=[LwF(alpha=1.0, temperature=2.0)],                     # distil the previous model
    )
    result = learner.fit()
    print_matrix(result)


if __name__ == "__main__":
    main()
