"""``arithmetic-skills``: an offline benchmark of generated arithmetic skills for small LMs.

One task per skill (addition, subtraction, multiplication), taught one after
another. Each example is a prompt ``"47+5="`` with the completion ``"52"``
and is scored by exact match of the completion. Problems come in difficulty
levels by digit count (level ``d``: both operands have ``d`` digits), stored
per sample in the ``difficulty`` field so easy-to-hard curricula can order
them -- the setting of the small-transformer studies in "Self-Improving
Transformers Overcome Easy-to-Hard and Length Generalization Challenges"
(arithmetic, easy-to-hard) and "Skill-it!" (ordered skills).

Train and test problems are disjoint: every ``(skill, a, b)`` problem is
assigned to the test side or the train side by a fixed hash, so exact match on
the test set measures the learned procedure, not memorised pairs, at every
level (even 1-digit problems, of which there are only 100).

``reverse_answer=True`` writes answers least-significant digit first, which
small transformers learn far more easily for addition (the carry then flows in
generation order); the default is the ordinary reading order.

Needs only torch: the benchmark registry imports this module to list it.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

import torch

from lifelong.data.benchmarks import BENCHMARKS
from lifelong.data.task import Stream, Task
from lifelong.errors import ConfigError
from lifelong.hf.encoding import encode_pairs, pair_lengths
from lifelong.hf.tokenizer import ARITHMETIC_ALPHABET, CharTokenizer

#: skill name -> (operator symbol, function)
SKILLS: dict[str, tuple[str, Callable[[int, int], int]]] = {
    "add": ("+", lambda a, b: a + b),
    "sub": ("-", lambda a, b: a - b),
    "mul": ("*", lambda a, b: a * b),
}


def _is_test(skill_id: int, a: int, b: int, test_share: float) -> bool:
    """Deterministic train/test assignment of one problem (independent of the seed)."""
    h = (a * 2654435761 + b * 40503 + skill_id * 97 + 12345) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * 0x5BD1E995) & 0xFFFFFFFF
    h ^= h >> 15
    return (h % 1000) < test_share * 1000


def _operands(rng: random.Random, digits: int) -> tuple[int, int]:
    lo = 0 if digits == 1 else 10 ** (digits - 1)
    hi = 10 ** digits - 1
    return rng.randint(lo, hi), rng.randint(lo, hi)


def problems(skill: str, n: int, levels: Sequence[int], split: str, rng: random.Random,
             test_share: float = 0.2, reverse_answer: bool = False) -> tuple[list[str], list[str], list[int]]:
    """``n`` problems of ``skill`` for ``split`` ('train' or 'test'): prompts, completions, digit counts."""
    sym, fn = SKILLS[skill]
    sid = list(SKILLS).index(skill)
    want_test = split == "test"
    prompts, completions, levels_out = [], [], []
    for i in range(n):
        d = levels[i % len(levels)]
        for _ in range(10_000):
            a, b = _operands(rng, d)
            if skill == "sub" and b > a:
                a, b = b, a  # answers stay non-negative
            if _is_test(sid, a, b, test_share) == want_test:
                break
        ans = str(fn(a, b))
        prompts.append(f"{a}{sym}{b}=")
        completions.append(ans[::-1] if reverse_answer else ans)
        levels_out.append(d)
    order = list(range(n))
    rng.shuffle(order)  # levels interleave; the schedule decides any ordering
    return [prompts[i] for i in order], [completions[i] for i in order], [levels_out[i] for i in order]


@BENCHMARKS.register("arithmetic-skills")
def arithmetic_skills(seed: int = 0, skills: Sequence[str] = ("add", "sub", "mul"), max_digits: int = 2,
                      min_digits: int = 1, train_size: int = 1000, test_size: int = 200,
                      test_share: float = 0.2, reverse_answer: bool = False, general_size: int = 200) -> Stream:
    """Generated arithmetic skills (add, sub, mul) as prompt/completion tasks, one task per skill.

    Parameters: ``skills`` (order = teaching order; any of add, sub, mul),
    ``min_digits``..``max_digits`` (difficulty levels, equally represented),
    ``train_size`` / ``test_size`` examples per task, ``test_share`` of all
    problems reserved for testing, ``reverse_answer`` (answers written
    least-significant digit first), ``general_size`` held-out problems of
    every skill (taught or not) whose answers' perplexity measures general
    arithmetic ability before training and after each task (0 = none).
    """
    skills = [skills] if isinstance(skills, str) else list(skills)
    bad = [s for s in skills if s not in SKILLS]
    if bad or not skills:
        raise ConfigError(f"arithmetic-skills: unknown skill(s) {bad or '(none given)'}; choose from: {', '.join(SKILLS)}.")
    if len(set(skills)) != len(skills):
        raise ConfigError(f"arithmetic-skills: skills {skills} repeat a skill; list each at most once.")
    if not (1 <= int(min_digits) <= int(max_digits) <= 9):
        raise ConfigError(f"arithmetic-skills: need 1 <= min_digits <= max_digits <= 9; got {min_digits}, {max_digits}.")
    if int(train_size) < 1 or int(test_size) < 1:
        raise ConfigError(f"arithmetic-skills: train_size and test_size must be >= 1; got {train_size}, {test_size}.")
    if int(general_size) < 0:
        raise ConfigError(f"arithmetic-skills: general_size must be >= 0; got {general_size}.")
    if not 0.0 < float(test_share) < 1.0:
        raise ConfigError(f"arithmetic-skills: test_share must be in (0, 1); got {test_share}.")
    levels = list(range(int(min_digits), int(max_digits) + 1))
    tok = CharTokenizer(ARITHMETIC_ALPHABET, strict=True)
    raw = []
    for k, skill in enumerate(skills):
        rng = random.Random(f"arithmetic-skills/{seed}/{skill}")
        tr = problems(skill, int(train_size), levels, "train", rng, test_share, reverse_answer)
        te = problems(skill, int(test_size), levels, "test", rng, test_share, reverse_answer)
        raw.append((skill, tr, te))
    # one sequence length for the whole stream: pools and replay memory mix tasks
    width = max(max(pair_lengths(tok, p, c)) for _, split_tr, split_te in raw for p, c, _ in (split_tr, split_te))
    tasks = []
    for skill, (trp, trc, trd), (tep, tec, ted) in raw:
        train = encode_pairs(tok, trp, trc, length=width, source=f"arithmetic-skills/{skill}/train")
        test = encode_pairs(tok, tep, tec, length=width, source=f"arithmetic-skills/{skill}/test")
        train = train.with_fields(difficulty=torch.tensor(trd, dtype=torch.float32))
        test = test.with_fields(difficulty=torch.tensor(ted, dtype=torch.float32))
        info = {"skill": skill, "operator": SKILLS[skill][0], "levels": levels,
                "train_texts": [p + c for p, c in zip(trp, trc)],
                "test_texts": [p + c for p, c in zip(tep, tec)],
                "train_prompts": trp, "train_completions": trc,
                "test_prompts": tep, "test_completions": tec,
                "params": [float(list(SKILLS).index(skill))]}
        tasks.append(Task(skill, train, test, (), info))
    # held-out general problems: test-side problems of every skill (taught or not), from their
    # own random stream; their answers' perplexity measures general arithmetic ability
    general_prompts: list[str] = []
    general_answers: list[str] = []
    if int(general_size):
        rng = random.Random(f"arithmetic-skills/{seed}/general")
        per = -(-int(general_size) // len(SKILLS))
        for skill in SKILLS:
            gp, gc, _ = problems(skill, per, levels, "test", rng, test_share, reverse_answer)
            general_prompts += gp
            general_answers += gc
        general_prompts = general_prompts[: int(general_size)]
        general_answers = general_answers[: int(general_size)]
    return Stream("arithmetic-skills", tasks, scenario="domain", kind="lm",
                  info={"tokenizer": tok, "max_length": width, "reverse_answer": bool(reverse_answer),
                        "seed": int(seed), "general_pairs": (general_prompts, general_answers)})
