"""General-data replay: a share r of every batch's tokens from a general corpus (lifelong.curriculum.mixture)."""

import io
import json

import pytest
import torch

pytest.importorskip("pyarrow")
pytest.importorskip("transformers")

from lifelong.curriculum.mixture import GeneralMixture  # noqa: E402
from lifelong.data.examples import Examples  # noqa: E402
from lifelong.data.task import Stream  # noqa: E402
from lifelong.engine.config import TrainConfig  # noqa: E402
from lifelong.engine.loop import train_stream  # noqa: E402
from lifelong.engine.phase import Teacher  # noqa: E402
from lifelong.errors import ConfigError  # noqa: E402
from lifelong.hf.models import tiny_causal_lm  # noqa: E402
from lifelong.hf.text import text_stream  # noqa: E402
from lifelong.strategies import STRATEGIES, Recipe  # noqa: E402

WORDS = "the of and a to in is was he for it with as his on be at by had are but from or have an they".split()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LIFELONG_CACHE", str(tmp_path / "cache"))


def _stream(tmp_path, **general):
    rows = [{"prompt": f"{a}+{b}=", "completion": str(a + b), "task": "add" if i % 2 else "sub"}
            for i, (a, b) in enumerate((i * 7 % 97, i * 13 % 89) for i in range(48))]
    data = tmp_path / "d.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    corpus = tmp_path / "general.txt"
    # passages of different lengths, so whole rows cannot hit a token budget exactly
    corpus.write_text("\n".join(" ".join(WORDS[(i * 5 + j) % len(WORDS)] for j in range(2 + i % 9))
                                for i in range(60)) + "\n", encoding="utf-8")
    return text_stream(path=str(data), test_fraction=0.25, general={"path": str(corpus), **general})


def _model(s):
    return tiny_causal_lm(s, hidden=32, heads=2, layers=1, seed=0)


def _without_general(s):
    return Stream(s.name, s.tasks, s.scenario, s.num_classes, s.input_shape, s.kind,
                  {k: v for k, v in s.info.items() if k != "general"})


def test_measured_token_share_of_general_rows_equals_ratio(tmp_path):
    """Counted over the batches themselves: general tokens / all tokens = r within 0.01 over 60 batches."""
    for ratio in (0.1, 0.25, 0.5):
        s = _stream(tmp_path, ratio=ratio)
        teacher = Teacher(s, _model(s), Recipe(), TrainConfig(steps=60, batch_size=8, device="cpu", log_every=0))
        teacher.start_run()
        ph = teacher.start_phase(0)
        general = task = with_general = 0
        for _ in range(60):
            b = teacher.draw(ph)
            mask = b.data["attention_mask"]
            task += int(mask[: b.n_new].sum())
            if b.general_index is None:  # a batch may owe its share to the next one (whole rows)
                assert b.data.size == b.n_new
                continue
            with_general += 1
            general += int(mask[b.n_new:].sum())
            # the general rows are the corpus's rows, right-padded by Examples.cat
            g = teacher.mixture.train.take(b.general_index)
            assert int(g["attention_mask"].sum()) == int(mask[b.n_new:].sum())
        assert with_general > 10
        share = general / (general + task)
        assert share == pytest.approx(ratio, abs=0.01), (ratio, share)
        assert teacher.mixture.share() == pytest.approx(share)


def test_ratio_zero_draws_nothing_and_matches_a_run_without_the_feature(tmp_path):
    s = _stream(tmp_path, ratio=0.0)
    cfg = dict(steps=4, batch_size=8, lr=1e-3, device="cpu", seed=0, log_every=1)
    teacher = Teacher(s, _model(s), Recipe(), TrainConfig(**cfg))
    teacher.start_run()
    ph = teacher.start_phase(0)
    assert all(teacher.draw(ph).general_index is None for _ in range(10))
    mixed = train_stream(s, _model(s), STRATEGIES.get("er")(), TrainConfig(**cfg))
    plain = train_stream(_without_general(s), _model(s), STRATEGIES.get("er")(), TrainConfig(**cfg))
    assert mixed.losses == plain.losses and mixed.accuracy == plain.accuracy and mixed.probes == plain.probes


