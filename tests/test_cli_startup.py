"""The CLI starts without the heavy imports its command does not need (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SRC = str(Path(__file__).resolve().parents[1] / "src")
HEAVY = ("torch", "pydantic", "yaml", "rich", "lifelong.config", "lifelong.experiment", "transformers", "datasets",
         "matplotlib", "sklearn", "scipy", "torch._dynamo")


def loaded_after(*argv: str) -> list[str]:
    """The heavy modules loaded once ``lifelong ARGV`` has run (in a fresh interpreter)."""
    code = ("import json, sys\nfrom lifelong.cli import main\nsys.argv = ['lifelong', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [SRC, os.environ.get("PYTHONPATH")]))}
    out = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_nothing_heavy():
    assert loaded_after("--help") == []
    assert loaded_after("run", "--help") == []


def test_list_imports_the_registries_but_not_the_config_machinery():
    loaded = loaded_after("list", "strategies")
    assert "torch" in loaded and "rich" in loaded  # the registries' classes need torch; the table is rich's
    for mod in ("pydantic", "yaml", "lifelong.config", "lifelong.experiment", "transformers", "datasets",
                "matplotlib", "sklearn", "scipy", "torch._dynamo"):
        assert mod not in loaded, mod
