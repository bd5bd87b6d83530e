"""Language-model pieces: tokenizer, encoding, arithmetic-skills, text streams, objective, models."""

from __future__ import annotations

import json
import math
import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lifelong.data.benchmarks import BENCHMARKS  # noqa: E402
from lifelong.errors import ConfigError, DataError  # noqa: E402
from lifelong.hf.encoding import IGNORE, encode_pairs  # noqa: E402
from lifelong.hf.objective import CausalLMObjective  # noqa: E402
from lifelong.hf.text import text_stream  # noqa: E402
from lifelong.hf.tokenizer import CharTokenizer  # noqa: E402


# ----------------------------------------------------------------------------- tokenizer / encoding
def test_char_tokenizer_roundtrip_save_load_and_hf_wrapper(tmp_path):
    tok = CharTokenizer()
    ids = tok.encode("12+34=46", add_bos=True, add_eos=True)
    assert ids[0] == tok.bos_token_id and ids[-1] == tok.eos_token_id and len(ids) == 10
    assert tok.decode(ids) == "12+34=46"
    tok.save(tmp_path)
    assert CharTokenizer.load(tmp_path) == tok
    with pytest.raises(DataError, match="no character tokenizer"):
        CharTokenizer.load(tmp_path / "nope")
    strict = CharTokenizer(strict=True)
    with pytest.raises(DataError, match="not in the tokenizer's alphabet"):
        strict.encode("1/2")
    hf = tok.to_hf()
    assert hf("12+34=46", add_special_tokens=False)["input_ids"] == tok.encode("12+34=46")
    assert (hf.pad_token_id, hf.bos_token_id, hf.eos_token_id) == (0, 1, 2) and len(hf) == tok.vocab_size
    hf.save_pretrained(tmp_path / "hf")
    again = type(hf).from_pretrained(tmp_path / "hf")
    assert again.get_vocab() == hf.get_vocab()


def test_encode_pairs_masks_prompt_and_padding():
    tok = CharTokenizer()
    ex = encode_pairs(tok, ["1+1=", "12+30="], ["2", "42"], length=12)
    assert ex["input_ids"].shape == (2, 12)
    # row 0: <s> 1 + 1 = 2 </s> pad...
    assert ex["input_ids"][0, :7].tolist() == [1] + tok.encode("1+1=2") + [2]
    assert ex["labels"][0].tolist() == [IGNORE] * 5 + tok.encode("2") + [2] + [IGNORE] * 5
    assert ex["attention_mask"][0].tolist() == [1] * 7 + [0] * 5
    assert ex["prompt_len"].tolist() == [5, 7]
    with pytest.raises(DataError, match="does not fit max_length"):
        encode_pairs(tok, ["123456789="], ["1"], max_length=6)


# ----------------------------------------------------------------------------- arithmetic-skills
def test_arithmetic_skills_is_seeded_correct_and_split_disjoint():
    make = BENCHMARKS.get("arithmetic-skills")
    s = make(seed=3, train_size=300, test_size=100, max_digits=2)
    again = make(seed=3, train_size=300, test_size=100, max_digits=2)
    other = make(seed=4, train_size=300, test_size=100, max_digits=2)
    assert s.kind == "lm" and s.task_names == ["add", "sub", "mul"] and s.tasks[0].classes == ()
    assert torch.equal(s[0].train["input_ids"], again[0].train["input_ids"])
    assert not torch.equal(s[0].train["input_ids"], other[0].train["input_ids"])
    ops = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b}
    tok = s.info["tokenizer"]
    for t in s:
        texts = t.info["train_texts"]
        assert len(texts) == 300 and t.train["difficulty"].tolist().count(1.0) == 150
        for text, d in zip(texts, t.train["difficulty"].tolist()):
            lhs, ans = text.split("=")
            a, b = (int(x) for x in lhs.split(t.info["operator"]))
            assert ops[t.name](a, b) == int(ans) and len(str(a)) == int(d)
        # the encoded rows decode back to the raw strings
        assert tok.decode(t.train["input_ids"][0].tolist()) == texts[0]
        train_prompts = {x.split("=")[0] for x in texts}
        test_prompts = {x.split("=")[0] for x in t.info["test_texts"]}
        assert not train_prompts & test_prompts
    # one width for all tasks (pools and memory mix them)
    assert len({t.train["input_ids"].shape[1] for t in s}) == 1
    rev = make(seed=3, train_size=5, test_size=5, skills=["add"], reverse_answer=True)
    lhs, ans = rev[0].info["train_texts"][0].split("=")
    assert int(ans[::-1]) == sum(int(x) for x in lhs.split("+"))


