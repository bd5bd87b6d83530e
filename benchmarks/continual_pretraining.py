"""Continual pre-training with general-data replay: mixture ratio x learning-rate schedule, measured and predicted.

Generated data (offline, seconds): a *general* corpus (English-like sentences
over a 60-word vocabulary) and three *domain* corpora learned in turn, as
plain text in the ``text`` benchmark (character tokenizer fitted on all four):
``math`` (``17+25=42`` sums), ``code`` (``def f3(x): return x*3+1`` lines)
and ``dna`` (base strings with a motif). A GPT-2 (``--model small``: hidden
48, 2 layers, ~60k parameters; ``--model 20m``: hidden 512, 6 layers, 8 heads,
~19M parameters; the count is measured and printed) is first pre-trained on
the general corpus alone (``--pretrain`` AdamW steps, one model per seed);
then every grid point starts from that model and learns the three domains
with the general corpus mixed in at a share ``r`` of each batch's tokens
(``GeneralMixture``, constant schedule), under one of three learning-rate
schedules (10% warm-up each):

* ``cosine-task``: a cosine re-warmed and re-decayed per domain (``lr_scheduler_scope: task``);
* ``cosine-stream``: one cosine decay over the whole stream (``scope: stream``);
* ``wsd-stream``: warm-up / stable / decay over the stream (``warmup_stable_decay``, decay in the last 10%).

Grid: ``--ratios`` (default 0 0.05 0.1 0.25 0.5) x ``--schedules`` x ``--seeds``
(default 0 1 2). Printed: per run a line; then the table over seeds (mean ±
std): final general validation loss, final domain loss (mean over the three
domains' held-out splits), forgetting (mean over the first two domains of
final loss minus the loss right after the domain was learned), tokens/s
(training tokens, general and domain, over training seconds).

The fits are :mod:`lifelong.assessment.study`'s (the HTML report uses the same code):

* **CPT loss-curve law** (:class:`~lifelong.assessment.laws.CPTLaw`), fitted on
  the validation points of the first 30% of each run's steps, one fit per
  general ratio shared by all schedules and seeds at that ratio, the general
  and the mean-domain curve fitted apart; it predicts every later point and
  the final losses. **The last line, ``cpt_prediction_error: X``, is the mean
  relative error of this law's predicted final losses**, over every run and
  both curves (general, domain).
* The same law fitted **per phase** (each domain's own transition: the general
  loss and the loss of the domain being learned, on the first 30% of the phase,
  predicting the phase's end), printed as a second table; not the headline.
* **Mixture law** (``L_g = E + A (1 - r)^a D^b``, ``L_d = E + B ((1 - r) D)^-c``),
  fitted on every validation point of half the grid (a checkerboard over ratio x
  schedule, all seeds of a cell on one side) and predicting the final losses of
  the other half.
* **Critical mixture ratio**: from the mixture law fitted on all runs, the
  smallest general share keeping the general loss within each ``--tolerance``
  (nats) of the pre-trained model's (the step-0 validation row), after the
  runs' mean token budget.

Usage: python benchmarks/continual_pretraining.py [--model small|20m] [--steps 60] [--seeds 0 1 2]
       [--ratios 0 0.05 0.1 0.25 0.5] [--schedules cosine-task cosine-stream wsd-stream]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lifelong.assessment.study import phase_study, run_curves, study  # noqa: E402
from lifelong.engine.config import Recipe, TrainConfig  # noqa: E402
from lifelong.engine.loop import train_stream  # noqa: E402
from lifelong.hf.models import tiny_causal_lm  # noqa: E402
from lifelong.hf.objective import CausalLMObjective  # noqa: E402
from lifelong.hf.text import text_stream  # noqa: E402
from lifelong.runs.compare import Stat  # noqa: E402

WORDS = ("the a one every some cat dog bird man woman child king city house river tree road ship "
         "sees likes finds takes makes keeps loves holds walks runs sings reads "
         "big small old new red green quiet happy dark bright slow fast "
         "and but then so because while near under over with from into "
         "today again always never soon often").split()


def _general(rng: random.Random, n: int) -> list[str]:
    det, noun = WORDS[:5], WORDS[5:17]
    verb, adj, conj = WORDS[17:29], WORDS[29:41], WORDS[41:52]
    out = []
    for _ in range(n):
        s = f"{rng.choice(det)} {rng.choice(adj)} {rng.choice(noun)} {rng.choice(verb)} {rng.choice(det)} {rng.choice(noun)}"
        if rng.random() < 0.5:
            s += f" {rng.choice(conj)} {rng.choice(det)} {rng.choice(noun)} {rng.choice(verb)}"
        out.append(s + ".")
    return out


def _domains(rng: random.Random, n: int) -> dict[str, list[str]]:
    math_rows = [f"{a}+{b}={a + b}" for a, b in ((rng.randrange(100), rng.randrange(100)) for _ in range(n))]
    code_rows = [f"def f{k}(x): return x*{k}+{m}" for k, m in ((rng.randrange(10), rng.randrange(10)) for _ in range(n))]
    dna_rows = ["".join(rng.choice("ACGT") for _ in range(8)) + "TATA" + "".join(rng.choice("ACGT") for _ in range(8))
                for _ in range(n)]
    return {"math": math_rows, "code": code_rows, "dna": dna_rows}


def build_stream(folder: Path, seed: int, rows: int, ratio: float):
    rng = random.Random(seed)
    general = folder / "general.txt"
    if not general.exists():
        general.write_text("\n".join(_general(rng, rows * 2)) + "\n", encoding="utf-8")
        with open(folder / "domains.jsonl", "w", encoding="utf-8") as fh:
            for task, texts in _domains(rng, rows).items():
                for t in texts:
                    fh.write(json.dumps({"text": t, "task": task}) + "\n")
    return text_stream(path=str(folder / "domains.jsonl"), text_field="text", tasks=["math", "code", "dna"],
                       test_fraction=0.2, max_length=48, seed=seed,
                       general={"path": str(general), "ratio": ratio, "schedule": "constant", "held_out": 0.2})


#: the learning-rate schedules of the grid: name -> TrainConfig fields
SCHEDULES = {
    "cosine-task": {"lr_scheduler": "cosine", "lr_scheduler_scope": "task"},
    "cosine-stream": {"lr_scheduler": "cosine", "lr_scheduler_scope": "stream"},
    "wsd-stream": {"lr_scheduler": "warmup_stable_decay", "lr_scheduler_scope": "stream"},
}
#: model presets: name -> (hidden, layers, heads)
MODELS = {"small": (48, 2, 2), "20m": (512, 6, 8)}


def make_model(stream, args, seed: int) -> torch.nn.Module:
    hidden, layers, heads = MODELS[args.model]
    return tiny_causal_lm(stream, hidden=hidden, heads=heads, layers=layers, seed=seed)


def pretrain(stream, args, seed: int) -> torch.nn.Module:
    """The 'pre-trained' model: ``--pretrain`` AdamW steps on the general corpus alone."""
    torch.manual_seed(seed)
    model = make_model(stream, args, seed)
    obj = CausalLMObjective(stream)
    train = stream.info["general"]["train"]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(args.pretrain):
        part = train.take(torch.randint(train.size, (args.batch,), generator=g))
        loss = obj.loss(obj.forward(model, part), part)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def run(stream, base: torch.nn.Module, ratio: float, schedule: str, seed: int, args):
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, optimizer="adamw", device="cpu",
                      seed=seed, eval_every=args.eval_every, log_every=1, warmup_ratio=0.1, eval_batch_size=256,
                      **SCHEDULES[schedule])
    torch.manual_seed(seed)
    result = train_stream(stream, copy.deepcopy(base), Recipe(), cfg)
    config = {"train": dataclasses.asdict(cfg), "seed": seed, "benchmark": {"params": {"general": {"ratio": ratio}}}}
    curves = run_curves(result.schedule_log, config, result.task_steps, label=f"r={ratio:g} {schedule} s{seed}")
    curves.schedule = schedule
    val = [r for r in result.schedule_log if "general/val_loss" in r]
    n = len(stream)
    ends = {}
    for r in val:  # the last validation row of each phase is its task end
        ends[r["task"]] = r
    final = val[-1]
    forgetting = float(np.mean([final[f"domain/{j}/val_loss"] - ends[j][f"domain/{j}/val_loss"]
                                for j in range(n - 1)]))
    counts = [r for r in result.schedule_log if "general/tokens" in r][-1]
    tokens = counts["general/tokens"] + counts["general/task_tokens"]
    seconds = sum(result.task_seconds)
    row = {"ratio": ratio, "schedule": schedule, "seed": seed, "general": curves.final_general,
           "domain": curves.final_domain, "forgetting": forgetting, "share": counts["general/token_share"],
           "tokens": tokens, "tokens_per_s": tokens / seconds if seconds > 0 else float("nan")}
    return row, curves


def _ms(values) -> str:
    """Mean ± sample std over the seeds (the comparison table's format)."""
    return Stat.of(values).format()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(MODELS), default="small")
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.25, 0.5])
    ap.add_argument("--schedules", nargs="+", choices=sorted(SCHEDULES), default=list(SCHEDULES))
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=60, help="optimiser steps per domain")
    ap.add_argument("--pretrain", type=int, default=150)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--rows", type=int, default=300, help="rows per domain (the general corpus has twice as many)")
    ap.add_argument("--eval-every", type=int, default=5)
    ap.add_argument("--fit-until", type=float, default=0.3, help="share of each run's steps the CPT law is fitted on")
    ap.add_argument("--tolerance", type=float, nargs="+", default=[0.1, 0.5, 1.0],
                    help="tolerated general-loss increases (nats) for the critical mixture ratio")
    ap.add_argument("--time-one-step", action="store_true", help="build the model, time one training step, exit")
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LIFELONG_CACHE"] = str(Path(tmp) / "cache")
        folder = Path(tmp)
        base_stream = build_stream(folder, 0, args.rows, 0.0)
        probe = make_model(base_stream, args, 0)
        n_params = sum(p.numel() for p in probe.parameters())
        print(f"model {args.model}: {n_params:,} parameters ({n_params / 1e6:.2f}M); vocabulary "
              f"{len(base_stream.info['tokenizer'])}, {len(base_stream)} domains", flush=True)
        if args.time_one_step:
            obj = CausalLMObjective(base_stream)
            opt = torch.optim.AdamW(probe.parameters(), lr=args.lr)
            part = base_stream[0].train.take(torch.arange(args.batch))
            for k in range(3):
                s = time.perf_counter()
                loss = obj.loss(obj.forward(probe, part), part)
                opt.zero_grad()
                loss.backward()
                opt.step()
                print(f"step {k}: {time.perf_counter() - s:.2f}s", flush=True)
            return
        rows, curves, base_general = [], [], []
        obj = CausalLMObjective(base_stream)
        print(f"{'r':>5} {'schedule':>13} {'seed':>4} {'general':>8} {'domain':>7} {'forget':>7} {'share':>6} "
              f"{'tok/s':>8}", flush=True)
        for seed in args.seeds:
            base = pretrain(base_stream, args, seed)
            base_general.append(obj.token_loss(base, base_stream.info["general"]["test"], "cpu", 256))
            for schedule in args.schedules:
                for ratio in args.ratios:
                    s = build_stream(folder, 0, args.rows, ratio)
                    row, c = run(s, base, ratio, schedule, seed, args)
                    rows.append(row)
                    curves.append(c)
                    print(f"{ratio:5.2f} {schedule:>13} {seed:4d} {row['general']:8.4f} {row['domain']:7.4f} "
                          f"{row['forgetting']:7.4f} {row['share']:6.3f} {row['tokens_per_s']:8.0f}", flush=True)
    print(f"pre-trained general loss ({args.pretrain} steps): {_ms(base_general)} over seeds {args.seeds}")
    print(f"\nmean ± std over {len(args.seeds)} seed(s), {args.steps} steps per domain, "
          f"{min(r['tokens'] for r in rows):.0f}-{max(r['tokens'] for r in rows):.0f} training tokens per run")
    print("| r | schedule | general | domain | forgetting | tokens/s |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for schedule in args.schedules:
        for ratio in args.ratios:
            cell = [r for r in rows if r["ratio"] == ratio and r["schedule"] == schedule]
            print(f"| {ratio:g} | {schedule} | {_ms([r['general'] for r in cell])} | {_ms([r['domain'] for r in cell])} "
                  f"| {_ms([r['forgetting'] for r in cell])} | {np.mean([r['tokens_per_s'] for r in cell]):.0f} |")
    res = study(curves, fit_until=args.fit_until, tolerances=args.tolerance, holdout="half")
    print(f"\nCPT law fitted on the first {args.fit_until:.0%} of the steps, one fit per ratio (all schedules and "
          "seeds); relative error of the predicted final loss (mean over runs) and of every later point:")
    print("| r | general final | general later points | domain final | domain later points |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for key in sorted(res.cpt, key=lambda k: (k is None, k or 0.0)):
        fits = res.cpt[key]
        g, d = fits.get("general"), fits.get("domain")
        cell = lambda f, a: "—" if f is None else f"{getattr(f, a):.4f}"  # noqa: E731
        print(f"| {key:g} | {cell(g, 'final_error')} | {cell(g, 'error')} | {cell(d, 'final_error')} "
              f"| {cell(d, 'error')} |")
    for key, fits in res.cpt.items():
        for which, f in fits.items():
            print(f"  r={key:g} {which}: " + ", ".join(f"{k}={v:.4g}" for k, v in f.law.to_dict().items()))
    for s in res.skipped:
        print(f"skipped: {s}")
    per_phase, phase_skipped = phase_study(curves, fit_until=args.fit_until)
    print(f"\nCPT law per phase (one domain shift each, the paper's setting): fitted on the first "
          f"{args.fit_until:.0%} of each phase, one fit per (ratio, phase); relative error of the predicted "
          "phase-end general loss and loss of the domain being learned (mean over runs):")
    print("| r | phase | general end | domain end |")
    print("| ---: | ---: | ---: | ---: |")
    phase_errs = []
    for key in sorted(per_phase, key=lambda k: (k[0] is None, k[0] or 0.0, k[1])):
        g, d = per_phase[key].get("general"), per_phase[key].get("domain")
        phase_errs += [f.final_error for f in (g, d) if f is not None]
        print(f"| {key[0]:g} | {key[1]} | {'—' if g is None else f'{g.final_error:.4f}'} "
              f"| {'—' if d is None else f'{d.final_error:.4f}'} |")
    if phase_skipped:
        print(f"skipped {len(phase_skipped)} per-phase fit(s); the first: {phase_skipped[0]}")
    if phase_errs:
        print(f"per-phase CPT law, mean relative error of predicted phase-end losses: {np.mean(phase_errs):.4f}")
    if res.mixture is not None:
        m = res.mixture
        print(f"\nmixture law fitted on {sum(not r[7] for r in m.rows)} runs, predicting the final losses of "
              f"{sum(r[7] for r in m.rows)} held-out runs: relative error general {m.general_error:.4f}, "
              f"domain {m.domain_error:.4f}")
        print("  general law: " + ", ".join(f"{k}={v:.4g}" for k, v in m.general.to_dict().items()))
        print("  domain law: " + ", ".join(f"{k}={v:.4g}" for k, v in m.domain.to_dict().items()))
        for label, ratio, tok, g, pg, d, pd, held in m.rows:
            if held:
                print(f"  held out {label}: general {g:.4f} predicted {pg:.4f}; domain {d:.4f} predicted {pd:.4f}")
    if res.mixture_all is not None:
        print("general-loss law fitted on all runs: "
              + ", ".join(f"{k}={v:.4g}" for k, v in res.mixture_all.general.to_dict().items()))
    for tol, cmr in res.cmr:
        print(f"critical mixture ratio (general share keeping general loss within {tol:g} nats of "
              f"{res.base_general:.4f} after {res.tokens:.0f} tokens): r* = {cmr:.3f} (domain share {1 - cmr:.3f})")
    print(f"wall {time.perf_counter() - t0:.0f}s")
    print(f"cpt_prediction_error: {res.cpt_prediction_error:.4f}")


if __name__ == "__main__":
    main()
