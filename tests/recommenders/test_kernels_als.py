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


def fold_in_numpy(m, items, weights):
    """``fold_in``'s solve as numpy alone (the code before its kernels), for clean items."""
    p = m.params
    w = np.asarray(weights, np.float64)
    cm1 = p.alpha * (np.log1p(w / p.eps) if p.confidence == "log" else w)
    Y = m.item_factors.astype(np.float64)
    Yi = m.item_factors[items].astype(np.float64)
    A = Y.T @ Y + (Yi.T * cm1) @ Yi + p.regularization * np.eye(Y.shape[1])
    return np.linalg.solve(A, Yi.T @ (1.0 + cm1)).astype(np.float32)


@pytest.mark.parametrize("confidence", ["linear", "log"])
def test_fold_in_is_the_numpy_solve(confidence):
    """The elementwise steps in kernels (``fold_in_rows``, ``add3``) give numpy's vector bit
    for bit (the matmuls and the solve are the same calls on the same arrays); a factor matrix
    the kernels do not take (not C-contiguous) goes the numpy way, to the same vector."""
    rng = np.random.default_rng(5)
    for trial in range(300):
        f = int(rng.integers(1, 50))
        n = int(rng.integers(1, 80))
        m = ImplicitALS(ALSParams(factors=f, alpha=float(rng.uniform(0.5, 20)), confidence=confidence,
                                  regularization=float(rng.uniform(0.01, 2))))
        m.item_factors = rng.normal(0, 0.3, (n, f)).astype(np.float32)
        items = np.unique(rng.integers(0, n, int(rng.integers(1, 60))))
        w = rng.random(len(items)) * 5 + 0.01
        got = m.fold_in(items, w)
        assert got.tobytes() == fold_in_numpy(m, items, w).tobytes()
        m2 = ImplicitALS(m.params)
        m2.item_factors = np.asfortranarray(m.item_factors)
        assert got.tobytes() == m2.fold_in(items, w).tobytes()
    from server.recommenders.kernels.factors import add3, fold_in_rows
    Y = rng.normal(size=(5, 3)).astype(np.float32)
    rows, one_plus = fold_in_rows(Y, np.array([4], np.int64), np.array([2.5]))
    assert rows.tolist() == [Y[4].astype(np.float64).tolist(), (Y[4].astype(np.float64) * 2.5).tolist()]
    assert one_plus.tolist() == [3.5]
    assert fold_in_rows(Y, np.zeros(0, np.int64), np.zeros(0))[0].shape == (0, 3)
    a, b, c = (rng.normal(size=(4, 4)) for _ in range(3))
    assert add3(a, b, c).tobytes() == (a + b + c).tobytes()
