"""Out-of-core text: the cached Arrow token store, per-batch padding, row-reference memory, packing, data gaps."""

import json

import pytest
import torch

pytest.importorskip("pyarrow")

from lifelong.data.examples import Examples  # noqa: E402
from lifelong.data.stored import REF_ROW, StoredExamples  # noqa: E402
from lifelong.engine.pool import Pool, task_examples  # noqa: E402
from lifelong.errors import ConfigError, DataError  # noqa: E402
from lifelong.hf import store as store_mod  # noqa: E402
from lifelong.hf.encoding import IGNORE, encode_pairs  # noqa: E402
from lifelong.hf.objective import LM_FIELDS  # noqa: E402
from lifelong.hf.text import text_stream  # noqa: E402
from lifelong.memory.reservoir import Reservoir  # noqa: E402


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    monkeypatch.setenv("LIFELONG_CACHE", str(root))
    return root


def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def _data(tmp_path, n=40):
    rows = [{"prompt": f"{a}+{b}=", "completion": str(a + b), "task": "add" if i % 2 else "sub"}
            for i, (a, b) in enumerate((i * 7 % 97, i * 13 % 89) for i in range(n))]
    return _jsonl(tmp_path / "d.jsonl", rows)


def test_store_is_built_once_and_reused(tmp_path, cache, monkeypatch):
    f = _data(tmp_path)
    s = text_stream(path=str(f), test_fraction=0.25)
    stores = sorted(cache.glob("*.arrow"))
    assert len(stores) == 1 and not list(cache.glob("*.tmp"))  # built via a temp file, renamed into place
    assert isinstance(s[0].train, StoredExamples) and s.task_names == ["sub", "add"]
    mtime = stores[0].stat().st_mtime_ns

    def no_build(*a, **k):
        raise AssertionError("the cached store should have been reused")

    monkeypatch.setattr("lifelong.hf.text.build_store", no_build)
    again = text_stream(path=str(f), test_fraction=0.25)
    assert stores[0].stat().st_mtime_ns == mtime
    assert torch.equal(again[1].train.take(torch.arange(5))["input_ids"], s[1].train.take(torch.arange(5))["input_ids"])
    # new content -> a new key (the content hash), so the old store is not reused
    f.write_text(f.read_text() + json.dumps({"prompt": "1+1=", "completion": "2", "task": "add"}) + "\n")
    monkeypatch.undo()
    monkeypatch.setenv("LIFELONG_CACHE", str(cache))
    text_stream(path=str(f), test_fraction=0.25)
    assert len(list(cache.glob("*.arrow"))) == 2


def test_rows_are_unpadded_and_batches_padded_to_their_longest_row(tmp_path):
    f = _jsonl(tmp_path / "v.jsonl", [{"prompt": "q" * (1 + i % 9), "completion": "a" * (1 + i % 4), "task": "t"}
                                      for i in range(30)])
    s = text_stream(path=str(f), test_fraction=0.2)
    train = s[0].train
    lengths = train.sources[0].lengths
    assert len(set(lengths.tolist())) > 3  # variable-length rows on disk
    idx = torch.tensor([0, 3, 5])
    batch = train.take(idx)
    want = int(lengths[train.rows[idx.numpy()]].max())
    assert batch["input_ids"].shape == (3, want) and batch["attention_mask"].sum(1).max() == want
    # same ids and labels as the in-memory encoder on the same texts
    texts = s[0].info["train_prompts"], s[0].info["train_completions"]
    ref = encode_pairs(s.info["tokenizer"], [texts[0][i] for i in idx.tolist()], [texts[1][i] for i in idx.tolist()])
    for k in ("input_ids", "labels", "attention_mask", "prompt_len"):
        assert torch.equal(batch[k], ref[k]), k
    # a whole column materialises at the stream-wide width (fallback for code that wants one)
    assert train["input_ids"].shape == (train.size, s.info["max_length"])


def test_pool_of_several_stored_tasks_pads_across_parts(tmp_path):
    f = _jsonl(tmp_path / "p.jsonl", [{"prompt": "x" * (1 + 5 * (i % 2)), "completion": "y", "task": f"t{i % 2}"}
                                      for i in range(20)])
    s = text_stream(path=str(f), test_fraction=0.2)
    pool = Pool(list(s.tasks), LM_FIELDS, torch.device("cpu"))
    out = pool.take(torch.tensor([0, pool.size - 1, 1]))
    assert out["input_ids"].shape[0] == 3
    short, long_ = out["attention_mask"][0].sum(), out["attention_mask"][1].sum()
    assert long_ > short and (out["labels"][0, int(short):] == IGNORE).all()
    assert out["task"].tolist() == [0, 1, 0]


