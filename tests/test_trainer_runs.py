"""ContinualTrainer as a run: the run folder `lifelong run` writes (readable by `lifelong report`),
`save_pretrained` folders per task, Trainer checkpoints in one folder per task, and a SIGKILL in the
middle of a task resumed with `fit(resume_from_checkpoint=True)` to the uninterrupted accuracy matrix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
pytest.importorskip("transformers")

SCRIPT = textwrap.dedent('''
    import json, os, sys
    os.environ["HF_HUB_OFFLINE"] = "1"
    import torch
    torch.set_num_threads(1)
    import transformers
    from lifelong.consolidation.registry import CONSOLIDATORS
    from lifelong.curriculum.registry import SCHEDULES
    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.hf.trainer import ContinualTrainer
    from lifelong.memory import BUFFERS

    run_dir, mode = sys.argv[1], sys.argv[2]
    s = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=64, test_size=24, max_digits=1,
                                            skills=["add", "sub", "mul"])
    args = transformers.TrainingArguments(
        output_dir=run_dir + "-hf", per_device_train_batch_size=16, learning_rate=1e-2, max_steps=12, report_to=[],
        use_cpu=True, logging_strategy="steps", logging_steps=4, save_strategy="steps", save_steps=6,
        disable_tqdm=True, lr_scheduler_type="constant", seed=0)
    trainer = transformers.Trainer(model=tiny_causal_lm(s, hidden=32, heads=2, layers=1, seed=0), args=args)
    cl = ContinualTrainer(trainer, s, consolidators=[CONSOLIDATORS.get("ewc")(lambda_=50.0, samples=16)],
                          memory=BUFFERS.get("reservoir")(capacity=32), review=SCHEDULES.get("replay")(0.5),
                          run_dir=run_dir, save_models=True)

    class Kill(transformers.TrainerCallback):
        def on_step_end(self, a, state, control, **kw):
            if mode == "kill" and cl.phase is not None and cl.phase.index == 1 and state.global_step == 7:
                os.kill(os.getpid(), 9)

    trainer.add_callback(Kill())
    result = cl.fit(resume_from_checkpoint=(mode == "resume") or None)
    print("RESULT " + json.dumps({"accuracy": result.accuracy, "log": [r["run_step"] for r in cl.log_history
                                                                       if "loss" in r]}))
''')


def _run(script, run_dir, mode):
    proc = subprocess.run([sys.executable, str(script), str(run_dir), mode], capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, OMP_NUM_THREADS="1"))
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    return proc, json.loads(line[7:]) if line else None


@pytest.mark.slow
def test_trainer_run_folder_models_and_kill_resume(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(SCRIPT)
    proc, full = _run(script, tmp_path / "full", "full")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert any(a > 0 for row in full["accuracy"] for a in row)  # it learned something worth comparing
    assert full["log"] == sorted(full["log"]) and full["log"][-1] > 12  # one step axis over the tasks

    proc, _ = _run(script, tmp_path / "killed", "kill")
    assert proc.returncode == -9
    proc, resumed = _run(script, tmp_path / "killed", "resume")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert resumed["accuracy"] == full["accuracy"]

    # the run folder is lifelong's: report and runs read it
    from lifelong.runs.rundir import load_run

    config, result, summary = load_run(tmp_path / "full")
    assert result.accuracy == full["accuracy"] and result.complete
    assert config["driver"] == "ContinualTrainer(Trainer)" and config["benchmark"]["name"] == "arithmetic-skills"
    assert "average_accuracy" in summary and "forgetting" in summary
    from lifelong.runs.report import write_report

    html = write_report([tmp_path / "full"], tmp_path / "report.html")
    assert "accuracy" in (tmp_path / "report.html").read_text().lower() and html
    # save_pretrained folders per task (safetensors), Trainer checkpoints in one folder per task
    models = sorted(p.name for p in (tmp_path / "full" / "models").iterdir())
    assert models == ["task-0-add", "task-1-sub", "task-2-mul"]
    assert (tmp_path / "full" / "models" / "task-2-mul" / "model.safetensors").exists()
    ckpts = {str(p.relative_to(tmp_path)) for p in (tmp_path).glob("full-hf/task-*/checkpoint-*")}
    assert ckpts == {f"full-hf/task-{i}-{n}/checkpoint-{s}" for i, n in enumerate(["add", "sub", "mul"])
                     for s in (6, 12)}
