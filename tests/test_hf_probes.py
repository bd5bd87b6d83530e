"""General ability beyond the tasks: perplexity on held-out general text, before and after each task."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("transformers")

from lifelong.data.benchmarks import BENCHMARKS  # noqa: E402
from lifelong.engine import Recipe, TrainConfig, train_stream  # noqa: E402
from lifelong.errors import DataError  # noqa: E402
from lifelong.hf.models import tiny_causal_lm  # noqa: E402
from lifelong.hf.objective import CausalLMObjective  # noqa: E402
from lifelong.runs.report import build_report  # noqa: E402
from lifelong.runs.compare import RunEntry  # noqa: E402
from lifelong.runs.rundir import RunDir, load_run  # noqa: E402


@pytest.fixture(scope="module")
def stream():
    return BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=64, test_size=32, max_digits=1,
                                               skills=["add", "mul"], general_size=30)


def test_general_problems_are_held_out_and_cover_every_skill(stream):
    prompts, answers = stream.info["general_pairs"]
    assert len(prompts) == len(answers) == 30
    assert {op for p in prompts for op in "+-*" if op in p} == {"+", "-", "*"}  # sub too, never taught
    trained = {t for task in stream.tasks for t in task.info["train_texts"]}
    assert not {p + a for p, a in zip(prompts, answers)} & trained
    ops = {"+": int.__add__, "-": int.__sub__, "*": int.__mul__}
    for p, a in zip(prompts, answers):  # every answer is right
        op = next(o for o in ops if o in p)
        x, y = p.rstrip("=").split(op)
        assert ops[op](int(x), int(y)) == int(a)


def test_loop_records_perplexity_before_and_after_each_task(stream, tmp_path):
    model = tiny_causal_lm(stream, hidden=32, heads=2, layers=1, seed=0)
    result = train_stream(stream, model, Recipe(), TrainConfig(steps=20, batch_size=16, optimizer="adamw",
                                                               lr=5e-3, device="cpu"))
    ppl = result.probes["general_perplexity"]
    assert len(ppl) == 1 + len(result.accuracy) == 3
    assert all(math.isfinite(p) and p > 1.0 for p in ppl)
    # the last value is the final model's perplexity on exactly those answers
    from lifelong.hf.encoding import encode_pairs

    prompts, answers = stream.info["general_pairs"]
    obj = CausalLMObjective(stream)
    direct = obj.perplexity(model, encode_pairs(obj.tokenizer, prompts, answers))
    assert direct == pytest.approx(ppl[-1], rel=1e-5)
    # kept with the run, and shown by the report
    RunDir(tmp_path / "run").write_result(result)
    _, loaded, summary = load_run(tmp_path / "run")
    assert loaded.probes == result.probes
    assert summary["general_perplexity"] == {"before": ppl[0], "after_task": ppl[1:]}
    html = build_report([RunEntry("naive", loaded, summary=summary)])
    assert "general_perplexity.before" in html and "general_perplexity.after_task.mul" in html


def test_text_benchmark_general_text_file_errors(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "a", "completion": "b", "task": "x"}\n' * 4)
    with pytest.raises(DataError, match="general_text file .* does not exist"):
        BENCHMARKS.get("text")(path=str(data), general_text=str(tmp_path / "none.txt"))
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="is empty"):
        BENCHMARKS.get("text")(path=str(data), general_text=str(empty))
    good = tmp_path / "general.txt"
    good.write_text("first passage\n\nsecond passage\n")
    s = BENCHMARKS.get("text")(path=str(data), general_text=str(good))
    assert s.info["general_texts"] == ["first passage", "second passage"]


def test_classifiers_have_no_probes():
    from lifelong.data import make_benchmark
    from lifelong.models import build_model

    s = make_benchmark("split-digits", seed=0, n_tasks=2)
    r = train_stream(s, build_model("mlp", s, hidden=[16]), Recipe(), TrainConfig(steps=2))
    assert r.probes == {}


def test_general_text_longer_than_the_model_is_cut_to_its_positions(tmp_path):
    """A held-out general line longer than the model's position table is scored on what fits
    (it used to stop the run with an IndexError before training)."""
    data = tmp_path / "d.jsonl"
    data.write_text('{"prompt": "1+1=", "completion": "2", "task": "x"}\n' * 8)
    general = tmp_path / "general.txt"
    general.write_text("a short line\n" + "a very long line " * 20 + "\n")
    s = BENCHMARKS.get("text")(path=str(data), general_text=str(general))
    model = tiny_causal_lm(s, hidden=16, heads=2, layers=1, seed=0, max_positions=32)
    assert max(len(t) for t in s.info["general_texts"]) > 32  # characters, at least one token each
    ppl = CausalLMObjective(s).probes(model, s)["general_perplexity"]
    assert math.isfinite(ppl) and ppl > 1.0
