"""matrix_factorization's request-time steps, compiled (``server/jit.py``): one call a step.

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
