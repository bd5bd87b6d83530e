"""The policy-gradient objective (lifelong.hf.rl): REINFORCE / ReMax with an exact-match reward
after a supervised warm-up -- its estimator on hand-built tensors, learning, determinism and
exact resume, both drivers, the config path through `lifelong run`, and its refusals."""

from __future__ import annotations

import io
import json

import pytest
import torch
import yaml

transformers = pytest.importorskip("transformers")

from lifelong.config import validate  # noqa: E402
from lifelong.data.task import Stream, Task  # noqa: E402
from lifelong.engine import TrainConfig, train_stream  # noqa: E402
from lifelong.engine.callbacks import Callback  # noqa: E402
from lifelong.engine.config import Recipe  # noqa: E402
from lifelong.errors import ConfigError, DataError  # noqa: E402
from lifelong.hf.encoding import IGNORE, encode_pairs  # noqa: E402
from lifelong.hf.models import tiny_causal_lm  # noqa: E402
from lifelong.hf.objective import CausalLMObjective  # noqa: E402
from lifelong.hf.rl import (PolicyGradientObjective, advantages, completion_log_probs,  # noqa: E402
                            rl_settings)
from lifelong.hf.tokenizer import CharTokenizer  # noqa: E402
from test_engine_loop import Tape  # noqa: E402

TOK = CharTokenizer("0123456789:")


def copy_stream(tasks=("copy",)) -> Stream:
    """Two-digit prompts ``"37:"``; ``copy`` answers ``"37"``, ``swap`` answers ``"73"`` (learnable in seconds)."""
    prompts = [f"{a}{b}:" for a in range(10) for b in range(10)]
    answer = {"copy": lambda p: p[:2], "swap": lambda p: p[1] + p[0]}
    out = []
    for name in tasks:
        ex = encode_pairs(TOK, prompts, [answer[name](p) for p in prompts], length=8)
        out.append(Task(name, ex, ex, (), {}))
    return Stream("copy", out, scenario="domain", kind="lm", info={"tokenizer": TOK, "max_length": 8})


def model(stream, seed=0):
    return tiny_causal_lm(stream, hidden=32, heads=2, layers=1, seed=seed)


def cfg(**kw) -> TrainConfig:
    base = dict(steps=20, batch_size=16, optimizer="adam", lr=1e-3, device="cpu", seed=0, log_every=5)
    base.update(kw)
    return TrainConfig(**base)


def rows(prompts, answers):
    return encode_pairs(TOK, prompts, answers, length=8).select("input_ids", "attention_mask", "labels")


# ----------------------------------------------------------------------------- the estimator on hand-built tensors
def test_log_probs_sum_exactly_the_labelled_tokens():
    torch.manual_seed(0)
    logits = torch.randn(2, 5, 7)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 4, IGNORE], [IGNORE, 1, 2, 6, 0]])
    got = completion_log_probs(logits, labels, temperature=2.0)
    lp = torch.log_softmax(logits / 2.0, -1)
    # position t predicts token t + 1: row 0 scores tokens 3 (from position 1) and 4 (from position 2)
    want0 = lp[0, 1, 3] + lp[0, 2, 4]
    want1 = lp[1, 0, 1] + lp[1, 1, 2] + lp[1, 2, 6] + lp[1, 3, 0]
    assert torch.allclose(got, torch.stack([want0, want1]))


def test_advantages_of_each_baseline():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 0.0]])
    assert torch.equal(advantages(r, "none"), r)
    assert torch.equal(advantages(r, "mean"), torch.tensor([[0.5, -0.5, -0.5, 0.5], [0.0, 0.0, 0.0, 0.0]]))
    greedy = torch.tensor([1.0, 0.0])
    assert torch.equal(advantages(r, "greedy", greedy), torch.tensor([[0.0, -1.0, -1.0, 0.0], [0.0] * 4]))


def test_reward_is_exact_match_up_to_and_including_eos():
    obj = PolicyGradientObjective(copy_stream(), samples=1)
    data = rows(["12:", "34:", "56:", "78:"], ["12", "34", "56", "78"])
    eos, pad = TOK.eos_token_id, TOK.pad_token_id
    d = {c: TOK.encode(c)[0] for c in "0123456789"}
    tokens = torch.tensor([[d["1"], d["2"], eos],     # exact
                           [d["3"], d["4"], d["4"]],  # does not stop: "344..."
                           [d["5"], eos, pad],        # stops early: "5"
                           [d["8"], d["7"], eos]])    # wrong digits
    assert obj.rewards(data, tokens).view(-1).tolist() == [1.0, 0.0, 0.0, 0.0]


