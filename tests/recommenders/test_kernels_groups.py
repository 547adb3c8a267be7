"""RFM tiers against the tenant clock, k-means with the elbow rule, per-group lift."""
import numpy as np
import pytest

from server.recommenders.kernels.groups import (DAY_MS, RFMThresholds, assign, choose_k, group_lift, silhouette,
                                                kmeans, rfm_tiers, share_vectors)

NOW = 1_700_000_000_000


def test_rfm_tiers_known():
    days = lambda d: NOW - int(d * DAY_MS)
    # 20 active customers with 1 order 100 days ago, 100 spent (normal) ...
    last = [days(100)] * 20
    first = [days(300)] * 20
    freq = [1] * 20
    mon = [100.0] * 20
    # ... one VIP (many orders, big spend), one heavy (frequent, ordinary spend), one new, one lapsed
    last += [days(5), days(10), days(3), days(400)]
    first += [days(300), days(200), days(3), days(500)]
    freq += [12, 6, 1, 30]
    mon += [5000.0, 90.0, 50.0, 9000.0]   # heavy by frequency, not spend
    tiers = rfm_tiers(np.array(last), np.array(first), np.array(freq), np.array(mon), NOW)
    assert tiers[:20].tolist() == ["normal"] * 20
    assert tiers[20:].tolist() == ["vip", "heavy", "new", "lapsed"]


def test_rfm_thresholds_configurable_and_empty():
    tiers = rfm_tiers(np.array([NOW - 40 * DAY_MS]), np.array([NOW - 40 * DAY_MS]), np.array([1]), np.array([1.0]),
                      NOW, RFMThresholds(lapsed_days=30))
    assert tiers.tolist() == ["lapsed"]
    assert rfm_tiers(np.array([]), np.array([]), np.array([]), np.array([]), NOW).size == 0


def blobs(seed=0, per=15):
    rng = np.random.default_rng(seed)
    rows = []
    for centre in ([10, 0, 0, 0], [0, 10, 0, 0], [0, 0, 5, 5]):
        for _ in range(per):
            rows.append(np.maximum(np.array(centre) + rng.normal(0, 0.8, 4), 0))
    return np.array(rows)


def test_share_vectors_rows_sum_to_one_in_square():
    X = share_vectors(np.array([[1, 3], [0, 0]]))
    assert np.allclose((X ** 2).sum(axis=1), [1, 0])


def test_silhouette_finds_three_blobs_deterministically():
    X = share_vectors(blobs())
    k, labels, centres = choose_k(X, k_max=8, seed=0)
    assert k == 3
    # the three generating groups map one-to-one onto clusters
    for g in range(3):
        assert len(set(labels[g * 15:(g + 1) * 15].tolist())) == 1
    assert len(set(labels.tolist())) == 3
    k2, labels2, _ = choose_k(X, k_max=8, seed=0)
    assert k2 == k and np.array_equal(labels, labels2)
    # a new visitor who buys only category 1 joins the second blob's cluster
    assert assign(share_vectors(np.array([[0, 4, 0, 0]])), centres)[0] == labels[15]


def test_kmeans_edge_cases():
    labels, centres, inertia = kmeans(np.zeros((0, 3)), 3)
    assert labels.size == 0
    k, labels, _ = choose_k(np.ones((5, 2)))
    assert k == 1 and set(labels.tolist()) == {0}


def test_group_lift_known():
    # group 0 (users 0,1) buys item 0 a lot; group 1 (users 2,3) buys item 1; item 2 everybody
    W = np.array([[5, 0, 1], [5, 0, 1], [0, 5, 1], [0, 5, 1]], dtype=float)
    score, lift = group_lift(W, np.array([0, 0, 1, 1]), prior=0.0)
    assert lift[0, 0] == pytest.approx(2.0)       # p(0|g0)=10/12 over p(0)=10/24
    assert lift[0, 2] == pytest.approx(1.0)
    assert np.argmax(score[0]) == 0 and np.argmax(score[1]) == 1
    assert score[0, 2] == 0 and score[0, 1] == 0
    # smoothing pulls lift toward 1
    _, lift_s = group_lift(W, np.array([0, 0, 1, 1]), prior=100.0)
    assert 1.0 < lift_s[0, 0] < lift[0, 0]
    s, l = group_lift(np.zeros((0, 0)), np.array([], dtype=int))
    assert s.shape == (0, 0)


def test_silhouette_known_values():
    X = np.array([[0.0], [0.0], [10.0], [10.0]])
    assert silhouette(X, np.array([0, 0, 1, 1])) == pytest.approx(1.0)
    # a = 0 for every point? no: a = distance within cluster; here a=0, b=10 -> 1. Mixed labels -> negative
    assert silhouette(X, np.array([0, 1, 0, 1])) < 0
    assert silhouette(X, np.array([0, 0, 0, 0])) == 0.0