def test_replay_memory_stores_row_references_not_tokens(tmp_path):
    s = text_stream(path=str(_data(tmp_path, 60)), test_fraction=0.2)
    mem = Reservoir(capacity=10, seed=0)
    data = task_examples(s[0], LM_FIELDS)
    mem.add(data)
    assert REF_ROW in mem.store and "input_ids" not in mem.store  # references only
    assert all(v.dim() == 1 for v in mem.store.values())
    view = mem.examples
    assert isinstance(view, StoredExamples) and view.size == 10
    got = view.take(torch.arange(10))
    rows = torch.tensor([data.rows.tolist().index(r) for r in mem.store[REF_ROW].tolist()])
    want = data.take(rows)
    assert torch.equal(got["input_ids"], want["input_ids"]) and torch.equal(got["task"], want["task"])
    # references survive a state_dict round trip into a fresh buffer
    other = Reservoir(capacity=10)
    other.load_state_dict(mem.state_dict())
    assert torch.equal(other.examples.take(torch.arange(10))["labels"], got["labels"])


def test_training_loop_runs_on_a_stored_stream(tmp_path):
    pytest.importorskip("transformers")
    from lifelong.engine.config import TrainConfig
    from lifelong.engine.loop import train_stream
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.strategies import Recipe

    s = text_stream(path=str(_data(tmp_path, 40)), test_fraction=0.25)
    model = tiny_causal_lm(s, hidden=32, heads=2, layers=1, seed=0)
    cfg = TrainConfig(steps=3, batch_size=8, lr=1e-3, device="cpu", seed=0, log_every=0)
    result = train_stream(s, model, Recipe(pool="cumulative") if hasattr(Recipe, "pool") else Recipe(), cfg)
    assert result.complete and len(result.accuracy) == 2


def test_plain_text_packs_into_blocks(tmp_path):
    docs = [{"body": "the quick brown fox " * (1 + i % 3), "topic": "a" if i < 6 else "b"} for i in range(10)]
    f = _jsonl(tmp_path / "c.jsonl", docs)
    s = text_stream(path=str(f), text_field="body", task_field="topic", pack=True, block_size=16, test_fraction=0.2)
    tok = s.info["tokenizer"]
    for t in s.tasks:
        for side in (t.train, t.test):
            b = side.take(torch.arange(side.size))
            assert b["input_ids"].shape[1] <= 16
            real = b["attention_mask"].bool()
            assert torch.equal(b["labels"][real], b["input_ids"][real])  # every token learned
    total = sum(int(t.train.take(torch.arange(t.train.size))["attention_mask"].sum())
                + int(t.test.take(torch.arange(t.test.size))["attention_mask"].sum()) for t in s.tasks)
    assert total == sum(len(tok.encode(d["body"])) + 2 for d in docs)  # bos + text + eos, nothing dropped
    with pytest.raises(ConfigError, match="set text_field"):
        text_stream(path=str(f), pack=True)


def test_text_data_gaps_are_named(tmp_path):
    f = _data(tmp_path)
    with pytest.raises(ConfigError, match="tasks is empty"):
        text_stream(path=str(f), tasks=[])
    with pytest.raises(ConfigError, match="max_rows=0 must be a positive"):
        text_stream(path=str(f), max_rows=0)
    empty = _jsonl(tmp_path / "e.jsonl", [{"prompt": "a", "completion": "b", "task": "x"},
                                          {"prompt": "", "completion": " ", "task": "x"}])
    with pytest.raises(DataError, match=r"e.jsonl' record 2 \(task 'x'\): fields 'prompt' and 'completion' are "
                                        "both empty"):
        text_stream(path=str(empty))
    blank = _jsonl(tmp_path / "b.jsonl", [{"body": "x", "topic": "a"}, {"body": "", "topic": "z"}])
    with pytest.raises(DataError, match=r"b.jsonl' record 2 \(task 'z'\): field 'body' is empty"):
        text_stream(path=str(blank), text_field="body", task_field="topic")
    one = _jsonl(tmp_path / "one.jsonl", [{"prompt": "a", "completion": "b", "task": "solo"}])
    with pytest.raises(DataError, match=r"task 'solo' has 1 training and 0 test records \(from text file"):
        text_stream(path=str(one))


