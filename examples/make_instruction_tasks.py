"""Write the three instruction-tuning tasks of ``examples/llm/instruction-tuning.yaml`` as JSONL chat files.

Each record is one conversation in the chat ``messages`` format
(``[{"role": "system"|"user"|"assistant", "content": ...}]``) with a ``task``
field; only the assistant turn is learned. The three skills are taught one
after another, so the run shows how much of the first is kept:

* ``reverse``: "Reverse the word: lamp" -> "pmal"
* ``sort``: "Sort the letters: lamp" -> "almp"
* ``vowels``: "Remove the vowels: lamp" -> "lmp"

Words are drawn from a fixed list with a seed, so the files are the same on
every machine. Usage (from the repository root)::

    python examples/make_instruction_tasks.py [--rows 400] [--out examples/data/instruction]
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

WORDS = ("lamp river stone cloud maple tiger honey piano candle garden silver orange planet window pencil "
         "rocket forest bridge winter summer violet castle dragon marble saddle lemon shadow mirror anchor "
         "basket button carpet copper desert engine falcon ginger harbor island jacket kettle ladder magnet "
         "needle oyster parrot quartz rabbit salmon timber velvet walnut yellow zebra").split()
SYSTEM = "You are a careful assistant. Answer with the result only."
SKILLS = {
    "reverse": ("Reverse the word: {w}", lambda w: w[::-1]),
    "sort": ("Sort the letters: {w}", lambda w: "".join(sorted(w))),
    "vowels": ("Remove the vowels: {w}", lambda w: "".join(c for c in w if c not in "aeiou")),
}


def conversations(skill: str, rows: int, seed: int) -> list[dict]:
    ask, answer = SKILLS[skill]
    rng = random.Random(f"{skill}/{seed}")
    out = []
    for _ in range(rows):
        word = rng.choice(WORDS)
        w = "".join(rng.sample(word, k=min(len(word), rng.randint(3, 5))))  # some letters of a word, shuffled
        messages = [{"role": "user", "content": ask.format(w=w)}, {"role": "assistant", "content": answer(w)}]
        if rng.random() < 0.5:
            messages.insert(0, {"role": "system", "content": SYSTEM})
        out.append({"messages": messages, "task": skill})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=400, help="conversations per task")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "data" / "instruction"))
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for skill in SKILLS:
        path = out / f"{skill}.jsonl"
        with open(path, "w", encoding="utf-8") as fh:
            for rec in conversations(skill, a.rows, a.seed):
                fh.write(json.dumps(rec) + "\n")
        print(f"wrote {path} ({a.rows} conversations)")


if __name__ == "__main__":
    main()
