"""Write the corpora of ``examples/llm/continual-pretraining.yaml``: a general corpus and three domains.

Continual pre-training learns new domains one after another while a share
``r`` of every batch's tokens comes from the general corpus the model
should keep (general-data replay). The files are small and made up, so the
example runs offline in minutes:

* ``general.txt``: English-like sentences from a small grammar, one per line
  (the general corpus; part of it is held out for the general validation loss);
* ``arith.jsonl``: sums and differences written out, ``41 + 7 = 48``;
* ``code.jsonl``: one-line Python loops, ``for i in range(6): total += i * 3``;
* ``chords.jsonl``: four-bar chord progressions, ``| C | Am | F | G |``.

Every domain record is ``{"text": ..., "task": ...}`` (plain text, learned
whole). A seeded generator writes the same bytes on every machine. Usage
(from the repository root)::

    python examples/make_cpt_corpus.py [--rows 300] [--out examples/data/cpt]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

SUBJECTS = "the farmer|a child|the old sailor|my neighbour|the teacher|a small dog|the baker|her brother".split("|")
VERBS = "found|carried|painted|wanted|borrowed|cleaned|forgot|watched".split("|")
OBJECTS = "a red kite|the heavy box|an old map|the garden gate|a warm coat|the kitchen window|a paper boat".split("|")
PLACES = "near the river|after dinner|in the morning|by the market|before the rain|at the station".split("|")
ENDINGS = "and smiled|and went home|but said nothing|while it was quiet|because it was late".split("|")
CHORDS = "C Dm Em F G Am".split()


def general(rng: random.Random, n: int) -> list[str]:
    out = []
    for _ in range(n):
        words = [rng.choice(SUBJECTS), rng.choice(VERBS), rng.choice(OBJECTS)]
        if rng.random() < 0.6:
            words.append(rng.choice(PLACES))
        if rng.random() < 0.4:
            words.append(rng.choice(ENDINGS))
        sentence = " ".join(words)
        out.append(sentence[0].upper() + sentence[1:] + ".")
    return out


def arith(rng: random.Random) -> str:
    a, b = rng.randrange(100), rng.randrange(100)
    return f"{a} + {b} = {a + b}" if rng.random() < 0.5 else f"{max(a, b)} - {min(a, b)} = {abs(a - b)}"


def code(rng: random.Random) -> str:
    var = rng.choice(["total", "acc", "s", "n"])
    return f"for i in range({rng.randrange(2, 10)}): {var} += i * {rng.randrange(1, 10)}"


def chords(rng: random.Random) -> str:
    bars = [rng.choice(CHORDS) for _ in range(3)] + ["G" if rng.random() < 0.5 else "C"]
    return "| " + " | ".join(bars) + " |"


DOMAINS = {"arith": arith, "code": code, "chords": chords}


def write(out: Path, rows: int, seed: int = 0) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = [out / "general.txt"]
    files[0].write_text("\n".join(general(random.Random(f"general/{seed}"), 2 * rows)) + "\n", encoding="utf-8")
    for task, make in DOMAINS.items():
        rng = random.Random(f"{task}/{seed}")
        path = out / f"{task}.jsonl"
        path.write_text("".join(json.dumps({"text": make(rng), "task": task}) + "\n" for _ in range(rows)),
                        encoding="utf-8")
        files.append(path)
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=300, help="records per domain (the general corpus has twice as many)")
    ap.add_argument("--out", default="examples/data/cpt")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    for path in write(Path(args.out), args.rows, args.seed):
        print(f"{path}  {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
