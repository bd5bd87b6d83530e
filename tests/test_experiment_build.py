"""Bad model parameters: one clear message, and no half-made run folder left behind."""

from __future__ import annotations

import pytest

from lifelong.errors import ConfigError
from lifelong.experiment import run_experiment


@pytest.mark.parametrize("model,message", [
    ({"name": "mlp", "params": {"hidden": ["a"]}}, "model 'mlp': hidden must be a list of positive integers"),
    ({"name": "cnn", "params": {"channels": [0]}}, "model 'cnn': channels must be a list of positive integers"),
    ({"name": "mlp", "params": {"dropout": 1.5}}, r"model 'mlp': dropout must be in \[0, 1\)"),
])
def test_bad_model_parameters_fail_before_the_run_folder_exists(tmp_path, model, message):
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=message):
        run_experiment({"model": model, "train": {"steps": 1}}, out, progress=False)
    assert not out.exists()


def test_a_single_integer_is_one_hidden_layer(tmp_path):
    _, metrics = run_experiment({"model": {"name": "mlp", "params": {"hidden": 12}},
                                 "benchmark": {"name": "split-digits", "params": {"n_tasks": 2}},
                                 "train": {"steps": 2}}, tmp_path / "run", progress=False)
    assert metrics["complete"] is True