def test_near_greedy_samples_earn_the_assessments_exact_match():
    """At a tiny temperature the sampled completions are greedy ones, and their reward is the
    assessment's teacher-forced exact match, row for row."""
    s = copy_stream()
    m = model(s)
    train_stream(s, m, config=cfg(steps=40, lr=1e-3))
    obj = PolicyGradientObjective(s, samples=1, temperature=1e-4)
    data = s[0].test.select("input_ids", "attention_mask", "labels")
    gen = torch.Generator().manual_seed(0)
    _, labels, tokens = obj.sample(m, data, gen)
    reward = obj.rewards(data, tokens).view(-1)
    m.eval()
    correct = obj.correct(obj.forward(m, data), data).float()
    assert 0.05 < float(correct.mean()) < 0.95  # some right, some wrong: the comparison means something
    assert torch.equal(reward, correct)
    # labels mark the sampled tokens up to and including the first EOS, nothing else
    n = (labels != IGNORE).sum(1)
    ends = (tokens == TOK.eos_token_id).float().argmax(1) + 1
    has_eos = (tokens == TOK.eos_token_id).any(1)
    assert torch.equal(n, torch.where(has_eos, ends, torch.full_like(ends, tokens.shape[1])))


def _grads(m):
    return [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in m.parameters()]


def test_gradient_is_minus_advantage_times_log_prob_and_zero_without_advantage(monkeypatch):
    s = copy_stream()
    m = model(s)
    data = rows(["12:", "34:", "56:"], ["12", "34", "56"])
    obj = PolicyGradientObjective(s, samples=2, baseline="none")
    fixed = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    monkeypatch.setattr(obj, "rewards", lambda data, tokens: fixed)
    out = obj.forward(m, data)
    loss = obj.policy_losses(m, out, data, seed=3).mean()
    loss.backward()
    got = _grads(m)
    # by hand: the same samples (same seed), -A * sum log p, mean over the 6 samples
    m.zero_grad()
    seqs, labels, _ = obj.sample(m, data, torch.Generator().manual_seed(3))
    logp = completion_log_probs(m(input_ids=seqs).logits, labels)
    (-(fixed.view(-1) * logp).mean()).backward()
    for a, b in zip(got, _grads(m)):
        assert torch.allclose(a, b, atol=1e-6)
    assert any(float(g.abs().sum()) > 0 for g in got)
    # every advantage zero: zero loss, zero gradient
    m.zero_grad()
    monkeypatch.setattr(obj, "rewards", lambda data, tokens: torch.zeros(3, 2))
    out = obj.forward(m, data)
    loss = obj.policy_losses(m, out, data, seed=3)
    assert loss.shape == (3,) and float(loss.detach().abs().sum()) == 0.0
    loss.mean().backward()
    assert all(float(g.abs().sum()) == 0.0 for g in _grads(m))


# ----------------------------------------------------------------------------- learning, determinism, resume
def test_remax_after_warm_up_raises_the_sampled_reward():
    s = copy_stream()
    obj = PolicyGradientObjective(s, warmup_steps=150, samples=4)
    r = train_stream(s, model(s), config=cfg(steps=250, log_every=25), objective=obj)
    rewards = [row["rl/reward"] for row in r.schedule_log if "rl/reward" in row]
    assert [row["step"] for row in r.schedule_log if "rl/reward" in row] == [175, 200, 225, 250]  # after warm-up
    assert rewards[-1] > rewards[0] + 0.2, rewards
    assert r.accuracy[-1][0] >= 0.95


def test_reinforce_with_a_group_mean_baseline_learns_too():
    s = copy_stream()
    obj = PolicyGradientObjective(s, warmup_steps=150, samples=4, baseline="mean")
    r = train_stream(s, model(s), config=cfg(steps=250, log_every=25), objective=obj)
    rewards = [row["rl/reward"] for row in r.schedule_log if "rl/reward" in row]
    assert rewards[-1] > rewards[0] + 0.1, rewards
    assert all("rl/greedy_reward" not in row for row in r.schedule_log)


def test_same_seed_same_losses_other_seed_other_samples():
    s = copy_stream()

    def run(seed):
        obj = PolicyGradientObjective(s, warmup_steps=5, samples=2)
        return train_stream(s, model(s), config=cfg(steps=15, log_every=1, seed=seed, lr=3e-3), objective=obj)

    a, b, c = run(0), run(0), run(1)
    assert a.losses == b.losses and a.schedule_log == b.schedule_log and a.accuracy == b.accuracy
    assert [x["loss"] for x in a.losses] != [x["loss"] for x in c.losses]


