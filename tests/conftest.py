"""Suite-wide settings.

Tests run with one torch thread (and tell subprocesses the same through
OMP_NUM_THREADS): float reductions then happen in one order on every machine,
so "same seed, same numbers" assertions and thresholds do not depend on how
many cores the test machine has.
"""

import os
import tempfile

os.environ["OMP_NUM_THREADS"] = "1"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# generated data and tokenised text are cached per test session, not in the user's ~/.cache
os.environ.setdefault("LIFELONG_CACHE", tempfile.mkdtemp(prefix="lifelong-test-cache-"))

import torch  # noqa: E402

torch.set_num_threads(1)
