"""Instruction data (chat messages, only assistant turns learned), the local BPE tokenizer, model sizes and
the tokenizer check of hf-causal-lm."""

import json

import pytest
import torch

pytest.importorskip("pyarrow")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from lifelong.errors import ConfigError, DataError  # noqa: E402
from lifelong.hf.encoding import IGNORE, encode_chat_rows  # noqa: E402
from lifelong.hf.text import text_stream  # noqa: E402
from lifelong.hf.tokenizer import CharTokenizer, train_bpe_tokenizer  # noqa: E402

CHAT = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4"}, {"role": "user", "content": "and 3+3?"},
        {"role": "assistant", "content": "6"}]


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def bpe():
    texts = [f"{m['role']} {m['content']}" for m in CHAT] * 20 + ["the quick brown fox jumps"] * 20
    return train_bpe_tokenizer(texts, vocab_size=320)


def _learned(tok, ids, labels):
    return tok.decode([i for i, lab in zip(ids, labels) if lab != IGNORE])


def test_chat_template_masks_everything_but_assistant_turns(bpe):
    assert bpe.chat_template  # a template set locally on a tiny tokenizer
    (ids, labels, first), = encode_chat_rows(bpe, [CHAT])
    full = bpe.apply_chat_template(CHAT, tokenize=False)
    assert bpe.decode(ids) == full  # the row is the templated conversation
    assert _learned(bpe, ids, labels) == "4</s>6</s>"  # assistant contents and their end-of-turn, nothing else
    assert labels[:first] == [IGNORE] * first and labels[first] != IGNORE
    # a different template: the masking follows it
    bpe2 = train_bpe_tokenizer(["user hi", "assistant yo"] * 10, vocab_size=300)
    bpe2.chat_template = ("{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
                          "{% if add_generation_prompt %}[assistant] {% endif %}")
    (ids2, labels2, _), = encode_chat_rows(bpe2, [CHAT])
    assert _learned(bpe2, ids2, labels2) == "4\n6\n"


def test_chat_without_template_uses_plain_turns_and_learns_eos():
    tok = CharTokenizer.fit(["system: user: assistant: be brief 2+2? and 3+3? 4 6\n"])
    (ids, labels, _), = encode_chat_rows(tok, [CHAT])
    learned = [i for i in labels if i != IGNORE]
    assert learned == tok.encode("4\n") + [tok.eos_token_id] + tok.encode("6\n") + [tok.eos_token_id]
    assert ids[0] == tok.bos_token_id


def test_messages_records_in_a_text_stream(tmp_path, bpe):
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}],
             "task": "chat"} for i in range(8)]
    f = tmp_path / "c.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    folder = tmp_path / "tok"
    bpe.save_pretrained(str(folder))
    s = text_stream(path=str(f), tokenizer=str(folder), test_fraction=0.25)
    b = s[0].train.take(torch.arange(s[0].train.size))
    for ids, labels, mask in zip(b["input_ids"], b["labels"], b["attention_mask"]):
        n = int(mask.sum())
        text = _learned(bpe, ids[:n].tolist(), labels[:n].tolist())
        assert text.startswith("a") and text.endswith("</s>") and "q" not in text
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"}], "task": "chat"}) + "\n")
    with pytest.raises(DataError, match=r"bad.jsonl' record 1 \(task 'chat'\): field 'messages' has no non-empty "
                                        "assistant message"):
        text_stream(path=str(bad), tokenizer=str(folder))


