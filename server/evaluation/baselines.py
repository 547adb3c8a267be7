"""The baselines every evaluation measures in the same run, on the same train data and seeds.

Each is fitted on the scratch tenant's dataset (``ds``: the train part only) over the binary
matrix ``X`` of baskets and sessions x products (``ds.B`` stacked on ``ds.V > 0``), and
scores products for a list of weighted seed products (the request's current product, cart,
session or the customer's history: the same seeds the engine's ``ctx.seed_items`` uses).

- ``popularity``   rows containing the product (the same list for everybody)
- ``item_knn``     cosine between product columns of X, top 100 neighbours per product,
                   score = sum of seed weight x similarity
- ``ease``         EASE (Steck 2019), closed form B = I - P / diag(P), P = (X'X + lambda I)^-1,
                   lambda = the mean product frequency (a scale-free default), on the 5,000 most
                   frequent products seen twice or more; score = seed vector x B
- ``implicit_als`` implicit ALS from the ``implicit`` package (benchmark-only extra, 64
                   factors, 15 iterations, alpha 10); a request's seeds are folded in with one
                   weighted least-squares step on the item factors. Skipped with a message when
                   ``implicit`` is not installed (``pip install implicit``).
"""
from __future__ import annotations

import os
import time

import numpy as np
import scipy.linalg
import scipy.sparse as sp

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def interaction_matrix(ds) -> sp.csr_matrix:
    parts = []
    if ds.B.shape[0]:
        parts.append(ds.B)
    if ds.V.shape[0] and ds.V.nnz:
        V = ds.V.copy()
        V.data = (V.data > 0).astype(np.float32)
        V.eliminate_zeros()
        parts.append(V)
    if not parts:
        return sp.csr_matrix((0, ds.n_items), dtype=np.float32)
    X = sp.vstack(parts).tocsr().astype(np.float32)
    X.data[:] = 1.0
    keep = np.diff(X.indptr) > 0
    return X[keep]


def _top(scores: np.ndarray, k: int, exclude) -> list[int]:
    s = scores.astype(np.float64, copy=True)
    if exclude:
        s[list(exclude)] = -np.inf
    k = min(k, len(s))
    idx = np.argpartition(-s, k - 1)[:k]
    idx = idx[np.argsort(-s[idx], kind="stable")]
    return [int(i) for i in idx if s[i] > 0]


def _dense_seed(seeds, n: int) -> np.ndarray:
    v = np.zeros(n, np.float32)
    for i, w in seeds:
        if 0 <= i < n:
            v[i] += w
    return v


class Baseline:
    name = ""
    available = True
    note = ""

    def fit(self, ds, X: sp.csr_matrix) -> None: ...

    def recommend(self, seeds: list[tuple[int, float]], k: int, exclude=()) -> list[int]: ...

    def memory_bytes(self) -> int:
        total = 0
        for v in vars(self).values():
            if isinstance(v, np.ndarray):
                total += v.nbytes
            elif sp.issparse(v):
                total += v.data.nbytes + v.indices.nbytes + v.indptr.nbytes
        return total


class Popularity(Baseline):
    name = "popularity"

    def fit(self, ds, X):
        self.pop = np.asarray(X.sum(axis=0)).ravel().astype(np.float32)

    def recommend(self, seeds, k, exclude=()):
        return _top(self.pop, k, exclude)


