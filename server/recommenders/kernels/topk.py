"""Top-k selection helpers shared by the kernels."""
from __future__ import annotations

import numpy as np
from scipy import sparse


def topk_1d(scores: np.ndarray, k: int, exclude: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices and scores of the ``k`` largest finite entries, best first (equal scores: the
    lower index first, also across the k-th place: the project's tie rule).

    ``exclude`` is an array of indices never returned. Entries that are ``-inf`` or NaN are skipped.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if k <= 0 or scores.size == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    if exclude is not None and len(exclude):
        scores = scores.copy()
        scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
    valid = np.isfinite(scores)
    n_valid = int(valid.sum())
    if n_valid == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    k = min(k, n_valid)
    work = np.where(valid, scores, -np.inf)
    if k < work.size:
        part = lowest_ties(work, np.argpartition(-work, k - 1)[:k])
    else:
        part = np.arange(work.size)
    # stable order: by score desc, then index asc
    order = np.lexsort((part, -work[part]))
    idx = part[order][:k]
    return idx.astype(np.int64), work[idx]


def lowest_ties(work: np.ndarray, part: np.ndarray) -> np.ndarray:
    """``part``, the positions of the k largest of ``work`` a partition picked (none of them
    NaN), with the tie rule (equal scores: the lower index first) where scores equal to the
    k-th largest go on beyond it: then the lowest of those positions are kept (which ones a
    partition keeps is its own: numpy's is SIMD code). Not sorted. Also
    ``Candidates.best_order``'s."""
    kth = work[part].min()
    at = work == kth
    n_at = np.count_nonzero(at)
    if n_at > 1 and np.count_nonzero(work[part] == kth) < n_at:
        better = (work > kth).nonzero()[0]
        part = np.concatenate((better, at.nonzero()[0][:len(part) - len(better)]))
    return part


def topk_rows(block: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Row-wise top-k of a dense 2-D block: (indices, scores), each ``(rows, k)``, best first
    (equal scores: the lower index first, as ``topk_1d``).

    Rows with fewer than ``k`` finite entries are padded with index -1 and score -inf.
    """
    block = np.asarray(block)
    rows, cols = block.shape
    kk = min(k, cols)
    if kk <= 0:
        return np.full((rows, k), -1, dtype=np.int64), np.full((rows, k), -np.inf)
    work = np.where(np.isfinite(block), block, -np.inf)
    if kk < cols:
        part = np.argpartition(-work, kk - 1, axis=1)[:, :kk]
        # the tie rule in the rows where scores equal to the k-th go on beyond it (rare)
        kth = np.take_along_axis(work, part, axis=1).min(axis=1, keepdims=True)
        crossed = (work == kth).sum(axis=1) > (np.take_along_axis(work, part, axis=1) == kth).sum(axis=1)
        for r in np.flatnonzero(crossed & np.isfinite(kth[:, 0])).tolist():
            part[r] = lowest_ties(work[r], part[r])
    else:
        part = np.tile(np.arange(cols), (rows, 1))
    vals = np.take_along_axis(work, part, axis=1)
    # sort each row by score desc, index asc
    order = np.lexsort((part, -vals), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    vals = np.take_along_axis(vals, order, axis=1)
    idx = np.where(np.isfinite(vals), idx, -1)
    if kk < k:
        idx = np.pad(idx, ((0, 0), (0, k - kk)), constant_values=-1)
        vals = np.pad(vals, ((0, 0), (0, k - kk)), constant_values=-np.inf)
    return idx.astype(np.int64), vals


def cosine_topk_all(X: sparse.csr_matrix | np.ndarray, k: int, min_score: float = 1e-9,
                    max_block_cells: int = 1 << 23) -> tuple[np.ndarray, np.ndarray]:
    """For every row of an L2-normalised matrix, its ``k`` most cosine-similar other rows.

    Computed in row blocks so the dense score block stays under ``max_block_cells`` cells
    (8M float32 = 32 MB). Self-similarity and scores below ``min_score`` are excluded.
    Returns ``(indices, scores)`` of shape ``(n, k)``, padded with -1 / 0.0.
    """
    n = X.shape[0]
    idx_out = np.full((n, k), -1, dtype=np.int64)
    val_out = np.zeros((n, k), dtype=np.float32)
    if n == 0 or k <= 0:
        return idx_out, val_out
    is_sparse = sparse.issparse(X)
    XT = X.T.tocsc() if is_sparse else np.asarray(X).T
    step = max(1, min(n, max_block_cells // max(n, 1)))
    for start in range(0, n, step):
        stop = min(n, start + step)
        blk = X[start:stop] @ XT
        blk = blk.toarray() if sparse.issparse(blk) else np.asarray(blk)
        blk = blk.astype(np.float32, copy=False)
        blk[np.arange(stop - start), np.arange(start, stop)] = -np.inf
        blk[blk < min_score] = -np.inf
        idx, vals = topk_rows(blk, k)
        ok = idx >= 0
        idx_out[start:stop] = idx
        val_out[start:stop] = np.where(ok, vals, 0.0)
    return idx_out, val_out