def test_resume_mid_task_draws_the_same_samples():
    s = copy_stream(("copy", "swap"))
    states = []

    def run(**kw):
        obj = PolicyGradientObjective(s, warmup_steps=4, samples=2)
        return train_stream(s, model(s), config=cfg(steps=10, log_every=1, checkpoint_every=1, lr=3e-3),
                            objective=obj, **kw)

    full = run(checkpointer=lambda st: states.append(Tape.freeze(st)))
    chosen = next(st for st in map(_thaw, states) if (st["phase"], st["step"]) == (1, 7))
    torch.manual_seed(123)
    resumed = run(resume=chosen)
    assert resumed.losses == full.losses and resumed.accuracy == full.accuracy and resumed.complete
    assert resumed.schedule_log == full.schedule_log


def _thaw(blob):
    return torch.load(io.BytesIO(blob), weights_only=True)


# ----------------------------------------------------------------------------- with methods, and both drivers
def test_works_with_replay_and_distillation_in_the_loop():
    """ER (replay memory + review) and LwF (distillation on the batch's output) around the policy
    gradient: penalties are live (the engine refuses a silent one), replayed rows are trained too."""
    from lifelong.consolidation import CONSOLIDATORS
    from lifelong.curriculum import SCHEDULES
    from lifelong.memory import BUFFERS

    s = copy_stream(("copy", "swap"))
    recipe = Recipe(consolidators=[CONSOLIDATORS.get("lwf")(alpha=1.0)], memory=BUFFERS.get("reservoir")(capacity=32),
                    review=SCHEDULES.get("replay")(0.5))
    obj = PolicyGradientObjective(s, warmup_steps=3, samples=2)
    r = train_stream(s, model(s), recipe, cfg(steps=8, log_every=4), objective=obj)
    assert r.complete and r.task_steps == [8, 8] and len(recipe.memory) == 32
    assert sum("rl/reward" in row for row in r.schedule_log) == 4


def test_continual_trainer_gives_the_loop_numbers():
    from lifelong.hf.trainer import ContinualTrainer

    s = copy_stream(("copy", "swap"))
    steps, batch, lr = 6, 8, 3e-3
    loop_cfg = TrainConfig(steps=steps, batch_size=batch, optimizer="adamw", lr=lr, device="cpu", seed=0,
                           eval_batch_size=32, log_every=0)
    loop_losses, hf_losses = Losses(), Losses()
    transformers.set_seed(0)
    loop = train_stream(s, model(s), config=loop_cfg, objective=PolicyGradientObjective(s, warmup_steps=2, samples=2),
                        callbacks=[loop_losses])
    args = transformers.TrainingArguments(
        output_dir="/tmp/lifelong-rl-trainer-test", per_device_train_batch_size=batch, learning_rate=lr,
        max_steps=steps, report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no", disable_tqdm=True,
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, seed=0)
    trainer = transformers.Trainer(model=model(s), args=args)
    obj = PolicyGradientObjective(s, warmup_steps=2, samples=2)
    hf = ContinualTrainer(trainer, s, objective=obj, seed=0, eval_batch_size=32, callbacks=[hf_losses]).fit()
    flat = lambda m: [a for row in m for a in row]  # noqa: E731
    assert hf.complete and flat(hf.accuracy) == pytest.approx(flat(loop.accuracy), abs=1e-6)
    assert len(loop_losses.values) == len(hf_losses.values) == 2 * steps
    assert hf_losses.values == pytest.approx(loop_losses.values, rel=1e-4, abs=1e-5)
    # the Trainer's steps after the warm-up went through the policy gradient: rewards were logged
    assert [row["task"] for row in hf.schedule_log if "rl/reward" in row] == [0, 1]


class Losses(Callback):
    def __init__(self):
        self.values = []

    def on_step_end(self, ctx, loss):
        self.values.append(loss)


# ----------------------------------------------------------------------------- configs and refusals
def _arith_config(tmp_path, **train):
    return {"benchmark": {"name": "arithmetic-skills",
                          "params": {"skills": ["add", "sub"], "max_digits": 1, "train_size": 48, "test_size": 16,
                                     "general_size": 0}},
            "model": {"name": "tiny-causal-lm", "params": {"hidden": 16, "heads": 2, "layers": 1}},
            "train": {"steps": 6, "batch_size": 8, "optimizer": "adamw", "lr": 0.003, "log_every": 3, **train},
            "seed": 0, "device": "cpu"}