class ItemKNN(Baseline):
    name = "item_knn"
    neighbours = 100

    def fit(self, ds, X):
        norms = np.sqrt(np.asarray(X.sum(axis=0)).ravel()).astype(np.float32)
        inv = np.where(norms > 0, 1.0 / np.maximum(norms, 1e-12), 0).astype(np.float32)
        S = (X.T @ X).tocsr().astype(np.float32)
        S.setdiag(0)
        S.eliminate_zeros()
        S = sp.diags(inv) @ S @ sp.diags(inv)
        S = S.tocsr()
        # keep the top neighbours of each row
        rows, cols, vals = [], [], []
        for i in range(S.shape[0]):
            a, b = S.indptr[i], S.indptr[i + 1]
            if a == b:
                continue
            d, c = S.data[a:b], S.indices[a:b]
            if len(d) > self.neighbours:
                keep = np.argpartition(-d, self.neighbours - 1)[:self.neighbours]
                d, c = d[keep], c[keep]
            rows.append(np.full(len(c), i, np.int32))
            cols.append(c)
            vals.append(d)
        n = S.shape[0]
        if rows:
            self.S = sp.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n))
        else:
            self.S = sp.csr_matrix((n, n), dtype=np.float32)

    def recommend(self, seeds, k, exclude=()):
        v = _dense_seed(seeds, self.S.shape[0])
        return _top(self.S.T @ v, k, exclude)


class EASE(Baseline):
    name = "ease"
    max_items = 5000

    def fit(self, ds, X):
        freq = np.asarray(X.sum(axis=0)).ravel()
        n = X.shape[1]
        cols = np.argsort(-freq, kind="stable")[:min(self.max_items, n)]
        cols = cols[freq[cols] >= 2]  # a product seen once co-occurs with nothing learnable
        self.cols = cols.astype(np.int64)
        self.n = n
        Xs = X[:, self.cols]
        G = (Xs.T @ Xs).toarray().astype(np.float64)
        self.lam = float(max(freq[cols].mean(), 1.0)) if len(cols) else 1.0
        G[np.diag_indices_from(G)] += self.lam
        P = scipy.linalg.inv(G, overwrite_a=True, check_finite=False)
        del G
        P /= -np.diag(P)
        P[np.diag_indices_from(P)] = 0.0
        self.B = P.astype(np.float32)
        del P
        self.pos = np.full(n, -1, np.int64)
        self.pos[self.cols] = np.arange(len(self.cols))

    def recommend(self, seeds, k, exclude=()):
        v = np.zeros(len(self.cols), np.float32)
        for i, w in seeds:
            if 0 <= i < self.n and self.pos[i] >= 0:
                v[self.pos[i]] += w
        if not v.any():
            return []
        s = np.zeros(self.n, np.float32)
        s[self.cols] = v @ self.B
        return _top(s, k, exclude)


class ImplicitALS(Baseline):
    name = "implicit_als"
    factors, iterations, alpha, reg = 64, 15, 10.0, 0.05

    def __init__(self):
        try:
            import implicit  # noqa: F401
            from threadpoolctl import threadpool_limits  # noqa: F401
        except Exception:  # not installed: a benchmark-only extra
            self.available = False
            self.note = "skipped: the `implicit` package is not installed (pip install implicit)"

    def fit(self, ds, X):
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits
        with threadpool_limits(1, "blas"):
            m = AlternatingLeastSquares(factors=self.factors, regularization=self.reg, alpha=self.alpha,
                                        iterations=self.iterations, random_state=42, num_threads=1)
            m.fit(X.tocsr(), show_progress=False)
        self.Y = np.asarray(m.item_factors, np.float32)
        self.YtY = (self.Y.T @ self.Y).astype(np.float64)
        self.n = self.Y.shape[0]

    def recommend(self, seeds, k, exclude=()):
        seeds = [(i, w) for i, w in seeds if 0 <= i < self.n and w > 0]
        if not seeds:
            return []
        idx = np.array([i for i, _ in seeds])
        c = 1.0 + self.alpha * np.array([w for _, w in seeds])
        Yi = self.Y[idx].astype(np.float64)
        A = self.YtY + (Yi.T * (c - 1.0)) @ Yi + self.reg * np.eye(self.Y.shape[1])
        b = Yi.T @ c
        u = np.linalg.solve(A, b)
        return _top(self.Y @ u.astype(np.float32), k, exclude)


def all_baselines() -> list[Baseline]:
    return [Popularity(), ItemKNN(), EASE(), ImplicitALS()]


def fit_timed(b: Baseline, ds, X) -> float:
    t0 = time.perf_counter()
    b.fit(ds, X)
    return time.perf_counter() - t0
