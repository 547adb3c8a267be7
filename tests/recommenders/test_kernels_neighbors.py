"""User-kNN on a hand-built matrix with known neighbours and scores."""
import numpy as np
import pytest
from scipy import sparse

from server.recommenders.kernels.neighbors import UserKNN

# users × items (5 items)
R = np.array([
    [1, 1, 0, 0, 0],   # u0
    [1, 1, 1, 0, 0],   # u1: like u0 plus item 2
    [0, 0, 0, 1, 1],   # u2
    [0, 0, 0, 1, 0],   # u3
], dtype=float)


def test_neighbours_and_scores_without_iuf():
    knn = UserKNN(k=2, iuf=False).fit(sparse.csr_matrix(R))
    nb = knn.neighbours(knn.R[0], exclude_user=0)
    assert nb.users.tolist() == [1]                          # u2, u3 share nothing with u0
    assert nb.sims[0] == pytest.approx(2 / (np.sqrt(2) * np.sqrt(3)))
    items, scores, nb = knn.score(knn.R[0], exclude_user=0)
    assert items.tolist() == [2]                               # the only unseen item of u1
    assert scores[0] == pytest.approx(nb.sims[0] / 3)          # sim × u1's normalised weight
    assert knn.contributors(nb, 2) == 1


def test_iuf_downweights_common_items():
    # item 0 everyone has; u0 and u1 share only item 0, u0 and u2 share a rare item
    M = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 0], [1, 0, 0]], dtype=float)
    plain = UserKNN(k=3, iuf=False).fit(sparse.csr_matrix(M))
    iuf = UserKNN(k=3, iuf=True).fit(sparse.csr_matrix(M))
    n_plain = plain.neighbours(plain.R[0], exclude_user=0)
    n_iuf = iuf.neighbours(iuf.R[0], exclude_user=0)
    assert n_plain.users[0] == 2 and n_iuf.users[0] == 2
    s_plain = dict(zip(n_plain.users.tolist(), n_plain.sims))
    s_iuf = dict(zip(n_iuf.users.tolist(), n_iuf.sims))
    assert s_iuf[1] / s_iuf[2] < s_plain[1] / s_plain[2]


def test_session_vector_and_cold_start():
    knn = UserKNN(k=2).fit(sparse.csr_matrix(R))
    items, _, _ = knn.score(knn.vector(np.array([3])))
    assert items.tolist() == [4]
    items, scores, nb = knn.score(knn.vector(np.array([], dtype=int)))
    assert items.size == 0 and nb.users.size == 0
    empty = UserKNN().fit(sparse.csr_matrix((0, 0)))
    assert empty.score(empty.vector(np.array([0])))[0].size == 0


def test_all_neighbours_blocked():
    knn = UserKNN(k=2, iuf=False).fit(sparse.csr_matrix(R))
    idx, sims = knn.all_neighbours()
    assert idx[0, 0] == 1 and idx[2, 0] == 3 and idx[0, 1] == -1


def test_shrinkage_prefers_larger_overlap():
    M = np.array([[1, 1, 1, 1, 0], [1, 0, 0, 0, 0], [1, 1, 1, 0, 1]], dtype=float)
    knn = UserKNN(k=2, iuf=False, shrink=5).fit(sparse.csr_matrix(M))
    nb = knn.neighbours(knn.R[0], exclude_user=0)
    assert nb.users[0] == 2


def test_score_user_matches_score_and_caches():
    knn = UserKNN(k=2, iuf=False).fit(sparse.csr_matrix(R))
    a = knn.score(knn.R[0], exclude_user=0)
    b = knn.score_user(0)
    assert a[0].tolist() == b[0].tolist() and np.allclose(a[1], b[1])
    assert 0 in knn._nb_cache
    assert knn.score_user(0)[0].tolist() == [2]
    assert knn.score_user(99)[0].size == 0
