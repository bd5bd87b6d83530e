"""Difficulty scorers: text metrics against hand values, model scorers on a tiny classifier."""

import types

import pytest
import torch
from torch import nn

from lifelong.curriculum.scorers import (SCORERS, compression_ratio, count_syllables, flesch_reading_ease,
                                         text_length, type_token_ratio)
from lifelong.data.examples import Examples
from lifelong.data.task import Stream, Task
from lifelong.engine.objective import ClassificationObjective
from lifelong.errors import ConfigError, DataError
from lifelong.registry import build


def test_text_metrics_hand_values():
    assert text_length(["a b c", "", "one, two!"]) == [3.0, 0.0, 2.0]
    assert text_length(["abc d"], unit="chars") == [5.0]
    assert type_token_ratio(["the cat the dog", ""]) == [0.75, 0.0]
    assert [count_syllables(w) for w in ["cat", "table", "make", "reading", "the", "whale", "free", "banana"]] == \
        [1, 2, 1, 2, 1, 1, 1, 3]
    # 3 words, 1 sentence, 3 syllables: 206.835 - 1.015 * 3 - 84.6 * 1
    assert flesch_reading_ease(["The cat sat."]) == pytest.approx([119.19])
    # 4 words, 2 sentences, 7 syllables (go 1, home 1, banana 3, table 2): 206.835 - 1.015 * 2 - 84.6 * 1.75
    assert flesch_reading_ease(["Go home. Banana table."]) == pytest.approx([56.755])
    redundant, varied = compression_ratio(["ab" * 100, "the quick brown fox jumps over the lazy dog"])
    assert redundant < 0.2 < varied


def text_task(texts):
    n = len(texts)
    return Task("t", Examples(x=torch.zeros(n, 1), y=torch.zeros(n, dtype=torch.long)),
                Examples(x=torch.zeros(1, 1), y=torch.zeros(1, dtype=torch.long)), (0,), {"train_texts": texts})


def test_text_scorers_higher_is_harder():
    task = text_task(["I see, I see.", "Notwithstanding considerable institutional heterogeneity, committees deliberated."])
    for name in ("length", "diversity", "readability"):
        s = build(SCORERS, name).score(task, None)
        assert s.shape == (2,) and float(s[1]) > float(s[0]), name
    # zlib's header makes very short strings look incompressible; compare texts of equal length
    task = text_task(["ha " * 30, "the quick brown fox jumps over the lazy dog, then naps"[:90]])
    s = build(SCORERS, "compression").score(task, None)
    assert float(s[1]) > float(s[0])
    bad = text_task(["a"])
    bad.info = {}
    with pytest.raises(DataError, match="train_texts"):
        build(SCORERS, "length").score(bad, None)


def test_given_scorer():
    task = Task("t", Examples(x=torch.zeros(3, 1), y=torch.zeros(3, dtype=torch.long),
                              difficulty=torch.tensor([3.0, 1.0, 2.0])),
                Examples(x=torch.zeros(1, 1), y=torch.zeros(1, dtype=torch.long)), (0,))
    assert build(SCORERS, "given").score(task, None).tolist() == [3.0, 1.0, 2.0]
    assert build(SCORERS, "given", {"fn": lambda t: [0, 1, 2]}).score(task, None).tolist() == [0.0, 1.0, 2.0]
    with pytest.raises(DataError, match="3 training examples"):
        build(SCORERS, "given", {"fn": lambda t: [0, 1]}).score(task, None)
    with pytest.raises(DataError, match="no 'hardness' field"):
        build(SCORERS, "given", {"column": "hardness"}).score(task, None)
    with pytest.raises(ConfigError, match="module:function"):
        build(SCORERS, "given", {"fn": "nocolon"})


def make_ctx(seed=0):
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    y = (x[:, 0] > 0).long()
    y[:8] = 1 - y[:8]   # eight mislabelled, hard examples
    task = Task("t", Examples(x=x, y=y), Examples(x=x[:4], y=y[:4]), (0, 1))
    stream = Stream("s", [task], "domain", 2, (4,))
    model = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 2))
    ctx = types.SimpleNamespace(model=model, objective=ClassificationObjective(stream), device=torch.device("cpu"),
                                config=types.SimpleNamespace(batch_size=16, seed=seed))
    return task, ctx


def test_model_scorers():
    task, ctx = make_ctx()
    loss = build(SCORERS, "loss").score(task, ctx)
    conf = build(SCORERS, "confidence", {"refresh_every": 5}).score(task, ctx)
    assert conf.tolist() == pytest.approx((1 - torch.exp(-loss)).tolist(), abs=1e-6)
    assert build(SCORERS, "confidence", {"refresh_every": 5}).refresh_every == 5
    tr = build(SCORERS, "transfer", {"steps": 60, "lr": 0.02})
    a, b = tr.score(task, ctx), tr.score(task, ctx)
    assert a.shape == (64,) and torch.equal(a, b)            # seeded: same scores twice
    assert float(a[:8].mean()) > float(a[8:].mean())         # mislabelled examples score harder
    ens = build(SCORERS, "ensemble", {"members": 3, "steps": 20})
    d = ens.score(task, ctx)
    assert d.shape == (64,) and bool((d >= 0).all()) and bool((d <= 1).all())
    with pytest.raises(ConfigError):
        build(SCORERS, "ensemble", {"members": 1})
    with pytest.raises(ConfigError):
        build(SCORERS, "loss", {"refresh_every": -1})
