"""`lifelong run` unchanged under `torchrun --nproc_per_node 2` (gloo, CPU): rank 0 writes the run
folder, the numbers equal one process with the same global batch, and the folder resumes in one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("transformers")

CONFIG = {
    "benchmark": {"name": "arithmetic-skills", "params": {"train_size": 48, "test_size": 16, "max_digits": 1,
                                                          "skills": ["add", "sub"]}},
    "model": {"name": "tiny-causal-lm", "params": {"hidden": 16, "heads": 2, "layers": 1}},
    "train": {"steps": 6, "batch_size": 8, "optimizer": "adamw", "lr": 0.005, "checkpoint_every": 3,
              "lr_scheduler": "cosine", "warmup_steps": 1, "log_every": 1},
    "strategy": {"name": "er", "params": {"memory_size": 24, "ratio": 0.5}},
    "device": "cpu",
}


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")


@pytest.mark.slow
def test_lifelong_run_under_torchrun_matches_one_process_and_resumes_in_one(tmp_path):
    cfg = tmp_path / "job.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG))
    torchrun = Path(sys.executable).with_name("torchrun")
    two, one = tmp_path / "two", tmp_path / "one"
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "lifelong.cli", "run", str(cfg),
                           "--out", str(two), "--quiet"], capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("results in") == 1  # rank 0 reports, rank 1 stays quiet
    proc = subprocess.run([sys.executable, "-m", "lifelong.cli", "run", str(cfg), "--out", str(one), "--quiet"],
                          capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    m2, m1 = (json.loads((d / "metrics.json").read_text()) for d in (two, one))
    flat = lambda m: [a for row in m for a in row]  # noqa: E731
    assert flat(m2["accuracy_matrix"]) == pytest.approx(flat(m1["accuracy_matrix"]), abs=1e-4)
    w2 = torch.load(two / "checkpoints" / "last.pt", weights_only=True)["model"]
    w1 = torch.load(one / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert all(torch.allclose(w2[k], w1[k], atol=1e-4) for k in w1)
    # the two-process run's folder continues in one process from its mid-task checkpoint
    steps = sorted(int(p.stem.split("-")[1]) for p in (two / "checkpoints").glob("step-*.pt"))
    mid = next(s for s in steps if s % 6)  # a mid-task checkpoint (run step 3 or 9)
    proc = subprocess.run([sys.executable, "-m", "lifelong.cli", "run", "--resume", str(two), "--from-checkpoint",
                           str(mid), "--quiet"], capture_output=True, text=True, timeout=300, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    m3 = json.loads((two / "metrics.json").read_text())
    assert flat(m3["accuracy_matrix"]) == pytest.approx(flat(m1["accuracy_matrix"]), abs=1e-4) and m3["complete"]
