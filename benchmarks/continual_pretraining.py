"""Continual pre-training with general-data replay: what the mixture ratio and the LR scope cost, and a fitted law.

Generated data (offline, seconds): a *general* corpus (English-like sentences
over a 60-word vocabulary) and three *domain* corpora learned in turn, as
plain text in the ``text`` benchmark (character tokenizer fitted on all four):
``math`` (``17+25=42`` sums), ``code`` (``def f3(x): return x*3+1`` lines)
and ``dna`` (base strings with a motif). A tiny GPT-2 (``--hidden``,
``--layers``) is first pre-trained on the general corpus alone
(``--pretrain`` steps), then each grid point starts from that model and
learns the three domains with the general corpus mixed in at a share ``r``
of each batch's tokens (``GeneralMixture``, constant schedule), with a cosine
learning-rate schedule (10% warm-up) either re-warmed per task
(``lr_scheduler_scope: task``) or one decay over the whole stream
(``stream``).

Printed per run: final general validation loss, final domain loss (mean over
the three domains' test splits), forgetting (mean over the first two domains
of final loss minus the loss right after the domain was learned), the measured
general token share and tokens/s (training tokens, general and domain, over
training seconds). Then the mixture law of :mod:`lifelong.assessment.laws`
(``L_g = E + A (1 - r)^a D^b``, ``L_d = E + B ((1 - r) D)^-c``) is fitted on
every validation point (every ``eval_every`` steps) of half the runs
(a checkerboard over ratio x scope) and predicts the final general and domain losses
of the other half; its mean relative error is the last line,
``cpt_prediction_error: X``. The critical mixture ratio (the smallest general
share keeping the general loss within each ``--tolerance`` (nats) of the pre-trained
model's) comes from the law fitted on all runs.

Usage: python benchmarks/continual_pretraining.py [--steps 30] [--ratios 0 0.1 0.25 0.5] [--seed 0]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lifelong.assessment.laws import (critical_mixture_ratio, fit_domain_loss, fit_general_loss,  # noqa: E402
                                      mean_relative_error)
from lifelong.engine.config import Recipe, TrainConfig  # noqa: E402
from lifelong.engine.loop import train_stream  # noqa: E402
from lifelong.hf.models import tiny_causal_lm  # noqa: E402
from lifelong.hf.objective import CausalLMObjective  # noqa: E402
from lifelong.hf.text import text_stream  # noqa: E402

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


def pretrain(stream, args) -> torch.nn.Module:
    """The 'pre-trained' model: ``--pretrain`` AdamW steps on the general corpus alone."""
    torch.manual_seed(args.seed)
    model = tiny_causal_lm(stream, hidden=args.hidden, heads=2, layers=args.layers, seed=args.seed)
    obj = CausalLMObjective(stream)
    train = stream.info["general"]["train"]
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr)
    g = torch.Generator().manual_seed(args.seed)
    model.train()
    for _ in range(args.pretrain):
        part = train.take(torch.randint(train.size, (args.batch,), generator=g))
        loss = obj.loss(obj.forward(model, part), part)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def run(stream, base: torch.nn.Module, ratio: float, scope: str, args) -> dict:
    cfg = TrainConfig(steps=args.steps, batch_size=args.batch, lr=args.lr, optimizer="adamw", device="cpu",
                      seed=args.seed, eval_every=args.eval_every, log_every=args.eval_every, lr_scheduler="cosine",
                      warmup_ratio=0.1, lr_scheduler_scope=scope, eval_batch_size=256)
    torch.manual_seed(args.seed)
    result = train_stream(stream, copy.deepcopy(base), Recipe(), cfg)
    log = result.schedule_log
    val = [r for r in log if "general/val_loss" in r]
    n = len(stream)
    domain = lambda r: float(np.mean([r[f"domain/{j}/val_loss"] for j in range(n)]))  # noqa: E731
    ends = {}
    for r in val:  # the last validation row of each phase is its task end
        ends[r["task"]] = r
    final = val[-1]
    forgetting = float(np.mean([final[f"domain/{j}/val_loss"] - ends[j][f"domain/{j}/val_loss"]
                                for j in range(n - 1)]))
    counts = [r for r in log if "general/tokens" in r][-1]
    tokens = counts["general/tokens"] + counts["general/task_tokens"]
    seconds = sum(result.task_seconds)
    # validation points: (general share, tokens trained so far, losses); tokens grow linearly in steps
    per_step = tokens / (n * args.steps)
    points = [(ratio, per_step * r["step"], r["general/val_loss"], domain(r)) for r in val]
    return {"ratio": ratio, "scope": scope, "general": final["general/val_loss"], "domain": domain(final),
            "forgetting": forgetting, "share": counts["general/token_share"], "tokens": tokens,
            "tokens_per_s": tokens / seconds if seconds > 0 else float("nan"), "points": points}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ratios", type=float, nargs="+", default=[0.0, 0.1, 0.25, 0.5])
    ap.add_argument("--scopes", nargs="+", default=["task", "stream"])
    ap.add_argument("--steps", type=int, default=30, help="optimiser steps per domain")
    ap.add_argument("--pretrain", type=int, default=150)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--hidden", type=int, default=48)
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--rows", type=int, default=300, help="rows per domain (the general corpus has twice as many)")
    ap.add_argument("--eval-every", type=int, default=10)
    ap.add_argument("--tolerance", type=float, nargs="+", default=[0.1, 0.5, 1.0],
                    help="tolerated general-loss increases (nats) for the CMR")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        import os

        os.environ["LIFELONG_CACHE"] = str(Path(tmp) / "cache")
        folder = Path(tmp)
        base_stream = build_stream(folder, args.seed, args.rows, 0.0)
        base = pretrain(base_stream, args)
        obj = CausalLMObjective(base_stream)
        base_general = obj.token_loss(base, base_stream.info["general"]["test"], "cpu", 256)
        print(f"pre-trained general loss {base_general:.4f} ({args.pretrain} steps); domain losses before: "
              + ", ".join(f"{t.name} {obj.token_loss(base, t, 'cpu', 256):.3f}" for t in base_stream))
        rows = []
        print(f"{'r':>5} {'scope':>6} {'general':>8} {'domain':>7} {'forget':>7} {'share':>6} {'tok/s':>8}")
        for scope in args.scopes:
            for ratio in args.ratios:
                s = build_stream(folder, args.seed, args.rows, ratio)
                row = run(s, base, ratio, scope, args)
                rows.append(row)
                print(f"{ratio:5.2f} {scope:>6} {row['general']:8.4f} {row['domain']:7.4f} {row['forgetting']:7.4f} "
                      f"{row['share']:6.3f} {row['tokens_per_s']:8.0f}", flush=True)
    # fit on half the runs, predict the other half's final losses
    # (checkerboard: r index + scope index even -> fit), so both scopes and every r appear on each side
    side = [(args.ratios.index(r["ratio"]) + args.scopes.index(r["scope"])) % 2 for r in rows]
    fit_rows = [r for r, k in zip(rows, side) if k == 0]
    held = [r for r, k in zip(rows, side) if k == 1]
    pts = [p for r in fit_rows for p in r["points"]]
    r_, d_, g_, dom_ = (np.array(v, float) for v in zip(*pts))
    g_law, d_law = fit_general_loss(r_, d_, g_), fit_domain_loss(r_, d_, dom_)
    pred_g = g_law.predict([r["ratio"] for r in held], [r["tokens"] for r in held])
    pred_d = d_law.predict([r["ratio"] for r in held], [r["tokens"] for r in held])
    err_g = mean_relative_error(pred_g, [r["general"] for r in held])
    err_d = mean_relative_error(pred_d, [r["domain"] for r in held])
    print(f"general-loss law fitted on {len(pts)} points of {len(fit_rows)} runs: "
          + ", ".join(f"{k}={v:.4g}" for k, v in g_law.to_dict().items()))
    print(f"domain-loss law: " + ", ".join(f"{k}={v:.4g}" for k, v in d_law.to_dict().items()))
    for r, pg, pd in zip(held, pred_g, pred_d):
        print(f"  held out r={r['ratio']:.2f} {r['scope']}: general {r['general']:.4f} predicted {pg:.4f}; "
              f"domain {r['domain']:.4f} predicted {pd:.4f}")
    print(f"relative error of predicted final losses: general {err_g:.4f}, domain {err_d:.4f}")
    allp = [p for r in rows for p in r["points"]]
    ra, da, ga, _ = (np.array(v, float) for v in zip(*allp))
    law_all = fit_general_loss(ra, da, ga)
    tokens = float(np.mean([r["tokens"] for r in rows]))
    print("general-loss law fitted on all runs: " + ", ".join(f"{k}={v:.4g}" for k, v in law_all.to_dict().items()))
    for tol in args.tolerance:
        cmr = critical_mixture_ratio(law_all, base_general, tol, tokens)
        print(f"critical mixture ratio (general share keeping general loss within {tol} of "
              f"{base_general:.4f} after {tokens:.0f} tokens): r* = {cmr:.3f} (domain share {1 - cmr:.3f})")
    print(f"wall {time.perf_counter() - t0:.0f}s")
    print(f"cpt_prediction_error: {(err_g + err_d) / 2:.4f}")


if __name__ == "__main__":
    main()
