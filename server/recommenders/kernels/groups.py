"""Customer groups: RFM tiers, behavioural clusters, and what distinguishes each group.

RFM tiers
---------
Each customer with at least one order has R (days since the last order, against the tenant
clock ``now``), F (number of orders), M (money spent) and the days since their first order.
Tiers, checked in this order (first match wins), with the defaults of ``RFMThresholds``:

=========  ========================================================================================
lapsed     no order for more than ``lapsed_days`` (180) days
vip        among active customers: at least ``vip_min_orders`` (3) orders and monetary in the top
           ``vip_share`` (5%) of active customers
heavy      among active customers: at least ``heavy_min_orders`` (2) orders and frequency *or*
           monetary in the top ``heavy_share`` (20%)
new        first order within ``new_days`` (30) days
normal     everyone else
=========  ========================================================================================

The quantile cut-offs are taken over active (not lapsed) customers only, so a shop's tiers
follow its own distribution. Visitors with no orders have no tier (the recommender treats them
as "new").

Behavioural clusters
--------------------
Each customer's weighted activity per category becomes a share vector (sums to 1); its square
root (the Hellinger embedding, so Euclidean distance behaves on proportions) is clustered with
seeded k-means++ / Lloyd. ``k`` is picked in ``choose_k`` by the best mean silhouette over
k = 2..``k_max`` (8, and at most √(n/2)), on a seeded sample of 1 500 rows; k = 1 when the rows
are all alike. At request time a visitor outside the fit is placed at the nearest centre by one
compiled call (``nearest_centre``: numpy's float64 sums reproduced in their order, so the same
cluster as ``assign(share_vectors(...))``).

Group preference lift
---------------------
For group ``g`` and item ``i``: ``p(i|g) = (w_gi + a·p(i)) / (W_g + a)`` (smoothed toward the
global share ``p(i)`` with ``a`` pseudo-weights), ``lift = p(i|g) / p(i)``. The distinctive score
is ``p(i|g) · log(lift)`` (the item's contribution to the KL divergence of the group from
everyone), kept only where ``lift > 1``: items the group wants more than others do, weighted by
how much of the group's activity they are.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from ...jit import kernel

DAY_MS = 86_400_000
TIERS = ("vip", "heavy", "normal", "new", "lapsed")


@dataclass
class RFMThresholds:
    lapsed_days: float = 180.0
    new_days: float = 30.0
    vip_share: float = 0.05
    vip_min_orders: int = 3
    heavy_share: float = 0.20
    heavy_min_orders: int = 2


def rfm_tiers(last_ts: np.ndarray, first_ts: np.ndarray, frequency: np.ndarray, monetary: np.ndarray,
              now_ts: int, th: RFMThresholds | None = None) -> np.ndarray:
    """Tier name per customer (object array). Times in ms; ``now_ts`` is the tenant clock."""
    th = th or RFMThresholds()
    last_ts = np.asarray(last_ts, dtype=np.float64)
    first_ts = np.asarray(first_ts, dtype=np.float64)
    freq = np.asarray(frequency, dtype=np.float64)
    mon = np.asarray(monetary, dtype=np.float64)
    n = last_ts.size
    out = np.full(n, "normal", dtype=object)
    if n == 0:
        return out
    recency_days = (now_ts - last_ts) / DAY_MS
    tenure_days = (now_ts - first_ts) / DAY_MS
    lapsed = recency_days > th.lapsed_days
    active = ~lapsed
    if active.any():
        m_cut_vip = np.quantile(mon[active], 1.0 - th.vip_share)
        m_cut_heavy = np.quantile(mon[active], 1.0 - th.heavy_share)
        f_cut_heavy = np.quantile(freq[active], 1.0 - th.heavy_share)
    else:
        m_cut_vip = m_cut_heavy = f_cut_heavy = np.inf
    vip = active & (freq >= th.vip_min_orders) & (mon >= m_cut_vip) & (mon > 0)
    heavy = active & ~vip & (freq >= th.heavy_min_orders) & ((freq >= f_cut_heavy) | (mon >= m_cut_heavy))
    new = active & ~vip & ~heavy & (tenure_days <= th.new_days)
    out[new] = "new"
    out[heavy] = "heavy"
    out[vip] = "vip"
    out[lapsed] = "lapsed"
    return out


# -- k-means -----------------------------------------------------------------------------------
def share_vectors(counts: sparse.spmatrix | np.ndarray) -> np.ndarray:
    """Rows of per-category weights → Hellinger embedding sqrt(share). Empty rows stay zero."""
    C = counts.toarray() if sparse.issparse(counts) else np.asarray(counts, dtype=np.float64)
    C = np.maximum(C.astype(np.float64), 0.0)
    tot = C.sum(axis=1, keepdims=True)
    return np.sqrt(np.divide(C, tot, out=np.zeros_like(C), where=tot > 0))


def kmeans(X: np.ndarray, k: int, seed: int = 0, iters: int = 50, n_init: int = 2) -> tuple[np.ndarray, np.ndarray, float]:
    """Seeded k-means++ / Lloyd; best of ``n_init`` runs. Returns (labels, centres, inertia)."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n == 0:
        return np.empty(0, dtype=np.int64), np.empty((0, X.shape[1] if X.ndim == 2 else 0)), 0.0
    k = max(1, min(k, n))
    rng = np.random.default_rng(seed)
    best = None
    x2 = np.einsum("ij,ij->i", X, X)
    for _ in range(n_init):
        centres = np.empty((k, X.shape[1]))
        centres[0] = X[rng.integers(n)]
        d2 = np.maximum(x2 - 2 * X @ centres[0] + centres[0] @ centres[0], 0)
        for c in range(1, k):
            tot = d2.sum()
            j = rng.choice(n, p=d2 / tot) if tot > 0 else rng.integers(n)
            centres[c] = X[j]
            d2 = np.minimum(d2, np.maximum(x2 - 2 * X @ centres[c] + centres[c] @ centres[c], 0))
        labels = np.full(n, -1)
        for _ in range(iters):
            dist = x2[:, None] - 2 * X @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :]
            new = np.argmin(dist, axis=1)
            if np.array_equal(new, labels):
                break
            labels = new
            counts = np.bincount(labels, minlength=k)
            sums = (labels[None, :] == np.arange(k)[:, None]).astype(np.float64) @ X
            centres = np.where(counts[:, None] > 0, sums / np.maximum(counts, 1)[:, None], centres)
            for c in np.flatnonzero(counts == 0):  # re-seed an empty cluster at the farthest point
                far = int(np.argmax(dist[np.arange(n), labels]))
                centres[c] = X[far]
        dist = x2[:, None] - 2 * X @ centres.T + np.einsum("ij,ij->i", centres, centres)[None, :]
        labels = np.argmin(dist, axis=1)
        inertia = float(np.maximum(dist[np.arange(n), labels], 0).sum())
        if best is None or inertia < best[2] - 1e-12:
            best = (labels.astype(np.int64), centres.copy(), inertia)
    return best


