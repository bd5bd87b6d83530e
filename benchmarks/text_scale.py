"""Text at scale: memory and speed of the out-of-core token store at 100k and 1M rows.

For each stream kind (``pairs``: prompt/completion records; ``plain``: plain
text packed into 64-token blocks, continual pre-training) and each size, a
JSONL file of generated two-task rows is written (short rows, so 1M rows
tokenise in about a minute on one core). Then, each in a *fresh* subprocess:

1. ``build``: ``text_stream`` tokenises the file into the cache folder (the
   first, tokenising build; a new, empty cache folder per size);
2. ``train`` (``--repeats`` times, sizes alternating; medians reported):
   ``text_stream`` again (the second, cached build: it opens the
   Arrow file), then ``train_stream`` runs a fixed number of steps (naive,
   tiny Llama, batch 32) over the memory-mapped store and evaluates on a
   fixed 2000-row test file. Tokens/s = non-padding tokens of the training
   batches (counted at ``Pool.take``) / training seconds (evaluation
   excluded, ``RunResult.task_seconds``).

Each child reports its peak RSS (``resource.getrusage(RUSAGE_SELF).ru_maxrss``)
and, at its end, the resident memory split into anonymous and file-backed
pages (``/proc/self/status``): the mapped store's pages that batches touched
count in RSS (clean page-cache pages the kernel can drop at any time), so at
a fixed number of steps they grow with the number of distinct pages touched,
which is larger in a larger file.
The tokenizer is a byte-level BPE (2048 tokens) trained once on 20k generated
rows with :func:`lifelong.hf.tokenizer.train_bpe_tokenizer`; the fast
tokenizer encodes in batches of 1024 records, one thread
(``RAYON_NUM_THREADS=1``, ``torch.set_num_threads(1)``).

Usage: python benchmarks/text_scale.py [--sizes 100000 1000000] [--kinds pairs plain] [--steps 150]
Last line: ``text_scale_rss_ratio: X`` = peak RSS of the training run at the
largest size / at the smallest (worst kind); target <= 1.25. Tokens/s at the
largest size should be within 10% of the smallest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAYON_NUM_THREADS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

WORDS = ("time year people way day man thing woman life child world school state family student group country "
         "problem hand part place case week company system program question work government number night point "
         "home water room mother area money story fact month lot right study book eye job word business issue "
         "side kind head house service friend father power hour game line end member law car city community name "
         "river stone light music paper garden window morning table letter winter summer ocean forest market").split()


def _sentence(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))


def make_rows(kind: str, n: int, seed: int):
    rng = random.Random(f"{kind}/{seed}")
    for i in range(n):
        task = "alpha" if i % 2 == 0 else "beta"
        if kind == "plain":
            yield {"text": _sentence(rng, 6, 14), "task": task}
        else:
            yield {"prompt": f"{task}: {_sentence(rng, 3, 8)} ?", "completion": _sentence(rng, 1, 4), "task": task}


def write_jsonl(path: Path, rows) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    os.replace(tmp, path)


def stream_params(kind: str, path: Path, test: Path, tokenizer: str) -> dict:
    p = dict(path=str(path), test_path=str(test), tokenizer=tokenizer, max_length=64)
    if kind == "plain":
        p.update(text_field="text", pack=True, block_size=64)
    return p


def child(a: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    import transformers  # noqa: F401  (imported before the clock starts: its import is not the store's cost)

    from lifelong.engine import pool as pool_mod
    from lifelong.hf.text import text_stream

    params = stream_params(a.kind, Path(a.data), Path(a.test), a.tokenizer)
    t0 = time.perf_counter()
    stream = text_stream(seed=0, **params)
    build_s = time.perf_counter() - t0
    out = {"build_s": build_s, "train_rows": sum(t.num_train for t in stream.tasks)}
    if a.mode == "train":
        from lifelong.engine.config import TrainConfig
        from lifelong.engine.loop import train_stream
        from lifelong.hf.models import tiny_causal_lm
        from lifelong.strategies import STRATEGIES

        tokens = [0]
        take = pool_mod.Pool.take

        def counting_take(self, index):
            batch = take(self, index)
            tokens[0] += int(batch["attention_mask"].sum())
            return batch

        pool_mod.Pool.take = counting_take
        model = tiny_causal_lm(stream, size="tiny", seed=0)
        cfg = TrainConfig(steps=a.steps, batch_size=32, lr=1e-3, optimizer="adamw", device="cpu", seed=0,
                          log_every=0, eval_batch_size=256)
        result = train_stream(stream, model, STRATEGIES.get("naive")(), cfg)
        out.update(tokens=tokens[0], train_s=sum(result.task_seconds), tokens_per_s=tokens[0] / sum(result.task_seconds),
                   accuracy=result.accuracy[-1])
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    status = Path("/proc/self/status")
    if status.is_file():  # resident memory at the end split into anonymous and file-backed (the mapped store)
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        for name, key in (("RssAnon", "anon_rss_mb"), ("RssFile", "file_rss_mb")):
            if name in fields:
                out[key] = int(fields[name].split()[0]) / 1024
    print("RESULT " + json.dumps(out), flush=True)


def run_child(mode: str, kind: str, data: Path, test: Path, tok: str, cache: Path, steps: int) -> dict:
    env = dict(os.environ, LIFELONG_CACHE=str(cache), PYTHONPATH=os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, __file__, "--child", mode, "--kind", kind, "--data", str(data), "--test", str(test),
           "--tokenizer", tok, "--steps", str(steps)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"child {mode} {kind} {data.name} failed (rc {proc.returncode})")
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    ap.add_argument("--kinds", nargs="+", default=["pairs", "plain"])
    ap.add_argument("--steps", type=int, default=150, help="training steps per task (2 tasks)")
    ap.add_argument("--repeats", type=int, default=3, help="training runs per size (medians are reported)")
    ap.add_argument("--work", default=None, help="folder for generated data (default: a temp folder)")
    ap.add_argument("--child", choices=["build", "train"], default=None)
    ap.add_argument("--kind", default="pairs")
    ap.add_argument("--data")
    ap.add_argument("--test")
    ap.add_argument("--tokenizer")
    a = ap.parse_args()
    if a.child:
        a.mode = a.child
        child(a)
        return
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from lifelong.hf.tokenizer import train_bpe_tokenizer

    work = Path(a.work or tempfile.mkdtemp(prefix="lifelong-text-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    tok_dir = work / "bpe"
    if not (tok_dir / "tokenizer.json").is_file():
        texts = [r.get("text") or r["prompt"] + " " + r["completion"]
                 for kind in a.kinds for r in make_rows(kind, 10_000, seed=99)]
        train_bpe_tokenizer(texts, vocab_size=2048).save_pretrained(str(tok_dir))
    print(f"work folder {work}; tokenizer {tok_dir} (BPE, 2048 tokens); {a.steps} steps x 2 tasks, batch 32; "
          f"medians of {a.repeats} training runs per size")
    print(f"{'kind':6} {'rows':>9} {'1st build s':>11} {'2nd build s':>11} {'build RSS MB':>12} "
          f"{'train RSS MB':>12} {'anon MB':>8} {'file MB':>8} {'tokens/s':>9}")
    table: dict[tuple[str, int], dict] = {}
    for kind in a.kinds:
        test = work / f"{kind}-test.jsonl"
        if not test.is_file():
            write_jsonl(test, make_rows(kind, 2000, seed=7))
        caches = {}
        for n in a.sizes:
            data = work / f"{kind}-{n}.jsonl"
            if not data.is_file():
                write_jsonl(data, make_rows(kind, n, seed=1))
            caches[n] = Path(tempfile.mkdtemp(prefix=f"cache-{kind}-{n}-", dir=work))
            table[(kind, n)] = {"first": run_child("build", kind, data, test, str(tok_dir), caches[n], a.steps),
                                "runs": []}
        for _ in range(a.repeats):  # sizes alternate, so drifts in machine load hit all of them
            for n in a.sizes:
                table[(kind, n)]["runs"].append(run_child("train", kind, work / f"{kind}-{n}.jsonl", test,
                                                          str(tok_dir), caches[n], a.steps))
        for n in a.sizes:
            runs = table[(kind, n)]["runs"]
            first = table[(kind, n)]["first"]
            second = {k: statistics.median(r[k] for r in runs) for k in runs[0] if isinstance(runs[0][k], float)}
            table[(kind, n)]["second"] = second
            print(f"{kind:6} {n:>9} {first['build_s']:>11.1f} {second['build_s']:>11.2f} "
                  f"{first['peak_rss_mb']:>12.0f} {second['peak_rss_mb']:>12.0f} {second.get('anon_rss_mb', 0):>8.0f} "
                  f"{second.get('file_rss_mb', 0):>8.0f} {second['tokens_per_s']:>9.0f}", flush=True)
    lo, hi = min(a.sizes), max(a.sizes)
    rss, speed = [], []
    for kind in a.kinds:
        r = table[(kind, hi)]["second"]["peak_rss_mb"] / table[(kind, lo)]["second"]["peak_rss_mb"]
        b = table[(kind, hi)]["first"]["peak_rss_mb"] / table[(kind, lo)]["first"]["peak_rss_mb"]
        s = table[(kind, hi)]["second"]["tokens_per_s"] / table[(kind, lo)]["second"]["tokens_per_s"]
        rss.append(r)
        speed.append(s)
        print(f"{kind}: train RSS ratio {hi}/{lo} = {r:.3f}; build RSS ratio = {b:.3f}; tokens/s ratio = {s:.3f}")
    print(f"text_scale_tokens_per_s_ratio: {min(speed):.3f}")
    print(f"text_scale_rss_ratio: {max(rss):.3f}")


if __name__ == "__main__":
    main()
