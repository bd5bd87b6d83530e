"""The continual instruction-tuning example (examples/llm/) validates and runs on a reduced budget."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("pyarrow")

from lifelong.config import apply_overrides, read_yaml, validate  # noqa: E402
from lifelong.experiment import run_experiment  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "llm" / "instruction-tuning.yaml"


def test_instruction_data_is_what_the_generator_writes(tmp_path):
    import subprocess
    import sys

    subprocess.run([sys.executable, str(ROOT / "examples" / "make_instruction_tasks.py"), "--out", str(tmp_path)],
                   check=True, capture_output=True)
    for name in ("reverse", "sort", "vowels"):
        shipped = (ROOT / "examples" / "data" / "instruction" / f"{name}.jsonl").read_text()
        assert (tmp_path / f"{name}.jsonl").read_text() == shipped
        rec = json.loads(shipped.splitlines()[0])
        assert rec["task"] == name and rec["messages"][-1]["role"] == "assistant"


def test_instruction_tuning_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # the config's data paths are relative to the repository root
    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path / "cache"))
    data = apply_overrides(read_yaml(CONFIG), ["train.steps=12", "train.log_every=2", "evaluation.eval_every=0",
                                               "device=cpu"])
    (_, cfg), = validate(data, source=CONFIG.name).expand()
    result, metrics = run_experiment(cfg, tmp_path / "run", progress=False)
    assert result.complete and result.task_names == ["reverse", "sort", "vowels"]
    assert len(result.accuracy) == 3 and all(0.0 <= a <= 1.0 for row in result.accuracy for a in row)
    first, last = result.losses[0]["loss"], result.losses[-1]["loss"]
    assert last < first  # the adapters learn (12 steps teach no exact answers yet)
    assert (tmp_path / "run" / "metrics.json").exists()
