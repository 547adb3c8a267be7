"""Ranking metrics at a cut-off ``k`` (binary relevance), and the list-level measures.

For one test case with the recommended list ``recs`` (best first) and the relevant set ``truth``:

- ``hit``    1 if any relevant item is in the top k (HR@k when one item is relevant)
- ``rr``     1 / rank of the first relevant item in the top k, else 0 (MRR@k)
- ``recall`` relevant items in the top k / all relevant items
- ``ndcg``   DCG / ideal DCG, DCG = sum over relevant items at rank r (1-based) of 1 / log2(r + 1),
             ideal: all min(|truth|, k) relevant items at the top

Over all test cases: the mean of each; ``coverage`` = distinct items recommended / catalog size;
``popularity bias`` = the mean popularity percentile (0 = least, 1 = most popular item of the
train data) of the recommended items: 1.0 would be "always the best sellers".
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np


def hit(recs: Sequence[int], truth: Iterable[int], k: int = 20) -> float:
    t = set(truth)
    return 1.0 if any(r in t for r in list(recs)[:k]) else 0.0


def rr(recs: Sequence[int], truth: Iterable[int], k: int = 20) -> float:
    t = set(truth)
    for pos, r in enumerate(list(recs)[:k]):
        if r in t:
            return 1.0 / (pos + 1)
    return 0.0


def recall(recs: Sequence[int], truth: Iterable[int], k: int = 20) -> float:
    t = set(truth)
    if not t:
        return 0.0
    return len(t & set(list(recs)[:k])) / len(t)


def ndcg(recs: Sequence[int], truth: Iterable[int], k: int = 20) -> float:
    t = set(truth)
    if not t:
        return 0.0
    dcg = sum(1.0 / math.log2(pos + 2) for pos, r in enumerate(list(recs)[:k]) if r in t)
    idcg = sum(1.0 / math.log2(pos + 2) for pos in range(min(len(t), k)))
    return dcg / idcg


def popularity_percentile(counts: np.ndarray) -> np.ndarray:
    """Per item, its popularity percentile in [0, 1] (ties share the mean rank)."""
    n = len(counts)
    if n <= 1:
        return np.ones(n)
    from scipy.stats import rankdata
    return (rankdata(counts, method="average") - 1) / (n - 1)


class Accumulator:
    """Collects one system's lists on one task and gives the means."""

    def __init__(self, k: int, n_items: int, pop_pct: np.ndarray):
        self.k = k
        self.n_items = n_items
        self.pop_pct = pop_pct
        self.sums = {"hit": 0.0, "rr": 0.0, "recall": 0.0, "ndcg": 0.0}
        self.sq = {"hit": 0.0, "rr": 0.0, "recall": 0.0, "ndcg": 0.0}
        self.n = 0
        self.empty = 0
        self.items: set[int] = set()
        self.pop_sum = 0.0
        self.pop_n = 0
        self.seconds = 0.0

    def add(self, recs: Sequence[int], truth: Iterable[int]) -> None:
        recs = list(recs)[:self.k]
        t = set(truth)
        self.n += 1
        if not recs:
            self.empty += 1
            return
        for name, fn in (("hit", hit), ("rr", rr), ("recall", recall), ("ndcg", ndcg)):
            v = fn(recs, t, self.k)
            self.sums[name] += v
            self.sq[name] += v * v
        self.items.update(recs)
        valid = [r for r in recs if 0 <= r < len(self.pop_pct)]
        self.pop_sum += float(self.pop_pct[valid].sum()) if valid else 0.0
        self.pop_n += len(valid)

    def result(self) -> dict:
        n = max(self.n, 1)
        return {"cases": self.n, "empty": self.empty,
                **{name: round(v / n, 4) for name, v in self.sums.items()},
                **{f"se_{name}": round(math.sqrt(max(self.sq[name] / n - (v / n) ** 2, 0.0) / n), 4)
                   for name, v in self.sums.items()},
                "coverage": round(len(self.items) / max(self.n_items, 1), 4),
                "pop_bias": round(self.pop_sum / self.pop_n, 4) if self.pop_n else None,
                "ms_per_case": round(1000 * self.seconds / n, 3)}
