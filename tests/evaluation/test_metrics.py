"""Metric code against hand-computed values."""
import math

import numpy as np
import pytest

from server.evaluation.metrics import Accumulator, hit, ndcg, popularity_percentile, recall, rr


def test_hit_and_rr():
    recs = [5, 3, 9, 1]
    assert hit(recs, {9}) == 1.0
    assert rr(recs, {9}) == pytest.approx(1 / 3)
    assert hit(recs, {7}) == 0.0 and rr(recs, {7}) == 0.0
    # cut-off: the relevant item at rank 4 is outside k=3
    assert hit(recs, {1}, k=3) == 0.0 and rr(recs, {1}, k=3) == 0.0
    # the first relevant item counts
    assert rr(recs, {3, 9}) == pytest.approx(0.5)


def test_recall():
    assert recall([1, 2, 3, 4], {2, 4, 8}) == pytest.approx(2 / 3)
    assert recall([1, 2, 3, 4], {2, 4, 8}, k=2) == pytest.approx(1 / 3)
    assert recall([1, 2], set()) == 0.0


def test_ndcg_hand_computed():
    # relevant {a=1, b=2}; recs [1, 9, 2]: DCG = 1/log2(2) + 1/log2(4) = 1 + 0.5
    # ideal: two relevant at ranks 1, 2: 1 + 1/log2(3)
    assert ndcg([1, 9, 2], {1, 2}) == pytest.approx(1.5 / (1 + 1 / math.log2(3)))
    assert ndcg([1, 2], {1, 2}) == pytest.approx(1.0)
    assert ndcg([9, 8], {1}) == 0.0
    # one relevant item at rank 2: 1/log2(3)
    assert ndcg([9, 1], {1}) == pytest.approx(1 / math.log2(3))
    # more relevant items than k: the ideal has k items
    assert ndcg([1], {1, 2, 3}, k=1) == pytest.approx(1.0)


def test_popularity_percentile():
    p = popularity_percentile(np.array([0, 10, 5, 5]))
    assert p.tolist() == pytest.approx([0.0, 1.0, 0.5, 0.5])


def test_accumulator_means_coverage_and_bias():
    pop = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
    acc = Accumulator(k=2, n_items=5, pop_pct=pop)
    acc.add([4, 3], {3})          # hit at rank 2: rr 0.5, recall 1, ndcg 1/log2(3)
    acc.add([0, 1], {2})          # miss
    acc.add([], {1})              # nothing recommended: counts as a miss and as empty
    r = acc.result()
    assert r["cases"] == 3 and r["empty"] == 1
    assert r["hit"] == pytest.approx(round(1 / 3, 4))
    assert r["rr"] == pytest.approx(round(0.5 / 3, 4))
    assert r["recall"] == pytest.approx(round(1 / 3, 4))
    assert r["ndcg"] == pytest.approx(round((1 / math.log2(3)) / 3, 4))
    assert r["coverage"] == pytest.approx(4 / 5)                 # items 0, 1, 3, 4
    assert r["pop_bias"] == pytest.approx((1.0 + 0.75 + 0.0 + 0.25) / 4)
