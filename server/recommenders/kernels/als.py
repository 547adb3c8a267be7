"""Implicit-feedback matrix factorisation by alternating least squares.

Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets" (ICDM 2008):
every user×item cell has a preference ``p = 1`` if the weight ``r > 0`` else ``0`` and a
confidence ``c = 1 + alpha * r`` (or ``1 + alpha * log(1 + r / eps)``). Each half-step solves, for
every user ``u`` at once,

    (YᵀY + Yᵀ(Cᵤ − I)Y + λI) xᵤ = Yᵀ Cᵤ pᵤ

using ``YᵀY`` shared by all users so the per-user cost is only over the user's own items. The
solve is a few steps of conjugate gradient warm-started from the previous factors (Takács et al.
2011, as in the ``implicit`` library), vectorised over all users: one CG step costs
``O(nnz · factors)`` numpy work, no Python loop per user. That is what keeps a fit on
online-retail (≈4k × 4k, 270k cells) to about a second.

A visitor with no trained vector is *folded in*: the same equation solved exactly for one user
from the items of their session (``fold_in``), so a brand-new session gets MF scores at once.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .factors import add3, clean_items, fold_in_rows
from .topk import topk_1d


@dataclass
class ALSParams:
    factors: int = 32
    regularization: float = 0.05
    alpha: float = 10.0
    iterations: int = 10
    cg_steps: int = 3
    confidence: str = "linear"   # "linear": 1 + alpha*r ; "log": 1 + alpha*log(1 + r/eps)
    eps: float = 1.0
    seed: int = 0


class ImplicitALS:
    def __init__(self, params: ALSParams | None = None, dtype=np.float32, **kw):
        self.params = params or ALSParams(**kw)
        self.dtype = dtype           # float32 halves the work; float64 for exactness tests
        self.user_factors = np.zeros((0, self.params.factors), dtype=np.float32)
        self.item_factors = np.zeros((0, self.params.factors), dtype=np.float32)
        self.loss_history: list[float] = []
        self._YtY: np.ndarray | None = None     # fold_in's Yᵀ Y and λI, on first use
        self._reg: np.ndarray | None = None
        self._trained: tuple | None = None      # (user_factors, which rows are not all zero), on first use

    # -- fitting -------------------------------------------------------------------------------
    def _confidence_minus_one(self, R: sparse.csr_matrix) -> sparse.csr_matrix:
        C = R.tocsr().astype(self.dtype, copy=True)
        C.data = np.maximum(C.data, 0.0)
        p = self.params
        if p.confidence == "log":
            C.data = p.alpha * np.log1p(C.data / p.eps)
        else:
            C.data = p.alpha * C.data
        C.eliminate_zeros()
        return C

    def fit(self, R: sparse.spmatrix, track_loss: bool = False) -> "ImplicitALS":
        """``R``: users × items non-negative weights (sparse). Deterministic for a given seed."""
        p = self.params
        R = sparse.csr_matrix(R, dtype=self.dtype)
        n_u, n_i = R.shape
        rng = np.random.default_rng(p.seed)
        X = rng.normal(0.0, 0.01, (n_u, p.factors)).astype(self.dtype)
        Y = rng.normal(0.0, 0.01, (n_i, p.factors)).astype(self.dtype)
        Cu = self._confidence_minus_one(R)            # users × items, data = c - 1 (> 0)
        Ci = Cu.T.tocsr()
        self.loss_history = []
        if Cu.nnz:
            for _ in range(p.iterations):
                X = self._cg_half_step(Cu, Y, X)
                Y = self._cg_half_step(Ci, X, Y)
                if track_loss:
                    self.loss_history.append(self._loss(Cu, X, Y))
        self.user_factors = X.astype(np.float32)
        self.item_factors = Y.astype(np.float32)
        self._YtY = None
        return self

    def _cg_half_step(self, C: sparse.csr_matrix, Y: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Solve every row's normal equation by ``cg_steps`` of CG, warm-started at ``X``."""
        lam = self.params.regularization
        YtY = (Y.T @ Y + lam * np.eye(Y.shape[1])).astype(self.dtype)
        rows = np.repeat(np.arange(C.shape[0]), np.diff(C.indptr))
        cols = C.indices
        cm1 = C.data                                   # c - 1
        has = np.diff(C.indptr) > 0

        Ycols = Y[cols]                                # fixed during the half-step

        def apply_A(V: np.ndarray) -> np.ndarray:
            # (YtY + λI) v + Yᵀ (C - I) Y v  for every row at once
            d = np.einsum("ij,ij->i", V[rows], Ycols)
            M = sparse.csr_matrix((cm1 * d, cols, C.indptr), shape=C.shape)
            return V @ YtY + M @ Y

        # b = Yᵀ Cᵤ pᵤ = Σ_{i∈u} (1 + (c-1)) yᵢ
        B = sparse.csr_matrix((cm1 + 1.0, cols, C.indptr), shape=C.shape) @ Y
        X = X.copy()
        X[~has] = 0.0                                  # no data: the solution is exactly 0
        r = B - apply_A(X)
        pdir = r.copy()
        rs = np.einsum("ij,ij->i", r, r)
        for _ in range(self.params.cg_steps):
            if not np.any(rs > 1e-20):
                break
            Ap = apply_A(pdir)
            den = np.einsum("ij,ij->i", pdir, Ap)
            a = np.divide(rs, den, out=np.zeros_like(rs), where=den > 1e-20)
            X += a[:, None] * pdir
            r -= a[:, None] * Ap
            rs_new = np.einsum("ij,ij->i", r, r)
            beta = np.divide(rs_new, rs, out=np.zeros_like(rs), where=rs > 1e-20)
            pdir = r + beta[:, None] * pdir
            rs = rs_new
        return X

    def _loss(self, Cu: sparse.csr_matrix, X: np.ndarray, Y: np.ndarray) -> float:
        """Σ c (p − xᵀy)² + λ(‖X‖² + ‖Y‖²), computed without the dense matrix."""
        lam = self.params.regularization
        rows = np.repeat(np.arange(Cu.shape[0]), np.diff(Cu.indptr))
        d = np.einsum("ij,ij->i", X[rows], Y[Cu.indices])
        # all cells with p=0,c=1: Σ (xᵀy)² = tr(XᵀX YᵀY); correct the observed cells
        total = float(np.sum((X.T @ X) * (Y.T @ Y)))
        total += float(np.sum((1.0 + Cu.data) * (1.0 - d) ** 2 - d ** 2))
        return total + lam * float(np.sum(X * X) + np.sum(Y * Y))

    # -- scoring -------------------------------------------------------------------------------
    @property
    def n_items(self) -> int:
        return self.item_factors.shape[0]

    def trained(self, u: int) -> bool:
        """Whether user ``u`` (0 <= u < len(user_factors)) has a vector: not all zero (a user
        without data gets exactly 0)."""
        return bool(self.trained_flags()[u])

    def trained_flags(self) -> np.ndarray:
        """Per user, ``trained``: computed once per ``user_factors`` array."""
        flags = getattr(self, "_trained", None)   # (an object pickled before the flags)
        if flags is None or flags[0] is not self.user_factors:
            flags = self._trained = (self.user_factors, self.user_factors.any(axis=1))
        return flags[1]

    def fold_in(self, items: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """A user vector for a visitor from their items (indices) and weights, solved exactly."""
        p = self.params
        f = self.item_factors.shape[1]
        items = np.asarray(items, dtype=np.int64)
        if items.size == 0 or self.n_items == 0:
            return np.zeros(f, dtype=np.float32)
        w = np.ones(items.size) if weights is None else np.asarray(weights, dtype=np.float64)
        if (items.ndim == 1 and w.shape == items.shape and items.flags.c_contiguous and w.flags.c_contiguous
                and clean_items(items, w, self.n_items)):
            uniq = items                       # (``visitor_items``': one call instead of the filter's ten)
        else:
            keep = (items >= 0) & (items < self.n_items) & (w > 0)
            items, w = items[keep], w[keep]
            if items.size == 0:
                return np.zeros(f, dtype=np.float32)
            if (items[1:] > items[:-1]).all():    # sorted, no repeats: as is
                uniq = items
            else:                                  # merge repeated items
                uniq, inv = np.unique(items, return_inverse=True)
                w = np.bincount(inv, weights=w)
        cm1 = p.alpha * (np.log1p(w / p.eps) if p.confidence == "log" else w)
        if self._YtY is None:
            Y = self.item_factors.astype(np.float64)
            self._YtY = Y.T @ Y
            self._reg = p.regularization * np.eye(f)
        Y = self.item_factors
        if Y.dtype == np.float32 and Y.flags.c_contiguous:
            # only the visitor's rows, not all of Y; the elementwise steps in two kernel calls,
            # the products numpy's (the same calls on the same arrays as below)
            rows, one_plus = fold_in_rows(Y, uniq, cm1)
            Yi, Z = rows[:len(uniq)], rows[len(uniq):]
            A = add3(self._YtY, Z.T @ Yi, self._reg)
            b = Yi.T @ one_plus
        else:
            Yi = Y[uniq].astype(np.float64)
            A = self._YtY + (Yi.T * cm1) @ Yi + self._reg
            b = Yi.T @ (1.0 + cm1)
        return np.linalg.solve(A, b).astype(np.float32)

    def scores(self, user_vec: np.ndarray) -> np.ndarray:
        return self.item_factors @ np.asarray(user_vec, dtype=np.float32)

    def recommend(self, user_vec: np.ndarray, k: int = 10,
                  exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        if self.n_items == 0 or not np.any(user_vec):
            return topk_1d(np.zeros(0), k)
        return topk_1d(self.scores(user_vec), k, exclude)

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Items nearest to ``item`` by cosine of item factors (for "because you viewed X")."""
        Y = self.item_factors
        norms = np.linalg.norm(Y, axis=1)
        if not (0 <= item < len(Y)) or norms[item] == 0:
            return topk_1d(np.zeros(0), k)
        s = (Y @ Y[item]) / np.maximum(norms * norms[item], 1e-12)
        return topk_1d(s, k, np.array([item]))