def test_bpe_tokenizer_is_trained_once_and_cached(tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text("\n".join(json.dumps({"prompt": f"say {w}", "completion": w, "task": "t"})
                           for w in ["alpha", "beta", "gamma", "delta"] * 10) + "\n")
    s = text_stream(path=str(f), tokenizer="bpe", bpe_vocab_size=300)
    tok = s.info["tokenizer"]
    import transformers

    assert isinstance(tok, transformers.PreTrainedTokenizerFast) and tok.eos_token_id == 2 and len(tok) <= 300
    assert list((tmp_path / "cache" / "tokenizers").iterdir())
    again = text_stream(path=str(f), tokenizer="bpe", bpe_vocab_size=300)
    assert again.info["tokenizer"].get_vocab() == tok.get_vocab()


def test_tiny_causal_lm_sizes():
    from lifelong.hf.models import tiny_causal_lm

    small = tiny_causal_lm(vocab_size=512, size="small")
    n = sum(p.numel() for p in small.parameters())
    assert type(small).__name__ == "LlamaForCausalLM" and 2.5e6 < n < 4.5e6
    assert small.config.hidden_size == 256 and small.config.num_hidden_layers == 4
    wide = tiny_causal_lm(vocab_size=512, size="tiny", hidden=96, heads=4)
    assert wide.config.hidden_size == 96
    with pytest.raises(ConfigError, match="unknown size 'huge'"):
        tiny_causal_lm(vocab_size=512, size="huge")


def _llama_folder(tmp_path, bpe):
    """A tiny Llama saved with its BPE tokenizer, as a user keeps a pretrained model: (folder, its config)."""
    import transformers

    folder = tmp_path / "llama"
    cfg = transformers.LlamaConfig(vocab_size=len(bpe), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64)
    transformers.AutoModelForCausalLM.from_config(cfg).save_pretrained(str(folder))
    bpe.save_pretrained(str(folder))
    return folder, cfg


def test_hf_causal_lm_refuses_a_tokenizer_that_is_not_the_models(tmp_path, bpe):
    import transformers

    from lifelong.hf.models import hf_causal_lm, model_tokenizer

    folder, cfg = _llama_folder(tmp_path, bpe)
    assert model_tokenizer("hf-causal-lm", {"name_or_path": str(folder)}) == str(folder)
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"q{i}", "completion": "a", "task": "t"}) for i in range(6)))
    good = text_stream(path=str(data), tokenizer=str(folder))
    model = hf_causal_lm(good, name_or_path=str(folder))
    assert model.get_input_embeddings().weight.shape[0] == len(bpe)
    chars = text_stream(path=str(data))  # the default character tokenizer: unrelated ids
    with pytest.raises(ConfigError, match="encoded with the character tokenizer.*tokenizer: "):
        hf_causal_lm(chars, name_or_path=str(folder))
    tiny = train_bpe_tokenizer(["a b c"] * 5, vocab_size=300)
    other = text_stream(path=str(data), tokenizer=tiny)
    other.info["tokenizer"] = tiny
    small_folder = tmp_path / "big"
    cfg.vocab_size = 4 * len(bpe)
    transformers.AutoModelForCausalLM.from_config(cfg).save_pretrained(str(small_folder))
    with pytest.raises(ConfigError, match="do not belong together"):
        hf_causal_lm(other, name_or_path=str(small_folder))


def test_tiny_model_folder_keeps_its_bpe_tokenizer(tmp_path, bpe):
    import transformers

    from lifelong.hf.models import hf_causal_lm, tiny_causal_lm

    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"q{i}", "completion": "a", "task": "t"}) for i in range(6)))
    s = text_stream(path=str(data), tokenizer=bpe)
    tiny_causal_lm(s, size="tiny", save_dir=str(tmp_path / "m"))
    again = transformers.AutoTokenizer.from_pretrained(str(tmp_path / "m"))
    assert again.get_vocab() == bpe.get_vocab() and again.chat_template == bpe.chat_template
    assert hf_causal_lm(s, name_or_path=str(tmp_path / "m")) is not None


def test_a_text_run_with_hf_causal_lm_encodes_with_the_models_tokenizer_by_default(tmp_path, bpe):
    """No `tokenizer:` in the text benchmark: the stream is encoded with the model folder's tokenizer."""
    from lifelong.config import validate
    from lifelong.experiment import build_experiment

    folder, _ = _llama_folder(tmp_path, bpe)
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps({"prompt": f"q{i}", "completion": "a", "task": "t"}) for i in range(6)))
    built = build_experiment(validate({
        "benchmark": {"name": "text", "params": {"path": str(data)}},
        "model": {"name": "hf-causal-lm", "params": {"name_or_path": str(folder)}},
        "train": {"steps": 1}, "device": "cpu"}))
    tok = built.stream.info["tokenizer"]
    assert not hasattr(tok, "alphabet") and len(tok) == len(bpe)  # the model's BPE, not the character tokenizer
