"""`train_stream` under `torchrun --nproc_per_node 2` (gloo, CPU): the same accuracy matrix and final
weights as one process with the same global batch, and its checkpoints resume in one process."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("transformers")

SCRIPT = textwrap.dedent('''
    import io, json, os, sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, sys.argv[2])
    from job import job
    from lifelong.engine import train_stream
    import torch.distributed as dist

    out = sys.argv[1]
    stream, model, recipe, cfg = job()
    saved = []
    result = train_stream(stream, model, recipe, cfg, checkpointer=lambda st: saved.append(st))
    if dist.get_rank() == 0:
        for st in saved:
            torch.save(st, os.path.join(out, f"ckpt-{st['phase']}-{st['step']}.pt"))
        torch.save(model.state_dict(), os.path.join(out, "final.pt"))
        json.dump({"accuracy": result.accuracy, "world": dist.get_world_size(),
                   "losses": [x["loss"] for x in result.losses]}, open(os.path.join(out, "result.json"), "w"))
    dist.barrier()
    dist.destroy_process_group()
''')

JOB = textwrap.dedent('''
    from lifelong.curriculum.registry import SCHEDULES
    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.engine import Recipe, TrainConfig
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.memory import BUFFERS

    def job():
        s = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=48, test_size=16, max_digits=1, skills=["add", "sub"])
        model = tiny_causal_lm(s, hidden=16, heads=2, layers=1, seed=0)
        recipe = Recipe(name="er", memory=BUFFERS.get("reservoir")(capacity=24), review=SCHEDULES.get("replay")(0.5))
        cfg = TrainConfig(steps=6, batch_size=8, optimizer="adamw", lr=5e-3, device="cpu", seed=0, log_every=1,
                          checkpoint_every=2, lr_scheduler="cosine", warmup_steps=1)
        return s, model, recipe, cfg
''')


@pytest.mark.slow
def test_two_processes_match_one_and_resume_in_one(tmp_path):
    (tmp_path / "job.py").write_text(JOB)
    script = tmp_path / "ddp.py"
    script.write_text(SCRIPT)
    torchrun = Path(sys.executable).with_name("torchrun")
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(script), str(tmp_path),
                           str(tmp_path)], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads((tmp_path / "result.json").read_text())
    assert two["world"] == 2

    sys.path.insert(0, str(tmp_path))
    try:
        from job import job
    finally:
        sys.path.remove(str(tmp_path))
    from lifelong.engine import train_stream

    stream, model, recipe, cfg = job()
    one = train_stream(stream, model, recipe, cfg)
    flat = lambda m: [a for row in m for a in row]  # noqa: E731
    assert flat(one.accuracy) == pytest.approx(flat(two["accuracy"]), abs=1e-4)
    assert [x["loss"] for x in one.losses] == pytest.approx(two["losses"], rel=1e-4)
    final = torch.load(tmp_path / "final.pt", weights_only=True)
    for k, v in model.state_dict().items():
        assert torch.allclose(v, final[k], atol=1e-4), k

    # a mid-task checkpoint of the two-process run resumes in one process to the same numbers
    state = torch.load(tmp_path / "ckpt-1-2.pt", weights_only=True)
    stream, model, recipe, cfg = job()
    resumed = train_stream(stream, model, recipe, cfg, resume=state)
    assert flat(resumed.accuracy) == pytest.approx(flat(one.accuracy), abs=1e-4) and resumed.complete
