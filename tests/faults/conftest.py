"""The fault suite's shared run: one uninterrupted reference run per session."""

from __future__ import annotations

import pytest
from faultkit import CONFIG, metrics, run_cli, write_config


@pytest.fixture(scope="session")
def reference(tmp_path_factory) -> dict:
    """The uninterrupted run of CONFIG, once per session: metrics.json and curves/losses CSVs."""
    folder = tmp_path_factory.mktemp("reference")
    cfg = write_config(folder, CONFIG)
    done = run_cli("run", str(cfg), "--out", str(folder / "run"), "--quiet")
    assert done.returncode == 0, done.stderr
    run = folder / "run"
    return {"metrics": metrics(run), "losses": (run / "losses.csv").read_text(), "path": run}