def test_ratio_changes_training(tmp_path):
    cfg = dict(steps=4, batch_size=8, lr=1e-3, device="cpu", seed=0, log_every=1)
    s = _stream(tmp_path, ratio=0.25)
    mixed = train_stream(s, _model(s), Recipe(), TrainConfig(**cfg))
    plain = train_stream(_without_general(s), _model(s), Recipe(), TrainConfig(**cfg))
    assert mixed.losses != plain.losses


def _mixture(schedule, **kw):
    ex = Examples({"input_ids": torch.ones(10, 4, dtype=torch.long), "attention_mask": torch.ones(10, 4, dtype=torch.long),
                   "labels": torch.ones(10, 4, dtype=torch.long)})
    return GeneralMixture(ex, schedule=schedule, **kw)


def test_linear_decay_schedule_values_per_step():
    mix = _mixture("linear-decay", ratio=0.4, final=0.1)
    mix.start(10)
    values = [mix.fraction(i) for i in range(11)]
    assert values == pytest.approx([0.4 - 0.03 * i for i in range(11)])
    mix.start(4)  # a new phase decays again from the start
    assert mix.fraction(0) == pytest.approx(0.4) and mix.fraction(2) == pytest.approx(0.25)
    assert _mixture("constant", ratio=0.3).fraction(7) == pytest.approx(0.3)


def test_loss_driven_ratio_rises_with_general_loss_and_falls_with_it():
    """Rule: f = clip(r * (L_avg / L_start) ** gain, min_ratio, max_ratio)."""
    up = _mixture("loss-driven", ratio=0.2, max_ratio=0.5)
    assert up.needs_feedback and up.fraction(0) == pytest.approx(0.2)  # no signal yet
    seq = []
    for v in (2.0, 2.2, 2.6, 3.0, 3.5):
        up.update(torch.tensor([v, v]))
        seq.append(up.fraction(0))
    assert seq[0] == pytest.approx(0.2) and all(b > a for a, b in zip(seq, seq[1:]))
    for _ in range(100):
        up.update(torch.tensor([20.0]))
    assert up.fraction(0) == pytest.approx(0.5)  # clipped at max_ratio
    down = _mixture("loss-driven", ratio=0.2, min_ratio=0.05)
    for v in (2.0, 1.8, 1.5, 1.2):
        down.update(torch.tensor([v]))
    assert 0.05 <= down.fraction(0) < 0.2
    ema = 0.9 * (0.9 * (0.9 * 2.0 + 0.1 * 1.8) + 0.1 * 1.5) + 0.1 * 1.2
    assert down.fraction(0) == pytest.approx(0.2 * ema / 2.0)


