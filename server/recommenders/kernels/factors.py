"""matrix_factorization's request-time steps, compiled (``server/jit.py``): one call a step.

``clean_items`` tells ``ImplicitALS.fold_in`` that its items need no filter nor merge;
``row_lacks`` tells whether the request's live items add anything to the person's model row
(``_person.visitor_items``' ``has_live``, without merging); ``ranked_top`` reads a known
person's answer from the shortlist ranked at fit time (``matrix_factorization._ranked_top``,
which it replaces). Both only compare and copy numbers, so they are exact by construction.
"""
from __future__ import annotations

import numpy as np

from ...jit import kernel


@kernel("boolean(int32[::1], int32[::1], int64, int64[::1])")
def row_lacks(indptr, indices, row, items):
    """Whether any of ``items`` is missing from row ``row`` of a CSR matrix in canonical format
    (each row's indices sorted and unique): ``np.isin(items, indices[indptr[row]:indptr[row + 1]],
    invert=True).any()``. True for any item when the row is empty; False without items."""
    a, b = indptr[row], indptr[row + 1]
    for j in range(len(items)):
        it = items[j]
        lo, hi = a, b              # binary search of the sorted row
        while lo < hi:
            mid = (lo + hi) // 2
            if indices[mid] < it:
                lo = mid + 1
            else:
                hi = mid
        if lo == b or indices[lo] != it:
            return True
    return False


def _ranked_top(items, scores, k, item):
    """The ``k`` best positive items of a ranked shortlist (``items`` best first, ``scores``
    descending, ties by lower item) without ``item``: (items as int32, their scores, True), as
    ``matrix_factorization._ranked_top``'s numpy code gives them (the items left out, the count
    of positive scores, the first ``min(count, k)``); or, when more than ``k`` are positive and
    the ``k``-th score equals the ``(k + 1)``-th (which tied item stays is then the partition's
    choice), empty arrays and False."""
    n_all = len(items)
    keep = np.empty(n_all, np.int64)
    m = 0
    positive = 0
    for j in range(n_all):
        if items[j] != item:
            keep[m] = j
            m += 1
            if scores[j] > 0:
                positive += 1
    n = positive
    if n > k:
        if scores[keep[k - 1]] == scores[keep[k]]:
            return np.empty(0, np.int32), np.empty(0, np.float32), False
        n = k
    out_items = np.empty(n, np.int32)
    out_scores = np.empty(n, np.float32)
    for j in range(n):
        out_items[j] = items[keep[j]]
        out_scores[j] = scores[keep[j]]
    return out_items, out_scores, True


# one signature a kernel: a shortlist of uint16 items (catalogs up to 65,535 products), or int32
_SIG = "Tuple((int32[::1], float32[::1], boolean))({}[::1], float32[::1], int64, int64)"
ranked_top_u16 = kernel(_SIG.format("uint16"))(_ranked_top)
ranked_top_i32 = kernel(_SIG.format("int32"))(_ranked_top)


@kernel("Tuple((int64[::1], float32[::1], boolean))(float32[::1], int64)")
def catalog_top(scores, k):
    """The ``k`` best finite positive ``scores`` of a whole catalog (positions = items), best
    first, ties by lower position, and their scores: ``sums.best_positive(scores,
    positions(len(scores)), k, True)``'s answer, and True; or, when more than ``k`` are positive
    and the ``k``-th score equals the ``(k + 1)``-th, nothing and False (``k`` >= 1).

    The same ``k + 1`` best (a unique set: the order, score then position, is total), kept in
    a heap whose root is the worst of them instead of a sorted buffer: a catalog's scores often
    rise with the position, and a sorted buffer then shifts ~k/2 entries for many products.
    Positions come in increasing order, so once the heap is full a score not above the root's
    would rank after it: skipped after one comparison (half the scores are not positive, and
    a branch on the sign would be mispredicted half the time: the count of positive scores
    is kept without one)."""
    size = k + 1
    top = np.empty(size, np.int64)
    val = np.empty(size, np.float32)
    filled = 0
    m = 0
    inf = np.float32(np.inf)
    bar = np.float32(0)     # what a score must exceed to enter: 0, then the root's once full
    for p in range(len(scores)):
        f = scores[p]
        m += (f > 0) & (f < inf)        # (no branch: the sign of a score is a coin toss)
        if not (f > bar and f < inf):
            continue
        if filled < size:               # push, then sift up (a later position is worse on ties)
            q = filled
            filled += 1
            while q > 0:
                up = (q - 1) // 2
                if val[up] < f or (val[up] == f and top[up] > p):
                    break
                top[q], val[q] = top[up], val[up]
                q = up
            top[q], val[q] = p, f
        else:                           # replace the worst, then sift down
            q = 0
            while True:
                c = 2 * q + 1
                if c >= size:
                    break
                if c + 1 < size and (val[c + 1] < val[c] or (val[c + 1] == val[c] and top[c + 1] > top[c])):
                    c += 1              # the worse child
                if f < val[c] or (f == val[c] and p > top[c]):
                    break
                top[q], val[q] = top[c], val[c]
                q = c
            top[q], val[q] = p, f
        if filled == size:
            bar = val[0]
    # the heap's entries best first (score descending, then position): a few dozen, insertion sort
    for j in range(1, filled):
        t, v = top[j], val[j]
        q = j
        while q > 0 and (val[q - 1] < v or (val[q - 1] == v and top[q - 1] > t)):
            top[q], val[q] = top[q - 1], val[q - 1]
            q -= 1
        top[q], val[q] = t, v
    if m > k and val[k - 1] == val[k]:
        return np.empty(0, np.int64), np.empty(0, np.float32), False
    n = min(m, k)
    return top[:n].copy(), val[:n].copy(), True


@kernel("boolean(int64[::1], float64[::1], int64)")
def clean_items(items, weights, n):
    """Whether every item is in ``0 .. n - 1`` with a weight > 0 and the items strictly
    increase (as ``visitor_items`` gives them): then ``fold_in``'s filter
    (``(items >= 0) & (items < n) & (w > 0)``) keeps them all and there are no repeats to merge."""
    for j in range(len(items)):
        if not (0 <= items[j] < n and weights[j] > 0):
            return False
        if j and not items[j] > items[j - 1]:
            return False
    return True
