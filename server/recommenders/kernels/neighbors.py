"""User-based k-nearest-neighbour collaborative filtering.

Users are rows of a weighted user × item matrix (purchases, carts, wish lists, engaged views).
Each column is first down-weighted by how common the item is (``log(1 + n_users / n_buyers)``,
"inverse user frequency", Breese et al. 1998) so that two people sharing a best seller count for
less than two sharing a niche product; rows are then L2-normalised and similarity is cosine.

For a target user (a trained row or any vector, e.g. the current session's items) we take the
``k`` most similar other users, optionally shrunk by overlap size (``sim · n / (n + shrink)``)
and score each item by the sum of the neighbours' similarity × their (normalised) weight for it.
Items the target already has are excluded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .topk import cosine_topk_all, topk_1d


@dataclass
class Neighbourhood:
    users: np.ndarray        # neighbour row indices, best first
    sims: np.ndarray         # their similarities


class UserKNN:
    def __init__(self, k: int = 30, iuf: bool = True, shrink: float = 0.0, min_sim: float = 1e-6,
                 cache_users: int = 50_000):
        self.k = k
        self.iuf = iuf
        self.shrink = shrink
        self.min_sim = min_sim
        self.cache_users = cache_users
        self._nb_cache: dict[int, Neighbourhood] = {}   # trained user -> neighbours, filled on use
        self.item_weight = np.empty(0)
        self.R = sparse.csr_matrix((0, 0))       # raw weights (binary presence used for overlap)
        self.N = sparse.csr_matrix((0, 0))       # IUF-weighted, row-normalised
        self.NT = sparse.csr_matrix((0, 0))

    @property
    def n_users(self) -> int:
        return self.R.shape[0]

    @property
    def n_items(self) -> int:
        return self.R.shape[1]

    def fit(self, R: sparse.spmatrix) -> "UserKNN":
        R = sparse.csr_matrix(R, dtype=np.float32)
        R.data = np.maximum(R.data, 0.0)
        R.eliminate_zeros()
        self.R = R
        n_u = R.shape[0]
        users_per_item = np.bincount(R.indices, minlength=R.shape[1]).astype(np.float64)
        if self.iuf:
            self.item_weight = np.log1p(n_u / np.maximum(users_per_item, 1.0))
        else:
            self.item_weight = np.ones(R.shape[1])
        self.N = self._normalize(R).astype(np.float32)
        self.NT = self.N.T.tocsr()                 # items × users: similarity by row gathers
        rs = np.asarray(R.sum(axis=1)).ravel()
        self.Rrow = sparse.csr_matrix(sparse.diags(1.0 / np.maximum(rs, 1e-12)) @ R).astype(np.float32)
        self.PT = (R > 0).astype(np.float32).T.tocsr() if self.shrink > 0 else None
        self._nb_cache = {}
        return self

    def _normalize(self, R: sparse.csr_matrix) -> sparse.csr_matrix:
        W = R @ sparse.diags(self.item_weight) if R.shape[1] else R
        W = sparse.csr_matrix(W)
        norms = np.sqrt(np.asarray(W.multiply(W).sum(axis=1)).ravel())
        return sparse.csr_matrix(sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ W)

    def vector(self, items: np.ndarray, weights: np.ndarray | None = None) -> sparse.csr_matrix:
        """A 1 × items row for a visitor who is not a trained user (e.g. from a session)."""
        items = np.asarray(items, dtype=np.int64)
        w = np.ones(items.size) if weights is None else np.asarray(weights, dtype=np.float64)
        keep = (items >= 0) & (items < self.n_items) & (w > 0)
        return sparse.csr_matrix((w[keep], (np.zeros(keep.sum(), dtype=np.int64), items[keep])),
                                 shape=(1, self.n_items))

    @staticmethod
    def _gather(M: sparse.csr_matrix, rows: np.ndarray, weights: np.ndarray, size: int,
                binary: bool = False) -> np.ndarray:
        """Σ_r weights[r] · M[rows[r]] as a dense vector, by slicing CSR rows (no sparse ops);
        ``binary``: count stored entries instead of using their values."""
        starts, ends = M.indptr[rows], M.indptr[rows + 1]
        lens = ends - starts
        total = int(lens.sum())
        if total == 0:
            return np.zeros(size)
        idx = np.repeat(ends - lens.cumsum(), lens) + np.arange(total)
        w = np.repeat(np.asarray(weights, np.float64), lens)
        if not binary:
            w = w * M.data[idx]
        return np.bincount(M.indices[idx], weights=w, minlength=size)

    def neighbours(self, row: sparse.spmatrix, k: int | None = None, exclude_user: int | None = None) -> Neighbourhood:
        k = self.k if k is None else k
        row = sparse.csr_matrix(row)
        if self.n_users == 0 or row.nnz == 0:
            return Neighbourhood(np.empty(0, dtype=np.int64), np.empty(0))
        items = row.indices.astype(np.int64)
        q = row.data * self.item_weight[items]
        q = q / max(float(np.linalg.norm(q)), 1e-12)
        sims = self._gather(self.NT, items, q, self.n_users)
        if self.shrink > 0:
            overlap = self._gather(self.PT, items, np.ones(len(items)), self.n_users)
            sims = sims * overlap / (overlap + self.shrink)
        sims = np.where(sims >= self.min_sim, sims, -np.inf)
        excl = np.array([exclude_user]) if exclude_user is not None else None
        users, s = topk_1d(sims, k, excl)
        return Neighbourhood(users, s)

    def score(self, row: sparse.spmatrix, k: int | None = None, exclude_user: int | None = None,
              exclude_items: np.ndarray | None = None, n: int = 20) -> tuple[np.ndarray, np.ndarray, Neighbourhood]:
        """Top-``n`` items for a user row: (item indices, scores, the neighbourhood used).

        Scores are Σ over neighbours of ``sim × their row-normalised weight``; the user's own
        items and ``exclude_items`` are never returned.
        """
        nb = self.neighbours(row, k, exclude_user)
        if nb.users.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0), nb
        s = self._gather(self.Rrow, nb.users, nb.sims, self.n_items)
        own = sparse.csr_matrix(row).indices
        excl = np.concatenate([own, np.asarray(exclude_items if exclude_items is not None else [], dtype=np.int64)])
        s = np.where(s > 0, s, -np.inf)
        items, scores = topk_1d(s, n, excl)
        return items, scores, nb

    def score_user(self, user: int, exclude_items: np.ndarray | None = None,
                   n: int = 20) -> tuple[np.ndarray, np.ndarray, Neighbourhood]:
        """``score`` for a trained user; their neighbourhood is computed once and cached (the
        model is rebuilt anyway when the data changes), so a returning user costs one gather."""
        if not 0 <= user < self.n_users:
            return np.empty(0, dtype=np.int64), np.empty(0), Neighbourhood(np.empty(0, np.int64), np.empty(0))
        nb = self._nb_cache.get(user)
        if nb is None:
            nb = self.neighbours(self.R[user], exclude_user=user)
            if len(self._nb_cache) < self.cache_users:
                self._nb_cache[user] = nb
        if nb.users.size == 0:
            return np.empty(0, dtype=np.int64), np.empty(0), nb
        s = self._gather(self.Rrow, nb.users, nb.sims, self.n_items)
        a, b = self.R.indptr[user], self.R.indptr[user + 1]
        excl = np.concatenate([self.R.indices[a:b].astype(np.int64),
                               np.asarray(exclude_items if exclude_items is not None else [], dtype=np.int64)])
        items, scores = topk_1d(np.where(s > 0, s, -np.inf), n, excl)
        return items, scores, nb

    def contributors(self, nb: Neighbourhood, item: int) -> int:
        """How many of the neighbours have ``item`` (for the reason string)."""
        if nb.users.size == 0:
            return 0
        return int((self.R[nb.users][:, item] > 0).sum())

    def voters(self, nb: Neighbourhood) -> np.ndarray:
        """Per item, how many of the neighbours have it (dense, for reason strings)."""
        if nb.users.size == 0:
            return np.zeros(self.n_items, np.int64)
        return np.rint(self._gather(self.Rrow, nb.users, np.ones(len(nb.users)), self.n_items, binary=True)).astype(np.int64)

    def all_neighbours(self, k: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Every trained user's top-k neighbours at once (blocked): (users × k) indices, sims."""
        return cosine_topk_all(self.N, self.k if k is None else k, min_score=self.min_sim)