def test_lifelong_run_with_objective_remax(tmp_path):
    from click.testing import CliRunner

    from lifelong.cli import main

    conf = tmp_path / "remax.yaml"
    conf.write_text(yaml.safe_dump(_arith_config(tmp_path, objective="remax",
                                                 rl={"warmup_steps": 2, "samples": 2, "temperature": 1.0})))
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["run", str(conf), "--out", str(out), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete"] and metrics["task_steps"] == [6, 6]
    stored = yaml.safe_load((out / "config.yaml").read_text())
    assert stored["train"]["objective"] == "remax" and stored["train"]["rl"]["warmup_steps"] == 2
    schedule = (out / "schedule.csv").read_text()
    assert "rl/reward" in schedule and "rl/greedy_reward" in schedule


@pytest.mark.parametrize("train,message", [
    ({"objective": "ppo"}, "train.objective"),
    ({"rl": {"samples": 2}}, "train.objective is sft"),
    ({"objective": "remax", "rl": {"baseline": "mean"}}, "use train.objective: reinforce"),
    ({"objective": "reinforce", "rl": {"samples": 1}}, "needs train.rl.samples >= 2"),
    ({"objective": "reinforce", "rl": {"baseline": "greedy"}}, "write train.objective: remax"),
    ({"objective": "remax", "rl": {"sample": 2}}, "Did you mean 'samples'"),
    ({"objective": "remax", "rl": {"temperature": 0}}, "temperature must be a number > 0"),
    ({"objective": "remax", "rl": {"warmup_steps": -1}}, "warmup_steps must be >= 0"),
    ({"objective": "remax", "rl": {"samples": 1.5}}, "samples must be a whole number"),
])
def test_bad_settings_are_refused_with_the_field_named(tmp_path, train, message):
    with pytest.raises(ConfigError, match=message):
        validate(_arith_config(tmp_path, **train))


def test_good_settings_resolve():
    assert rl_settings("sft", None) is None
    assert rl_settings("remax", None).baseline == "greedy"
    r = rl_settings("reinforce", {})
    assert (r.baseline, r.samples) == ("mean", 4)
    assert rl_settings("reinforce", {"baseline": "none"}).samples == 1


def test_refusals_at_run_time():
    from lifelong.data.benchmarks import make_benchmark
    from lifelong.models import build_model

    digits = make_benchmark("split-digits", 0, n_tasks=2)
    with pytest.raises(ConfigError, match="trains language models"):
        train_stream(digits, build_model("mlp", digits, hidden=[8]), config=cfg(objective="remax"))
    s = copy_stream()
    with pytest.raises(ConfigError, match="has no policy-gradient loss"):
        train_stream(s, model(s), config=cfg(objective="remax"), objective=CausalLMObjective(s))
    with pytest.raises(DataError, match="max_new_tokens=2 is shorter"):
        train_stream(s, model(s), config=cfg(objective="remax", rl={"max_new_tokens": 2}))
    # a row whose learned tokens are not one block (two assistant turns)
    data = rows(["12:"], ["12"])
    data["labels"][0, 5] = IGNORE
    obj = PolicyGradientObjective(s)
    with pytest.raises(DataError, match="not contiguous"):
        obj.policy_losses(model(s), obj.forward(model(s), data), data, seed=0)


def test_refused_across_processes(monkeypatch):
    """DDP allows one forward per backward; the policy loss takes two: refused with a clear message."""
    from lifelong.engine import distributed, phase

    monkeypatch.setattr(distributed, "join_from_env", lambda device: True)
    monkeypatch.setattr(phase, "world_size", lambda: 2)
    s = copy_stream()
    with pytest.raises(ConfigError, match="one process only for now \\(2 processes"):
        train_stream(s, model(s), config=cfg(objective="remax"))


def test_config_objective_remax_builds_the_policy_objective(tmp_path):
    c = validate(_arith_config(tmp_path, objective="remax", rl={"warmup_steps": 3}))
    from lifelong.engine.phase import make_objective
    from lifelong.data.benchmarks import make_benchmark

    stream = make_benchmark("arithmetic-skills", 0, skills=["add"], max_digits=1, train_size=8, test_size=4)
    obj = make_objective(stream, None, c.train_config())
    assert isinstance(obj, PolicyGradientObjective) and obj.settings.warmup_steps == 3
    assert not obj.policy_active(2) and obj.policy_active(3)


def test_a_policy_gradient_run_is_never_stacked_as_sft():
    """A grid's vectorised stacks would train with the plain objective; a remax run is kept out of them."""
    from lifelong.vectorized import vectorizable

    base = {"benchmark": {"name": "split-digits", "params": {"n_tasks": 2}}, "model": {"name": "mlp"},
            "train": {"steps": 2}, "seed": 0, "device": "cpu"}
    runs = [validate({**base, "train": {"steps": 2, "objective": "remax"}}), validate(base)]
    groups, reasons = vectorizable(runs)
    assert "train.objective remax" in reasons[0] and 1 not in reasons