def test_parquet_and_csv_sources(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"prompt": f"p{i}", "completion": f"c{i}", "task": "t"} for i in range(12)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "d.parquet")
    s = text_stream(path=str(tmp_path / "d.parquet"), test_fraction=0.25)
    assert s[0].num_train == 9 and s[0].num_test == 3
    assert sorted(s[0].info["train_texts"]) == sorted(f"p{i}c{i}" for i in range(12)
                                                      if f"p{i}c{i}" not in s[0].info["test_texts"])


def test_examples_cat_pads_rows_of_different_widths_and_select():
    a = Examples(input_ids=torch.ones(2, 3, dtype=torch.long), labels=torch.ones(2, 3, dtype=torch.long),
                 attention_mask=torch.ones(2, 3, dtype=torch.long), task=torch.zeros(2, dtype=torch.long))
    b = Examples(input_ids=torch.full((1, 5), 7), labels=torch.full((1, 5), 7), attention_mask=torch.ones(1, 5,
                 dtype=torch.long), task=torch.ones(1, dtype=torch.long))
    out = Examples.cat([a, b])
    assert out["input_ids"].shape == (3, 5) and out["labels"][0].tolist() == [1, 1, 1, IGNORE, IGNORE]
    assert out["attention_mask"][1].tolist() == [1, 1, 1, 0, 0] and out["task"].tolist() == [0, 0, 1]
    assert sorted(out.select("task", "labels")) == ["labels", "task"]
    with pytest.raises(KeyError, match="no field"):
        out.select("x")


def test_stored_views_subset_and_concatenate_without_gathering(tmp_path):
    a = _jsonl(tmp_path / "a.jsonl", [{"prompt": f"a{i}", "completion": "x" * i, "task": "a"} for i in range(1, 9)])
    b = _jsonl(tmp_path / "b.jsonl", [{"prompt": f"b{i}", "completion": "y", "task": "b"} for i in range(8)])
    s = text_stream(path=[str(a), str(b)], test_fraction=0.25)
    both = StoredExamples.cat([s[0].train.with_fields(task=torch.zeros(s[0].num_train, dtype=torch.long)),
                               s[1].train.with_fields(task=torch.ones(s[1].num_train, dtype=torch.long))])
    assert len(both.sources) == 2 and both.size == s[0].num_train + s[1].num_train and "task" in both
    got = both.take(torch.tensor([both.size - 1, 0]))
    assert got["task"].tolist() == [1, 0]
    assert torch.equal(got["input_ids"][1, : int(got["attention_mask"][1].sum())],
                       s[0].train.take(torch.tensor([0]))["input_ids"][0])
    sub = both.subset(torch.tensor([0, 1]))
    assert sub.size == 2 and sub.width == both.width and sub.columns["task"].tolist() == [0, 0]
    assert "input_ids" not in both.select("task") and both.without("labels").take(torch.tensor([0])).fields.keys() \
        == {"input_ids", "attention_mask", "prompt_len", "task"}


def test_hugging_face_dataset_source(tmp_path):
    pytest.importorskip("datasets")
    f = _data(tmp_path, 20)
    s = text_stream(dataset="json", data_files=str(f), test_fraction=0.25)
    local = text_stream(path=str(f), test_fraction=0.25)
    assert s.task_names == local.task_names and [t.num_train for t in s] == [t.num_train for t in local]
    assert sorted(s[0].info["train_texts"]) == sorted(local[0].info["train_texts"])


def test_replay_strategies_run_on_a_stored_stream(tmp_path):
    pytest.importorskip("transformers")
    from lifelong.engine.config import TrainConfig
    from lifelong.engine.loop import train_stream
    from lifelong.hf.models import tiny_causal_lm
    from lifelong.strategies import STRATEGIES

    rows = [{"prompt": "x" * (1 + i % 7) + "=", "completion": str(i), "task": "ab"[i % 2]} for i in range(60)]
    s = text_stream(path=str(_jsonl(tmp_path / "r.jsonl", rows)), test_fraction=0.25)
    for name in ("er", "der++", "gdumb"):
        model = tiny_causal_lm(s, hidden=32, heads=2, layers=1, seed=0)
        cfg = TrainConfig(steps=4, batch_size=8, lr=1e-3, device="cpu", seed=0, log_every=0)
        result = train_stream(s, model, STRATEGIES.get(name)(), cfg)
        assert result.complete and len(result.accuracy) == 2, name
