"""Measures beyond exact match: pass@k against its closed form, token-level accuracy and loss,
sampled pass@k on a tiny LM, and the spurious-forgetting (re-alignment) probe."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch

from lifelong.assessment.generation import mean_pass_at_k, pass_at_k
from lifelong.assessment.realign import RealignmentProbe, realignment_probe
from lifelong.data import Examples, Stream, Task
from lifelong.engine import ClassificationObjective, Recipe, TrainConfig, seed_everything, train_stream
from lifelong.errors import ConfigError, DataError
from lifelong.models import build_model


def closed_form(n: int, c: int, k: int) -> float:
    return float(1 - Fraction(math.comb(n - c, k), math.comb(n, k)))


def test_pass_at_k_equals_the_closed_form_estimator():
    for n in range(1, 13):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_k_is_stable_for_large_n_and_matches_simple_cases():
    assert pass_at_k(2000, 3, 50) == pytest.approx(closed_form(2000, 3, 50), rel=1e-10)
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)    # pass@1 = c / n
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 6, 5) == 1.0
    assert mean_pass_at_k([(4, 0), (4, 4)], 2) == 0.5
    with pytest.raises(DataError):
        pass_at_k(5, 6, 1)
    with pytest.raises(DataError):
        pass_at_k(5, 2, 0)


# ----------------------------------------------------------------------------- language-model measures
@pytest.fixture(scope="module")
def lm_case():
    """A tiny untrained LM and a test set whose completions are its own greedy tokens (rows 0, 2, 4...)
    or those with the last completion token changed (rows 1, 3, 5...)."""
    pytest.importorskip("transformers")
    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.hf.models import tiny_causal_lm

    stream = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=16, test_size=8, max_digits=1, skills=["add"],
                                                 general_size=0)
    model = tiny_causal_lm(stream, hidden=32, heads=2, layers=1, seed=0)
    model.eval()
    test = stream[0].test
    ids, labels = test["input_ids"].clone(), test["labels"].clone()
    vocab = model.get_input_embeddings().weight.shape[0]
    altered = 0
    with torch.no_grad():
        for i in range(test.size):
            p = int(test["prompt_len"][i])
            positions = (labels[i] != -100).nonzero().flatten().tolist()
            for j in positions:  # greedy continuation under the model, token by token
                ids[i, j] = model(input_ids=ids[i:i + 1, :j]).logits[0, -1].argmax()
            if i % 2:
                last = positions[-1]
                ids[i, last] = (ids[i, last] + 1) % vocab
                altered += 1
            labels[i, p:] = torch.where(labels[i, p:] != -100, ids[i, p:], labels[i, p:])
    task = Task("greedy", stream[0].train, test.with_fields(input_ids=ids, labels=labels), ())
    tokens = int((labels != -100).sum())
    return model, task, altered, tokens


def test_token_measures_count_tokens_that_exact_match_hides(lm_case):
    from lifelong.hf.measures import token_measures
    from lifelong.hf.objective import CausalLMObjective

    model, task, altered, tokens = lm_case
    m = token_measures(model, task)
    assert m["exact_match"] == pytest.approx(0.5)
    assert m["token_accuracy"] == pytest.approx(1 - altered / tokens)  # one wrong token per altered row
    assert m["token_loss"] == pytest.approx(CausalLMObjective().token_loss(model, task))
    assert m["exact_match"] == CausalLMObjective().evaluate(model, task, torch.device("cpu"))


def test_sampled_pass_at_k_at_low_temperature_is_greedy_exact_match(lm_case):
    from lifelong.hf.measures import pass_at_k_task, sample_correct_counts

    model, task, _, _ = lm_case
    state = torch.get_rng_state()
    counts = sample_correct_counts(model, task, n=4, temperature=1e-4)
    assert counts == [4, 0] * 4
    assert torch.equal(torch.get_rng_state(), state)  # the global random state is untouched
    assert pass_at_k_task(model, task, n=4, ks=(1, 4), temperature=1e-4) == {"pass@1": 0.5, "pass@4": 0.5}
    hot = sample_correct_counts(model, task, n=6, temperature=20.0, seed=1)
    assert all(0 <= c <= 6 for c in hot) and sum(hot) < 6 * 4  # near-uniform sampling misses the greedy answers
    assert sample_correct_counts(model, task, n=6, temperature=20.0, seed=1) == hot  # seeded
    with pytest.raises(DataError):
        pass_at_k_task(model, task, n=2, ks=(3,))


def test_token_measures_callback_sits_next_to_the_accuracy_matrix():
    pytest.importorskip("transformers")
    from lifelong.data.benchmarks import BENCHMARKS
    from lifelong.hf.measures import TokenMeasures
    from lifelong.hf.models import tiny_causal_lm

    stream = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=32, test_size=8, max_digits=1,
                                                 skills=["add", "sub"], general_size=0)
    model = tiny_causal_lm(stream, hidden=32, heads=2, layers=1, seed=0)
    probe = TokenMeasures()
    result = train_stream(stream, model, Recipe(), TrainConfig(steps=5, batch_size=8, optimizer="adamw", lr=1e-2,
                                                                device="cpu"), callbacks=[probe])
    assert [(r["after_task"], r["task"]) for r in probe.records] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert [r["exact_match"] for r in probe.records] == [a for row in result.accuracy for a in row]
    assert all(0 <= r["token_accuracy"] <= 1 and r["token_loss"] > 0 for r in probe.records)


# ----------------------------------------------------------------------------- re-alignment probe
def blobs(dim: int = 8) -> Stream:
    g = torch.Generator().manual_seed(0)
    centres = torch.randn(4, dim, generator=g) * 3
    tasks = []
    for t in range(2):
        cls = (2 * t, 2 * t + 1)

        def make(m):
            y = torch.tensor(cls).repeat_interleave(m)
            return Examples(x=centres[y] + torch.randn(len(y), dim, generator=g), y=y)

        tasks.append(Task(f"t{t}", make(40), make(40), cls))
    return Stream("blobs", tasks, "task", 4, (dim,))


def trained():
    stream = blobs()
    seed_everything(0)
    model = build_model("mlp", stream, hidden=[32])
    train_stream(stream, model, Recipe(), TrainConfig(steps=60, batch_size=16, lr=0.1, device="cpu"))
    objective = ClassificationObjective(stream)
    objective.begin_task(stream, stream[1], [0, 1, 2, 3])
    return stream, model, objective


def test_probe_works_on_a_copy_and_recovers_a_disturbed_alignment():
    stream, model, objective = trained()
    with torch.no_grad():  # disturb only the alignment: task 0's output rows, the backbone keeps its features
        model.head.weight[:2] = model.head.weight[:2].flip(0)
        model.head.bias[:2] = model.head.bias[:2].flip(0)
    snapshot = {n: p.detach().clone() for n, p in model.named_parameters()}
    rng = torch.get_rng_state()
    out = realignment_probe(model, objective, stream[0], examples=8, steps=20, lr=0.05, optimizer="sgd",
                            reference=1.0)
    assert out["before"] < 0.2 and out["after"] > 0.9  # the knowledge was there: 8 examples bring it back
    assert out["recovered"] == pytest.approx(out["after"] - out["before"])
    assert out["recovered_share"] == pytest.approx(out["recovered"] / (1.0 - out["before"]))
    assert all(torch.equal(p, snapshot[n]) for n, p in model.named_parameters())  # the run's model is untouched
    assert torch.equal(torch.get_rng_state(), rng)
    none = realignment_probe(model, objective, stream[0], steps=0)
    assert none["after"] == none["before"] and none["recovered_share"] is None


def test_probe_callback_records_every_earlier_task_at_each_task_end():
    stream = blobs()
    seed_everything(0)
    model = build_model("mlp", stream, hidden=[16])
    probe = RealignmentProbe(examples=4, steps=2)
    result = train_stream(stream, model, Recipe(), TrainConfig(steps=10, batch_size=16, device="cpu"),
                          callbacks=[probe])
    assert [(r["after_task"], r["task"]) for r in probe.records] == [(1, 0)]
    assert probe.records[0]["reference"] == result.accuracy[0][0]
    assert probe.records[0]["before"] == result.accuracy[1][0]


def test_probe_errors():
    stream, model, objective = trained()
    with pytest.raises(ConfigError, match="params"):
        realignment_probe(model, objective, stream[0], params="head")
    with pytest.raises(ConfigError, match="optimizer"):
        realignment_probe(model, objective, stream[0], optimizer="lbfgs")
