"""The two Trainer example scripts (docs/trainer.md) run offline as a user would run them, on a few
steps: a plain transformers.Trainer and TRL's SFTTrainer, each wrapped by ContinualTrainer; each
prints a full accuracy matrix (one row per task, one column per task) and its forgetting."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
ROW = re.compile(r"^after\s+(\w+):((?:\s+[01]\.\d{3})+)$")


def _run(script: str, tmp_path: Path, *extra: str) -> str:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])),
               HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / script), "--steps", "3", "--batch", "8",
                           "--out", str(tmp_path / "out"), *extra],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _matrix(stdout: str) -> list[tuple[str, list[float]]]:
    rows = [ROW.match(line.strip()) for line in stdout.splitlines()]
    return [(m.group(1), [float(v) for v in m.group(2).split()]) for m in rows if m]


@pytest.mark.parametrize("script", ["trainer_continual.py", "sft_continual.py"])
def test_example_script_prints_the_accuracy_matrix(script, tmp_path):
    if script.startswith("sft"):
        pytest.importorskip("trl")
    out = _run(script, tmp_path)
    matrix = _matrix(out)
    assert [name for name, _ in matrix] == ["add", "sub", "mul"], out
    assert all(len(row) == 3 and all(0.0 <= a <= 1.0 for a in row) for _, row in matrix), out
    assert re.search(r"^average accuracy: \d\.\d{3}$", out, re.M), out
    assert re.search(r"^forgetting: -?\d\.\d{3}$", out, re.M), out
    assert (tmp_path / "out").is_dir()  # the Trainer's output_dir was the one given
