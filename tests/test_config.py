"""The YAML config schema: validation messages, YAML loading, overrides, grids, resolved configs."""

from __future__ import annotations

import pytest
import yaml

from lifelong.config import (ExperimentConfig, apply_overrides, dump_yaml, load_config, read_yaml,
                             registry, validate)
from lifelong.engine.config import TrainConfig
from lifelong.errors import ConfigError


def error_of(data) -> str:
    with pytest.raises(ConfigError) as info:
        validate(data)
    return str(info.value)


def test_defaults_fill_every_section():
    cfg = validate({})
    assert cfg.benchmark.name == "split-digits" and cfg.model.name == "mlp"
    assert [s.name for s in cfg.strategy] == ["naive"]
    tc = cfg.train_config()
    assert isinstance(tc, TrainConfig) and tc.seed == 0 and tc.device == "auto"
    assert not cfg.is_grid


def test_train_section_mirrors_trainconfig():
    import dataclasses

    train_fields = set(validate({}).train.model_dump())
    engine_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    # seed, device and the evaluation cadence live in their own sections
    assert train_fields == engine_fields - {"seed", "device", "eval_every", "eval_batch_size"}
    tc = validate({"train": {"epochs": 4, "lr": 0.2, "optimizer": "adam"}, "evaluation": {"eval_every": 7},
                   "seed": 3, "device": "cpu"}).train_config()
    assert (tc.epochs, tc.lr, tc.optimizer, tc.eval_every, tc.seed, tc.device) == (4, 0.2, "adam", 7, 3, "cpu")


def test_unknown_key_names_the_path_and_lists_allowed_fields():
    msg = error_of({"train": {"epoch": 3}})
    assert "train.epoch" in msg and "Did you mean 'epochs'" in msg
    assert "epochs" in msg and "batch_size" in msg and "lr" in msg  # the allowed fields are listed
    msg = error_of({"benchmarks": {"name": "split-digits"}})
    assert "benchmarks" in msg and "Did you mean 'benchmark'" in msg


def test_unknown_names_are_checked_against_registries():
    msg = error_of({"benchmark": {"name": "split-digts"}})
    assert "benchmark.name" in msg and "Did you mean 'split-digits'" in msg
    assert "permuted-mnist1d" in msg  # the allowed values are listed
    msg = error_of({"model": {"name": "resnet999"}})
    assert "model.name" in msg and "mlp" in msg and "cnn" in msg
    msg = error_of({"curriculum": {"name": "unifrom"}})
    assert "curriculum.name" in msg and "uniform" in msg
    msg = error_of({"memory": {"policy": "reservior", "size": 10}})
    assert "memory.policy" in msg and "reservoir" in msg


def test_unknown_parameters_name_the_field_path():
    msg = error_of({"model": {"name": "mlp", "params": {"hiden": [3]}}})
    assert "model.params.hiden" in msg and "Did you mean 'hidden'" in msg and "dropout" in msg
    msg = error_of({"benchmark": {"name": "split-digits", "params": {"ntasks": 3}}})
    assert "benchmark.params.ntasks" in msg and "n_tasks" in msg


def test_strategy_params_are_checked():
    msg = error_of({"strategy": {"name": "ewc", "params": {"lamda": 10}}})
    assert "strategy.params.lamda" in msg and "Did you mean 'lambda" in msg
    msg = error_of({"strategy": ["naive", {"name": "er", "params": {"memory": 10}}]})
    assert "strategy[1].params.memory" in msg and "memory_size" in msg
    msg = error_of({"strategy": "ewcc"})
    assert "strategy.name" in msg and "Did you mean 'ewc'" in msg and "der++" in msg
    # values are checked by building the strategy once
    msg = error_of({"strategy": {"name": "er", "params": {"memory_size": -5}}})
    assert "strategy.params" in msg and "memory_size" in msg
    # composition: '+' joins strategies (der++ stays whole), params per part
    cfg = validate({"strategy": {"name": "ewc+der++", "params": {"ewc": {"lambda": 5.0}}}})
    assert cfg.strategy[0].parts == ["ewc", "der++"]
    assert cfg.strategy[0].params_for("ewc") == {"lambda": 5.0} and cfg.strategy[0].params_for("der++") == {}
    msg = error_of({"strategy": {"name": "ewc+er", "params": {"lamda": 1}}})
    assert "strategy.params.lamda" in msg and "per part" in msg
    msg = error_of({"strategy": {"name": "ewc+er", "params": {"er": {"ratoi": 0.3}}}})
    assert "strategy.params.er.ratoi" in msg and "ratio" in msg


