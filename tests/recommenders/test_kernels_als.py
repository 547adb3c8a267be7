"""Implicit ALS: block structure recovered, CG matches the closed form, fold-in, determinism."""
import numpy as np
import pytest
from scipy import sparse

from server.recommenders.kernels.als import ALSParams, ImplicitALS


def two_blocks(seed=0):
    """Users 0-9 use items 0-9, users 10-19 use items 10-19, each missing some items."""
    rng = np.random.default_rng(seed)
    R = np.zeros((20, 20))
    for u in range(20):
        block = range(0, 10) if u < 10 else range(10, 20)
        for i in block:
            if rng.random() < 0.6:
                R[u, i] = 1 + rng.integers(3)
    return sparse.csr_matrix(R)


def test_recovers_blocks():
    R = two_blocks()
    m = ImplicitALS(factors=4, iterations=15, regularization=0.1, seed=1).fit(R)
    for u in (0, 5, 12, 19):
        seen = R[u].indices
        items, _ = m.recommend(m.user_factors[u], k=3, exclude=seen)
        block = set(range(0, 10)) if u < 10 else set(range(10, 20))
        assert set(items.tolist()) <= block


def test_deterministic():
    R = two_blocks()
    a = ImplicitALS(factors=4, seed=7).fit(R)
    b = ImplicitALS(factors=4, seed=7).fit(R)
    assert np.array_equal(a.item_factors, b.item_factors)


def test_loss_decreases():
    m = ImplicitALS(factors=6, iterations=8, seed=0).fit(two_blocks(), track_loss=True)
    h = m.loss_history
    assert len(h) == 8
    assert h[-1] < h[0]
    assert all(b <= a * 1.001 for a, b in zip(h, h[1:]))


def test_cg_matches_closed_form():
    """With enough CG steps one half-step equals the exact per-user solve."""
    R = two_blocks(3)
    p = ALSParams(factors=5, regularization=0.2, alpha=5.0, cg_steps=5)
    m = ImplicitALS(p, dtype=np.float64)
    rng = np.random.default_rng(0)
    Y = rng.normal(size=(20, 5))
    X0 = rng.normal(size=(20, 5))
    C = m._confidence_minus_one(R)
    X = m._cg_half_step(C, Y, X0)
    for u in range(20):
        row = C[u]
        cm1 = row.data
        Yi = Y[row.indices]
        A = Y.T @ Y + (Yi.T * cm1) @ Yi + p.regularization * np.eye(5)
        b = Yi.T @ (1 + cm1)
        assert np.allclose(X[u], np.linalg.solve(A, b), atol=1e-6)


def test_fold_in_matches_trained_direction_and_empty():
    R = two_blocks()
    m = ImplicitALS(factors=4, iterations=15, regularization=0.1, seed=1).fit(R)
    v = m.fold_in(np.array([0, 1, 2]), np.array([1.0, 1.0, 2.0]))
    items, _ = m.recommend(v, k=4, exclude=np.array([0, 1, 2]))
    assert set(items.tolist()) <= set(range(10))
    assert not np.any(m.fold_in(np.array([], dtype=int)))
    assert m.recommend(m.fold_in(np.array([], dtype=int)), k=3)[0].size == 0
    # unknown indices are ignored, repeats merged
    assert np.allclose(m.fold_in(np.array([0, 0, 99])), m.fold_in(np.array([0]), np.array([2.0])), atol=1e-5)


def test_empty_and_users_without_data():
    m = ImplicitALS(factors=3).fit(sparse.csr_matrix((0, 0)))
    assert m.item_factors.shape == (0, 3)
    R = sparse.csr_matrix(np.array([[1.0, 0], [0, 0]]))
    m = ImplicitALS(factors=2, iterations=3).fit(R)
    assert not np.any(m.user_factors[1])


def test_similar_items():
    m = ImplicitALS(factors=4, iterations=15, regularization=0.1, seed=1).fit(two_blocks())
    items, _ = m.similar_items(3, k=3)
    assert set(items.tolist()) <= set(range(10)) and 3 not in items