def pairwise_distances(X: np.ndarray) -> np.ndarray:
    x2 = np.einsum("ij,ij->i", X, X)
    return np.sqrt(np.maximum(x2[:, None] - 2 * X @ X.T + x2[None, :], 0))


def silhouette(X: np.ndarray, labels: np.ndarray, D: np.ndarray | None = None) -> float:
    """Mean silhouette coefficient (Rousseeuw 1987) of a labelled sample; 0 for one cluster.
    ``D``: the sample's pairwise distances, when already computed."""
    ks = np.unique(labels)
    if len(ks) < 2:
        return 0.0
    if D is None:
        D = pairwise_distances(X)
    n = len(X)
    a = np.zeros(n)
    b = np.full(n, np.inf)
    for k in ks:
        m = labels == k
        mean_d = D[:, m].sum(axis=1)
        own = labels == k
        cnt = m.sum()
        a[own] = mean_d[own] / max(cnt - 1, 1)
        b[~own] = np.minimum(b[~own], mean_d[~own] / cnt)
    single = np.bincount(np.searchsorted(ks, labels))[np.searchsorted(ks, labels)] == 1
    s = np.where(single, 0.0, (b - a) / np.maximum(np.maximum(a, b), 1e-12))
    return float(s.mean())


def choose_k(X: np.ndarray, k_max: int = 8, seed: int = 0, sample: int = 1500) -> tuple[int, np.ndarray, np.ndarray]:
    """k by the best mean silhouette over k = 2..k_max (computed on a seeded sample of at most
    ``sample`` rows); k = 1 when the rows are all alike or no k reaches a positive silhouette.
    ``k_max`` is also capped at √(n/2). Returns (k, labels, centres)."""
    X = np.asarray(X, dtype=np.float64)
    n = X.shape[0]
    if n == 0:
        return 0, np.empty(0, dtype=np.int64), np.empty((0, X.shape[1] if X.ndim == 2 else 0))
    k_max = int(max(1, min(k_max, np.floor(np.sqrt(n / 2.0)) if n >= 8 else 1, n)))
    one = kmeans(X, 1, seed)
    if one[2] <= 1e-12 or k_max < 2:
        return 1, one[0], one[1]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, sample, replace=False)) if n > sample else np.arange(n)
    best = (0.0, 1, one[0], one[1])
    D = pairwise_distances(X[rows])
    for k in range(2, k_max + 1):
        labels, centres, _ = kmeans(X, k, seed)
        sil = silhouette(X[rows], labels[rows], D)
        if sil > best[0] + 1e-9:
            best = (sil, k, labels, centres)
    return best[1], best[2], best[3]