def test_wrong_types_and_ranges():
    msg = error_of({"train": {"lr": "fast"}})
    assert "train.lr" in msg and "'fast'" in msg
    msg = error_of({"train": {"lr": -1.0}})
    assert "train.lr must be > 0" in msg
    msg = error_of({"train": {"optimizer": "rmsprop"}})
    assert "train.optimizer" in msg and "sgd" in msg and "adam" in msg
    msg = error_of({"evaluation": {"eval_every": -3}})
    assert "evaluation.eval_every" in msg
    msg = error_of({"device": "tpu"})
    assert "device" in msg and "cuda" in msg
    msg = error_of({"curriculum": {"name": "uniform", "pool": "everything"}})
    assert "pool" in msg and "cumulative" in msg


def test_several_problems_come_in_one_message():
    msg = error_of({"train": {"epoch": 3}, "model": {"name": "mpl"}})
    assert "train.epoch" in msg and "model.name" in msg


def test_seed_and_seeds():
    assert validate({"seeds": [1, 2]}).seed_list == [1, 2]
    assert validate({"seeds": 5}).seed_list == [5]
    assert "seeds" in error_of({"seed": 3, "seeds": [1, 2]})
    assert "seeds" in error_of({"seeds": []})


def test_grid_expansion_names_and_single_runs():
    grid = validate({"strategy": ["naive", {"name": "naive", "label": "again"}], "seeds": [0, 1],
                     "curriculum": ["uniform", {"name": "uniform", "params": {}, "label": "u2"}]})
    assert grid.is_grid
    cells = grid.expand()
    names = [n for n, _ in cells]
    assert len(cells) == 2 * 2 * 2 and len(set(names)) == 8
    assert names[0] == "naive-uniform-seed0" and "again-u2-seed1" in names
    for _, c in cells:
        assert not c.is_grid and len(c.strategy) == 1 and len(c.curriculum) == 1
    with pytest.raises(ConfigError, match="lifelong compare"):
        grid.single()
    # the same name twice without labels gets its parameters appended
    g2 = validate({"model": {"name": "mlp", "params": {}}, "strategy": [
        {"name": "naive"}, {"name": "naive"}]})
    assert len({n for n, _ in g2.expand()}) == 2


def test_resolved_config_round_trips(tmp_path):
    cfg = validate({"benchmark": {"name": "split-digits", "params": {"n_tasks": 5}}, "train": {"lr": 0.1},
                    "strategy": "naive", "seed": 4, "curriculum": "uniform", "review": "replay",
                    "memory": {"size": 50, "policy": _a_buffer()}})
    d = cfg.resolved()
    assert d["strategy"]["name"] == "naive" and d["seed"] == 4 and "seeds" not in d
    assert d["train"]["epochs"] == 1 and d["train"]["lr"] == 0.1  # defaults filled in
    assert d["review"] == {"name": "replay", "params": {}}
    path = tmp_path / "config.yaml"
    path.write_text(dump_yaml(cfg))
    again = load_config(path)
    assert again.resolved() == d


def _a_buffer() -> str:
    names = registry("buffer").names()
    if not names:
        pytest.skip("no memory buffer is registered yet")
    return "reservoir" if "reservoir" in names else names[0]


def test_yaml_errors_name_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        read_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  lr: 0.1\n  epochs: [1, 2\nseed: 3\n")
    with pytest.raises(ConfigError) as info:
        read_yaml(bad)
    assert "bad.yaml" in str(info.value) and "line 4" in str(info.value)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        read_yaml(listy)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert load_config(empty).benchmark.name == "split-digits"


def test_overrides_parse_values_as_yaml():
    data = {"strategy": "naive", "train": {"lr": 0.1}}
    out = apply_overrides(data, ["train.lr=0.5", "train.epochs=2", "benchmark.params.n_tasks=3", "seeds=[0, 1]",
                                 "strategy.label=plain", "device=cpu"])
    assert data["train"]["lr"] == 0.1  # input untouched
    assert out["train"] == {"lr": 0.5, "epochs": 2}
    assert out["benchmark"] == {"params": {"n_tasks": 3}}
    assert out["seeds"] == [0, 1] and out["device"] == "cpu"
    assert out["strategy"] == {"name": "naive", "label": "plain"}
    cfg = validate(out)
    assert cfg.train.lr == 0.5 and cfg.seed_list == [0, 1]
    with pytest.raises(ConfigError, match="section.field=value"):
        apply_overrides({}, ["train.lr"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"seed": 3}, ["seed.x=1"])


def test_top_level_must_be_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        validate([1, 2])  # type: ignore[arg-type]


def test_experiment_config_is_strict_on_assignment():
    cfg = ExperimentConfig()
    with pytest.raises(Exception):
        cfg.train.lr = "x"  # validate_assignment


def test_yaml_dump_is_plain_yaml():
    text = dump_yaml(validate({"seeds": [7]}))
    d = yaml.safe_load(text)
    assert d["seed"] == 7 and d["benchmark"]["name"] == "split-digits"