def test_arithmetic_skills_rejects_bad_params():
    make = BENCHMARKS.get("arithmetic-skills")
    with pytest.raises(ConfigError, match="unknown skill.*div.*add, sub, mul"):
        make(skills=["add", "div"])
    with pytest.raises(ConfigError, match="min_digits"):
        make(min_digits=3, max_digits=2)


# ----------------------------------------------------------------------------- text streams
def _jsonl(path, rows):
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


def test_text_stream_from_jsonl_and_csv(tmp_path):
    rows = [{"q": f"capital of {c}?", "a": cap, "skill": s, "level": i % 3}
            for i, (c, cap, s) in enumerate([("fr", "paris", "geo"), ("de", "berlin", "geo"), ("it", "rome", "geo"),
                                              ("2+2", "4", "math"), ("3+3", "6", "math"), ("4+4", "8", "math")])]
    f = _jsonl(tmp_path / "d.jsonl", rows)
    s = text_stream(path=str(f), prompt_field="q", completion_field="a", task_field="skill",
                    difficulty_field="level", tasks=["math", "geo"], test_fraction=0.34)
    assert s.kind == "lm" and s.task_names == ["math", "geo"]
    assert s[0].num_train == 2 and s[0].num_test == 1 and "difficulty" in s[0].train
    assert all(t.endswith(("4", "6", "8")) for t in s[0].info["train_texts"])
    lab = s[0].train["labels"][0]
    tok = s.info["tokenizer"]
    assert tok.decode([i for i in lab.tolist() if i != IGNORE]) in {"4", "6", "8"}
    csv = tmp_path / "plain.csv"
    csv.write_text("body,topic\nhello world,a\nthe cat sat,a\nfoo bar,b\nbaz qux,b\n", encoding="utf-8")
    s2 = text_stream(path=str(csv), text_field="body", task_field="topic", test_fraction=0.5)
    assert s2.task_names == ["a", "b"]
    # plain text: every token after BOS is learned
    row = s2[0].train
    assert int((row["labels"][0] != IGNORE).sum()) == int(row["attention_mask"][0].sum()) - 1
    # one file per task when there is no task column
    g = _jsonl(tmp_path / "g.jsonl", [{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": "d"}])
    h = _jsonl(tmp_path / "h.jsonl", [{"prompt": "e", "completion": "f"}, {"prompt": "g", "completion": "h"}])
    s3 = text_stream(path=[str(g), str(h)], test_fraction=0.5)
    assert s3.task_names == ["g", "h"]


def test_text_stream_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        text_stream(path=str(tmp_path / "missing.jsonl"))
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    with pytest.raises(DataError, match="empty.jsonl' is empty"):
        text_stream(path=str(empty))
    f = _jsonl(tmp_path / "f.jsonl", [{"question": "a", "answer": "b"}])
    with pytest.raises(DataError, match=r"record 1 has no field 'prompt'; its fields are: question, answer"):
        text_stream(path=str(f))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(b'{"prompt": "a", "completion": "b"}\n{"prompt": "caf\xe9", "completion": "x"}\n')
    with pytest.raises(DataError, match=r"bad.jsonl' line 2 is not valid utf-8"):
        text_stream(path=str(bad))
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": \n', encoding="utf-8")
    with pytest.raises(DataError, match="line 2 is not valid JSON"):
        text_stream(path=str(broken))
    with pytest.raises(ConfigError, match="exactly one of path"):
        text_stream()
    with pytest.raises(DataError, match=r"task\(s\) \['zzz'\] do not occur"):
        text_stream(path=str(f), prompt_field="question", completion_field="answer", tasks=["zzz"])


# ----------------------------------------------------------------------------- objective and models
@pytest.fixture(scope="module")
def trained():
    """A tiny GPT-2 trained for a few hundred steps on 1-digit addition (about 1-2 s)."""
    from lifelong.hf.models import tiny_causal_lm

    torch.manual_seed(0)
    s = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=400, test_size=100, max_digits=1, skills=["add"])
    model = tiny_causal_lm(s, hidden=48, heads=4, layers=2)
    untrained_state = {k: v.clone() for k, v in model.state_dict().items()}
    obj = CausalLMObjective(s)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(220):
        idx = torch.randint(s[0].num_train, (32,), generator=g)
        batch = s[0].train.take(idx)
        loss = obj.per_sample_loss(obj.forward(model, batch), batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return s, model, obj, untrained_state


def test_per_sample_loss_matches_transformers_loss(trained):
    s, model, obj, _ = trained
    batch = s[0].test.take(slice(0, 4))
    out = obj.forward(model, batch)
    mine = obj.per_sample_loss(out, batch)
    for i in range(4):
        row = batch.take(slice(i, i + 1))
        ref = model(input_ids=row["input_ids"], attention_mask=row["attention_mask"], labels=row["labels"]).loss
        assert torch.allclose(mine[i], ref, atol=1e-5)


def test_teacher_forced_correct_equals_greedy_generation_exact_match(trained):
    s, model, obj, _ = trained
    test = s[0].test
    out = obj.forward(model, test)
    correct = obj.correct(out, test)
    generated = obj.generate(model, s[0].info["test_prompts"], max_new_tokens=4)
    exact = torch.tensor([g == c for g, c in zip(generated, s[0].info["test_completions"])])
    assert 0.2 < float(exact.float().mean()) < 1.0 or bool(exact.all())  # a meaningful mix (or all right)
    assert torch.equal(correct, exact)
    assert obj.evaluate(model, s[0], torch.device("cpu"), batch_size=32) == pytest.approx(float(exact.float().mean()))


def test_token_loss_perplexity_and_distillation(trained):
    s, model, obj, untrained_state = trained
    from lifelong.hf.models import tiny_causal_lm

    fresh = tiny_causal_lm(s, hidden=48, heads=4, layers=2)
    fresh.load_state_dict(untrained_state)
    texts = s[0].info["test_texts"][:40]
    ppl_fresh, ppl_trained = obj.perplexity(fresh, texts), obj.perplexity(model, texts)
    # an untrained model is close to uniform over the 19-token vocabulary
    assert 8 < ppl_fresh < 40
    # perplexity = exp(mean loss over every token after BOS), as transformers computes it
    ex = encode_pairs(s.info["tokenizer"], [""] * len(texts), texts)
    assert obj.perplexity(model, ex) == pytest.approx(ppl_trained, rel=1e-5)
    nll, count = 0.0, 0
    for i in range(ex.size):
        row = ex.take(slice(i, i + 1))
        n = int(row["attention_mask"].sum())
        with torch.no_grad():
            loss = model(input_ids=row["input_ids"][:, :n], labels=row["input_ids"][:, :n]).loss
        nll, count = nll + float(loss) * (n - 1), count + n - 1
    assert ppl_trained == pytest.approx(math.exp(nll / count), rel=1e-4)
    # completion-only fine-tuning makes the model confident on answers but worse on whole texts
    # (random operands): exactly the loss of general ability perplexity is meant to expose
    assert ppl_trained > ppl_fresh
    assert obj.token_loss(model, s[0]) < obj.token_loss(fresh, s[0]) / 2
    batch = s[0].train.take(slice(0, 8))
    out_new = obj.forward(model, batch)
    assert float(obj.distillation(out_new.detach(), out_new.detach(), batch)) == pytest.approx(0.0, abs=1e-6)
    out_old = obj.forward(fresh, batch).detach()
    kl = obj.distillation(out_new, out_old, batch, temperature=2.0)
    assert float(kl.detach()) > 0.05 and kl.requires_grad
    kl.backward()  # gradients flow into the new model only
    assert any(p.grad is not None for p in model.parameters())
    model.zero_grad(set_to_none=True)


def test_tiny_models_load_through_from_pretrained_and_check_vocab(tmp_path):
    from lifelong.hf.models import hf_causal_lm, tiny_causal_lm
    from lifelong.models.nets import MODELS

    s = BENCHMARKS.get("arithmetic-skills")(seed=0, train_size=4, test_size=4, skills=["add"])
    llama = tiny_causal_lm(s, arch="llama", hidden=32, heads=2, layers=1, save_dir=str(tmp_path / "llama"))
    assert type(llama).__name__ == "LlamaForCausalLM" and (tmp_path / "llama" / "config.json").exists()
    assert llama.get_input_embeddings().weight.shape[0] == 19
    # the saved folder (model + tokenizer) loads through the generic factory
    again = MODELS.get("hf-causal-lm")(s, name_or_path=str(tmp_path / "llama"))
    assert all(torch.equal(a, b) for a, b in zip(llama.state_dict().values(), again.state_dict().values()))
    big_vocab = CharTokenizer("".join(chr(c) for c in range(40, 90)))
    s.info["tokenizer"] = big_vocab
    with pytest.raises(ConfigError, match="vocabulary of 19 tokens but the stream's tokenizer uses 54"):
        hf_causal_lm(s, name_or_path=str(tmp_path / "llama"))
    with pytest.raises(ConfigError, match="cannot load"):
        hf_causal_lm(s, name_or_path=str(tmp_path / "nothing-here"))
    with pytest.raises(ConfigError, match="unknown arch"):
        tiny_causal_lm(s, arch="t5")
