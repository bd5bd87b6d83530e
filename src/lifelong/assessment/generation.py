"""Measures of generated answers beyond one greedy exact match: pass@k with sampling.

pass@k is the chance that at least one of k sampled answers to a problem is
correct. Drawing exactly k samples gives a high-variance estimate; Chen et
al. 2021 ("Evaluating Large Language Models Trained on Code") draw n >= k
samples, count the c correct ones and use the unbiased estimator

    pass@k = 1 - C(n - c, k) / C(n, k)

(the chance that a random k-subset of the n samples holds a correct one),
averaged over problems. The binomial ratio overflows for large n, so it is
computed as the product  prod_{i = n-c+1}^{n} (1 - k / i)  (the paper's
numerically stable form). Sampling answers from a language model is in
:func:`lifelong.hf.measures.pass_at_k_task`.
"""

from __future__ import annotations

from typing import Iterable

from lifelong.errors import DataError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem: ``n`` samples drawn, ``c`` of them correct."""
    for name, v in (("n", n), ("c", c), ("k", k)):
        if isinstance(v, bool) or int(v) != v:
            raise DataError(f"pass_at_k: {name} must be an integer; got {v!r}.")
    n, c, k = int(n), int(c), int(k)
    if not (0 <= c <= n and 1 <= k <= n):
        raise DataError(f"pass_at_k needs 0 <= c <= n and 1 <= k <= n; got n={n}, c={c}, k={k}.")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    prob_all_wrong = 1.0
    for i in range(n - c + 1, n + 1):
        prob_all_wrong *= 1.0 - k / i
    return 1.0 - prob_all_wrong


def mean_pass_at_k(counts: Iterable[tuple[int, int]], k: int) -> float:
    """pass@k averaged over problems, from ``(n, c)`` per problem."""
    values = [pass_at_k(n, c, k) for n, c in counts]
    if not values:
        raise DataError("mean_pass_at_k needs at least one problem.")
    return sum(values) / len(values)