def assign(X: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Nearest centre per row (for a visitor whose share vector was not in the fit)."""
    X = np.atleast_2d(np.asarray(X, dtype=np.float64))
    if centres.shape[0] == 0:
        return np.full(X.shape[0], -1)
    d = ((X[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return np.argmin(d, axis=1)


MAX_PAIRWISE = 128   # numpy sums up to this many contiguous float64 in one block (below)


@kernel("int64(float64[::1], float64[:, ::1])")
def nearest_centre(share, centres):
    """customer_group's cluster of a visitor the model does not know: the row of ``centres``
    nearest to the Hellinger embedding ``sqrt(share / share.sum())`` of their category shares
    (>= 0, their sum > 0, at most ``MAX_PAIRWISE``), as ``assign(share_vectors(share[None, :]),
    centres)`` gives it, bit for bit: each sum is numpy's float64 sum of a contiguous run,
    reproduced in its order (numpy's pairwise summation: under 8 numbers one after the other,
    from -0.0; up to 128 eight running sums, combined pairwise, then the rest), squares are
    products, and ``argmin``'s first minimum (the first NaN) wins."""
    n, k = centres.shape[1], centres.shape[0]
    x = np.empty(n)
    row = np.empty(n)
    tot = 0.0
    best, best_d = -1, 0.0
    for r in range(-1, k):       # -1: the shares' total, then each centre's squared distance
        if r < 0:
            row[:] = share
        else:
            for j in range(n):
                d = x[j] - centres[r, j]
                row[j] = d * d
        if n < 8:
            s = -0.0
            for j in range(n):
                s += row[j]
        else:
            r0, r1, r2, r3, r4, r5, r6, r7 = row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7]
            i = 8
            while i < n - n % 8:
                r0 += row[i]
                r1 += row[i + 1]
                r2 += row[i + 2]
                r3 += row[i + 3]
                r4 += row[i + 4]
                r5 += row[i + 5]
                r6 += row[i + 6]
                r7 += row[i + 7]
                i += 8
            s = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
            while i < n:
                s += row[i]
                i += 1
        if r < 0:
            tot = s
            for j in range(n):
                x[j] = np.sqrt(share[j] / tot)
        elif best < 0 or s < best_d or (s != s and best_d == best_d):
            best, best_d = r, s
            if s != s:
                break
    return best


@kernel("int64(int64[::1], float64[::1], int64[::1], float64[:, ::1])")
def items_centre(items, weights, item_cat, centres):
    """``customer_group.nearest_centre`` of (item, weight) pairs given as two arrays (a walked
    session view's items and float64 weights), in one call: the category shares, each the
    float64 sum in pair order of the weights of the items with a category (``item_cat[i] >=
    0``; items outside ``item_cat`` skipped), -1 when no share is > 0, else ``nearest_centre``
    of them (at most ``MAX_PAIRWISE`` categories: the caller's test)."""
    share = np.zeros(centres.shape[1])
    n = len(item_cat)
    for j in range(len(items)):
        i = items[j]
        if 0 <= i < n:
            c = item_cat[i]
            if c >= 0:
                share[c] += weights[j]
    for c in range(len(share)):
        if share[c] > 0:
            return nearest_centre(share, centres)
    return -1


# -- lift --------------------------------------------------------------------------------------
def group_lift(W: sparse.spmatrix | np.ndarray, labels: np.ndarray, n_groups: int | None = None,
               prior: float = 20.0) -> tuple[np.ndarray, np.ndarray]:
    """Per group × item: (distinctive score, lift). ``W`` is users × items weights.

    Rows with label < 0 count toward the global share only.
    """
    W = sparse.csr_matrix(W, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    g = int(n_groups if n_groups is not None else (labels.max() + 1 if labels.size else 0))
    n_items = W.shape[1]
    if g == 0 or n_items == 0 or W.nnz == 0:
        return np.zeros((g, n_items)), np.ones((g, n_items))
    keep = labels >= 0
    G = sparse.csr_matrix((np.ones(keep.sum()), (labels[keep], np.nonzero(keep)[0])), shape=(g, W.shape[0]))
    gw = np.asarray((G @ W).toarray())                      # groups × items
    tot = np.asarray(W.sum(axis=0)).ravel()
    p_global = tot / max(tot.sum(), 1e-12)
    Wg = gw.sum(axis=1, keepdims=True)
    p_group = (gw + prior * p_global[None, :]) / (Wg + prior)
    lift = np.divide(p_group, p_global[None, :], out=np.ones_like(p_group), where=p_global[None, :] > 0)
    score = np.where(lift > 1.0 + 1e-6, p_group * np.log(np.maximum(lift, 1e-12)), 0.0)   # not rounding noise
    return score, lift