def test_bad_settings_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="ratio"):
        _mixture("constant", ratio=1.0)
    with pytest.raises(ConfigError, match="schedule"):
        _mixture("cosine")
    data = tmp_path / "x.jsonl"
    data.write_text(json.dumps({"prompt": "1+1=", "completion": "2", "task": "a"}) + "\n" +
                    json.dumps({"prompt": "1+2=", "completion": "3", "task": "a"}) + "\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="path"):
        text_stream(path=str(data), test_fraction=0.5, general={"ratio": 0.1})
    with pytest.raises(ConfigError, match="unknown general setting"):
        _stream(tmp_path, ratio=0.1, rate=3)


def _freeze(state):
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


@pytest.mark.parametrize("stop_at", [(1, 2), (1, 0)])
def test_resume_mid_task_gives_identical_losses(tmp_path, stop_at):
    s = _stream(tmp_path, ratio=0.3, schedule="loss-driven")
    cfg = dict(steps=4, batch_size=8, lr=1e-3, device="cpu", seed=0, log_every=1, checkpoint_every=1, eval_every=2)
    states = []
    full = train_stream(s, _model(s), STRATEGIES.get("er")(), TrainConfig(**cfg),
                        checkpointer=lambda st: states.append(_freeze(st)))
    loaded = [torch.load(io.BytesIO(b), weights_only=True) for b in states]  # plain data only
    chosen = next(st for st in loaded if (st["phase"], st["step"]) == stop_at)
    assert chosen["general"] is not None
    torch.manual_seed(123)
    resumed = train_stream(s, _model(s), STRATEGIES.get("er")(), TrainConfig(**cfg), resume=chosen)
    assert resumed.complete
    assert resumed.losses == full.losses
    assert resumed.schedule_log == full.schedule_log


def test_general_and_domain_validation_losses_reach_the_run_folder(tmp_path):
    from lifelong.runs.rundir import RunDir, load_run

    s = _stream(tmp_path, ratio=0.25, schedule="linear-decay")
    result = train_stream(s, _model(s), Recipe(),
                          TrainConfig(steps=4, batch_size=8, lr=1e-3, device="cpu", seed=0, eval_every=2))
    rows = [r for r in result.schedule_log if "general/val_loss" in r]
    assert [r["step"] for r in rows] == [0, 2, 4, 4, 6, 8, 8]  # before training, every eval_every steps, each task end
    assert all(r["general/val_loss"] > 0 and r["domain/0/val_loss"] > 0 and r["domain/1/val_loss"] > 0
               for r in rows)
    assert "general_perplexity" in result.probes  # the held-out general lines also feed the probe
    RunDir(tmp_path / "run").write_result(result)
    _, back, _ = load_run(tmp_path / "run")
    got = [r for r in back.schedule_log if r.get("general/val_loss") not in (None, "")]
    assert [float(r["general/val_loss"]) for r in got] == pytest.approx([r["general/val_loss"] for r in rows])


def test_trainer_driver_mixes_the_same_rows_as_the_loop(tmp_path):
    """ContinualTrainer around a transformers.Trainer draws through the same Teacher.take: same losses."""
    import transformers

    from lifelong.engine.callbacks import Callback
    from lifelong.hf.trainer import ContinualTrainer
    from lifelong.memory import BUFFERS

    class Losses(Callback):
        def __init__(self):
            self.losses = []

        def on_step_end(self, ctx, loss):
            self.losses.append(loss)

    s = _stream(tmp_path, ratio=0.25)
    loop_log, hf_log = Losses(), Losses()
    cfg = TrainConfig(steps=4, batch_size=8, optimizer="adamw", lr=5e-3, device="cpu", seed=0, log_every=0)
    transformers.set_seed(0)
    loop = train_stream(s, _model(s), Recipe(memory=BUFFERS.get("reservoir")(capacity=16)), cfg,
                        callbacks=[loop_log])
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "hf"), per_device_train_batch_size=8, learning_rate=5e-3, max_steps=4,
        report_to=[], use_cpu=True, logging_strategy="no", save_strategy="no", disable_tqdm=True,
        lr_scheduler_type="constant", weight_decay=0.0, max_grad_norm=0.0, seed=0)
    trainer = transformers.Trainer(model=_model(s), args=args)
    hf = ContinualTrainer(trainer, s, memory=BUFFERS.get("reservoir")(capacity=16), seed=0,
                          callbacks=[hf_log]).fit()
    assert loop.complete and hf.complete
    assert loop_log.losses == pytest.approx(hf_log.losses, rel=1e-4, abs=1e-5)
    shares = [r["general/token_share"] for r in hf.schedule_log if "general/token_share" in r]
    assert shares and shares[-1] > 0.2 and shares == pytest.approx([r["general/token_share"] for r in loop.schedule_log
                                               if "general/token_share" in r])
