"""matrix_factorization's request-time steps, compiled (``server/jit.py``): one call a step.

``clean_items`` tells ``ImplicitALS.fold_in`` that its items need no filter nor merge;
``row_lacks`` tells whether the request's live items add anything to the person's model row
(``_person.visitor_items``' ``has_live``, without merging); ``known_answer`` is a known person's
whole answer when they did nothing new, in one call and one array (on a page without products
the session walked from the live state's columns, that test, their row of the shortlists
ranked at fit time, and the reason's seeds); ``catalog_top`` the top k over the catalog of a folded-in visitor (``catalog_top_f64``:
demographic's, over its float64 scores). They only compare
and copy numbers, so they are exact by construction. The reason's steps: ``strongest`` (the
visitor's items of largest weight, ``visitor_seeds`` with the merge of their row before it:
``merged_row``, also ``_person.merge_row``'s), then per product shown ``closest_seed`` (its seed
of largest cosine, exact whatever BLAS's summation order: see there), ``closest_seeds`` where
that cannot tell two seeds apart (per candidate, from numpy's matmul). ``fold_in_rows`` and
``add3``: ``ImplicitALS.fold_in``'s elementwise float64 steps around its matmuls and solve,
which stay numpy's (BLAS and LAPACK: their summation order is theirs, and the vector they
give is scored and its scores answered, so no bound can stand in for them).
"""
from __future__ import annotations

import numpy as np

from ...jit import kernel
from .seeds import session_walk
from .sums import merge_visitor_items


@kernel("int64(int32[::1], int64, int64, int64)")
def row_position(indices, a, b, item):
    """Where ``item`` is in ``indices[a:b]`` (sorted and unique: a row of a CSR matrix in
    canonical format), found by binary search; -1 when it is not there."""
    lo, hi = a, b
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < item:
            lo = mid + 1
        else:
            hi = mid
    if lo == b or indices[lo] != item:
        return -1
    return lo


@kernel("boolean(int32[::1], int32[::1], int64, int64[::1])")
def row_lacks(indptr, indices, row, items):
    """Whether any of ``items`` is missing from row ``row`` of a CSR matrix in canonical format
    (each row's indices sorted and unique): ``np.isin(items, indices[indptr[row]:indptr[row + 1]],
    invert=True).any()``. True for any item when the row is empty; False without items."""
    a, b = indptr[row], indptr[row + 1]
    for j in range(len(items)):
        if row_position(indices, a, b, items[j]) < 0:
            return True
    return False


def _known_answer(cols, max_live, live_i, live_w, n_items, indptr, indices, data, trained, items, scores,
                  person, k, item, n_seeds):
    """matrix_factorization's whole answer for a known person with nothing new, read from the
    shortlists ranked at fit time (``items`` best first per person, ``scores`` descending,
    equal scores by lower item: ``ranked_shortlists``), in one call and one array: the ``k``
    best positive items of row ``person`` without ``item``, their scores, and the reason's
    seeds (``visitor_seeds``: the ``n_seeds`` strongest of the person's row merged with the
    live items), packed as int32 ``[n, s, n items, n float32 score bits, s seeds]``; or
    ``[-1]`` when the request is not that case, and the caller scores: ``person`` outside the
    CSR matrix ``indptr``/``indices``/``data`` (the model's feedback rows: canonical, float32
    weights all > 0) or its row empty, one of the live items missing from the row
    (``row_lacks``: the person did something new), the person not ``trained`` (a zero
    vector), or ``k`` not in ``1 .. width - 1``.

    The live items: with ``max_live`` >= 0, the session's latest ``max_live`` (at most
    ``seeds.MAX_ITEMS``) products walked from the live state's ``cols`` (``seeds.session_walk``,
    as ``Context.session_vectors`` walks them) without those outside ``0 .. n_items - 1``:
    ``_person.live_items`` of a page without products; else ``live_i``/``live_w`` as given
    (``live_items``' answer).

    The top is what scoring the person's shortlist with their trained vector gives
    (``_scored_top``: the same scores, ``ranked_shortlists`` computes them as a request does),
    best first under the tie rule (equal scores: the lower item), the first ``min(positive,
    k)`` of the row once ``item`` is left out. The seeds: with nothing new, the merged row
    (``merged_row``) is the row itself, each live item's weight raised to the larger of the
    two (``merge_visitor_items``' rule), so its weights are made in place of the row's and
    the live items found by ``row_position``, and ``strongest``'s positions are written
    into the answer (no array of the merge: 4 allocations a call instead of 13). It only
    walks, compares and copies numbers."""
    if max_live >= 0:
        walked_i = np.empty(max_live, np.int64)
        walked_w = np.empty(max_live, np.float64)
        m = session_walk(cols, max_live, False, walked_i, walked_w)
        q = 0
        for j in range(m):
            if 0 <= walked_i[j] < n_items:
                walked_i[q], walked_w[q] = walked_i[j], walked_w[j]
                q += 1
        live_i, live_w = walked_i[:q], walked_w[:q]
    if not (0 <= person < len(indptr) - 1 and person < len(trained) and person < items.shape[0]
            and 1 <= k < items.shape[1]):
        return np.full(1, -1, np.int32)
    a, b = indptr[person], indptr[person + 1]
    if a == b or not trained[person]:
        return np.full(1, -1, np.int32)
    # the merged row's weights: the row's, each live item's raised (``merge_visitor_items``:
    # the larger, NaN wins, the row's on equal values); a live item not in the row: the
    # person did something new (``row_position``, the binary search of the sorted row)
    w = np.empty(b - a, np.float64)
    for j in range(b - a):
        w[j] = data[a + j]
    for j in range(len(live_i)):
        at = row_position(indices, a, b, live_i[j])
        if at < 0:
            return np.full(1, -1, np.int32)
        x, y = w[at - a], live_w[j]
        w[at - a] = x if (x >= y or x != x) else y
    row_i, row_s = items[person], scores[person]
    positive = 0
    for j in range(len(row_i)):
        if row_i[j] != item and row_s[j] > 0:
            positive += 1
    n = min(positive, k)
    s = max(min(n_seeds, b - a), 0)     # (``strongest``'s count: the merged row is the row)
    out = np.empty(2 + 2 * n + s, np.int32)
    bits = out.view(np.float32)
    out[0], out[1] = n, s
    q = j = 0
    while q < n:
        if row_i[j] != item:
            out[2 + q], bits[2 + n + q] = row_i[j], row_s[j]
            q += 1
        j += 1
    at = 2 + 2 * n
    strongest_at(w, s, out, at)       # the positions in the row, then their items
    for j in range(at, at + s):
        out[j] = indices[a + out[j]]
    return out


# one signature a kernel: shortlists of uint16 items (catalogs up to 65,535 products), or int32
_SIG = ("int32[::1](float64[:, ::1], int64, int64[::1], float64[::1], int64, int32[::1], int32[::1], float32[::1], "
        "boolean[::1], {}[:, ::1], float32[:, ::1], int64, int64, int64, int64)")
known_answer_u16 = kernel(_SIG.format("uint16"))(_known_answer)
known_answer_i32 = kernel(_SIG.format("int32"))(_known_answer)


def _catalog_top(scores, k, finite_only):
    """The ``k`` best positive ``scores`` of a whole catalog (positions = items) as int32
    items, best first, equal scores by lower position (the tie rule), and their scores (with
    ``finite_only``, an infinite score counts as 0; NaN never counts): the answer of
    ``_text.top_positions(scores, k)`` (of ``np.where(np.isfinite(scores), scores, 0)`` with
    ``finite_only``), and of ``sums.best_positive(scores, positions(len(scores)), k,
    finite_only)``.

    The ``k`` best (a unique set: the order, score then position, is total), kept in a heap
    whose root is the worst of them instead of a sorted buffer: a catalog's scores often rise
    with the position, and a sorted buffer then shifts ~k/2 entries for many products.
    Positions come in increasing order, so once the heap is full a score not above the root's
    would rank after it: skipped after one comparison."""
    size = min(k, len(scores))
    top = np.empty(max(size, 0), np.int32)
    val = np.zeros(max(size, 1), scores.dtype)
    bar = val[0]     # what a score must exceed to enter: 0, then the root's once full
    filled = 0
    for p in range(len(scores) if size > 0 else 0):
        f = scores[p]
        if not (f > bar and (f - f == 0 or not finite_only)):     # (f - f: NaN when f is infinite)
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
    if filled == len(val):
        return top, val
    return top[:filled].copy(), val[:filled].copy()


# one signature a kernel: float32 scores (matrix_factorization's), float64 (demographic's)
catalog_top = kernel("Tuple((int32[::1], float32[::1]))(float32[::1], int64, boolean)")(_catalog_top)
catalog_top_f64 = kernel("Tuple((int32[::1], float64[::1]))(float64[::1], int64, boolean)")(_catalog_top)


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


@kernel("int64(float64[::1], int64, int32[::1], int64)")
def strongest_at(weights, size, top, at):
    """The positions of the ``size`` (at most ``len(weights)``) largest ``weights``, largest
    first (equal weights: the earlier position first; NaN after every number, in position
    order), written to ``top[at:at + size]``, kept sorted there by insertion: how many
    (``size``, or 0 when it is not positive)."""
    filled = 0
    for j in range(len(weights) if size > 0 else 0):
        w = weights[j]
        q = filled        # after every earlier item that is not strictly after this one
        while q > 0 and w == w and (weights[top[at + q - 1]] != weights[top[at + q - 1]] or w > weights[top[at + q - 1]]):
            q -= 1
        if q >= size:
            continue
        for r in range(filled if filled < size else size - 1, q, -1):
            top[at + r] = top[at + r - 1]
        top[at + q] = j
        if filled < size:
            filled += 1
    return filled


@kernel("int64[::1](int64[::1], float64[::1], int64)")
def strongest(items, weights, n):
    """The ``n`` items of largest ``weights``, largest first: ``items[np.argsort(-weights,
    kind="stable")[:n]]`` (equal weights: the earlier position first; NaN after every number,
    in position order): ``strongest_at``'s positions."""
    size = min(n, len(items))
    top = np.empty(max(size, 0), np.int32)
    filled = strongest_at(weights, size, top, 0)
    out = np.empty(filled, np.int64)
    for q in range(filled):
        out[q] = items[top[q]]
    return out


@kernel("Tuple((int64[::1], float64[::1], boolean))(int32[::1], int32[::1], float32[::1], int64, int64[::1], float64[::1])")
def merged_row(indptr, indices, data, person, live_i, live_w):
    """``_person.merge_row`` of a dataset whose feedback rows are canonical with float32
    weights all > 0 (``_person.positive_rows``: ``indptr``, ``indices``, ``data``): the
    person's row as int64 items and float64 weights (none outside the matrix) merged with the
    live items by ``sums.merge_visitor_items``, in one call."""
    if 0 <= person < len(indptr) - 1:
        a, b = indptr[person], indptr[person + 1]
    else:
        a = b = 0
    own_i = np.empty(b - a, np.int64)
    own_w = np.empty(b - a, np.float64)
    for j in range(b - a):
        own_i[j], own_w[j] = indices[a + j], data[a + j]
    return merge_visitor_items(own_i, own_w, live_i, live_w, True)


@kernel("int64[::1](int32[::1], int32[::1], float32[::1], int64, int64[::1], float64[::1], int64)")
def visitor_seeds(indptr, indices, data, person, live_i, live_w, n):
    """matrix_factorization's reason seeds for a person of the model: ``strongest(n)`` of
    ``merged_row``'s visitor items, in one call."""
    items, weights, _ = merged_row(indptr, indices, data, person, live_i, live_w)
    return strongest(items, weights, n)


@kernel("Tuple((float64[:, ::1], float64[::1]))(float32[:, ::1], int64[::1], float64[::1])")
def fold_in_rows(Y, items, cm1):
    """``ImplicitALS.fold_in``'s elementwise steps: the visitor's rows of the item factors as
    float64 (``Yi = Y[items].astype(np.float64)``) and each scaled by its extra confidence
    (``Z = Yi * cm1[:, None]``: ``Z.T`` is numpy's ``Yi.T * cm1``, values and layout, so the
    matmul that follows is the same call), stacked ``[Yi; Z]`` in one array, and ``1.0 + cm1``.
    Products and sums of two float64 numbers, exact as numpy's."""
    m, f = len(items), Y.shape[1]
    out = np.empty((2 * m, f), np.float64)
    for i in range(m):
        row = items[i]
        c = cm1[i]
        for j in range(f):
            y = np.float64(Y[row, j])
            out[i, j] = y
            out[m + i, j] = y * c
    return out, 1.0 + cm1


@kernel("float64[:, ::1](float64[:, ::1], float64[:, ::1], float64[:, ::1])")
def add3(a, b, c):
    """``a + b + c`` (``(a + b) + c`` elementwise, float64, as numpy's two additions)."""
    out = np.empty(a.shape, np.float64)
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[i, j] = (a[i, j] + b[i, j]) + c[i, j]
    return out


@kernel("int64[::1](float32[:, ::1], float32[::1], int32[::1], int64[::1])")
def closest_seeds(dots, norms, cand, seeds):
    """matrix_factorization's reason: per candidate (row of ``dots``, the float32 dot products
    of the candidates' and the seeds' factors, computed by numpy's matmul), the seed of
    largest cosine ``dots / maximum(norms[cand] * norms[seeds], 1e-9)`` (float32 arithmetic, as
    numpy's) other than the candidate itself, or -1 when that cosine is not finite (no seeds:
    -1): the numpy code's ``seeds[argmax(sim)]`` where ``isfinite(max(sim))`` (``argmax``: the
    first maximum, the first NaN), the norms read here and one array out."""
    eps = np.float32(1e-9)
    best = np.empty(len(cand), np.int64)
    for r in range(len(cand)):
        c = cand[r]
        nc = norms[c]
        bj = -1
        bv = np.float32(0)
        for j in range(len(seeds)):
            den = nc * norms[seeds[j]]
            den = den if (den >= eps or den != den) else eps      # np.maximum (NaN wins)
            v = np.float32(-np.inf) if c == seeds[j] else dots[r, j] / den
            if j == 0 or v > bv or (v != v and bv == bv):     # the first maximum, the first NaN
                bj, bv = j, v
            if bv != bv:
                break
        best[r] = seeds[bj] if bj >= 0 and np.isfinite(bv) else -1
    return best


@kernel("int64(float32[:, ::1], float32[::1], int64, int32[::1])")
def closest_seed(Y, norms, c, seeds):
    """``closest_seeds``' answer for one candidate ``c`` (its seed of largest cosine, other than
    ``c``; -1 when none or the cosine is not finite) without numpy's matmul, or -2 when it
    cannot be told apart: then the caller computes numpy's dot products (``closest_seeds`` of
    ``Y[cand] @ Y[seeds].T``). ``seeds`` int32: a known person's are read in place, a view of
    ``known_answer``'s packed answer.

    numpy's float32 dot product of two rows (BLAS: its own summation order, FMA or not) is
    within ``gamma_f * sum(|y_c[t] * y_s[t]|)`` of the exact one (Higham, Accuracy and Stability
    of Numerical Algorithms, 3.1: any order of a sum of ``f`` products), and its cosine is that
    divided by the same float32 denominator ``closest_seeds`` divides by, rounded (a monotone
    step). Here each dot product is computed in float64 with twice that bound, so each seed's
    cosine as numpy computes it lies in a known interval: a seed whose lower bound is above
    every other seed's upper bound is numpy's argmax, whatever BLAS's order; otherwise (two
    cosines within ~1e-5 of each other, equal factors, NaN or infinite numbers) -2. A seed
    whose products are all zero has cosine exactly 0 (any sum of zeros is 0): a point, so equal
    zero cosines follow numpy's first maximum exactly."""
    n, f = len(seeds), Y.shape[1]
    gamma = (f + 4) * 2.0 ** -23       # twice the float32 bound (f + 4: numpy's rounding of the sum)
    eps = np.float32(1e-9)
    nc = norms[c]
    lo_all = np.empty(n, np.float64)
    hi_all = np.empty(n, np.float64)
    best, best_lo, best_exact = -1, 0.0, False
    for j in range(n):
        s = seeds[j]
        if s == c:                     # (numpy's -inf: never the argmax of a finite row)
            continue
        dot = 0.0
        size = 0.0
        for t in range(f):
            p = np.float64(Y[c, t]) * np.float64(Y[s, t])     # (exact: two float32 factors)
            dot += p
            size += abs(p)
        den = nc * norms[s]                                    # float32, as closest_seeds
        if not np.isfinite(den):
            return -2
        den = den if den >= eps else eps
        if size == 0.0:                # every product zero: numpy's cosine is exactly 0
            lo = hi = 0.0
        else:
            b = gamma * size + f * 2.0 ** -100     # (+ subnormals a BLAS may flush to zero)
            lo = (dot - b) / np.float64(den)
            hi = (dot + b) / np.float64(den)
            lo -= abs(lo) * 2.0 ** -21 + 1e-45      # the quotient's float32 rounding
            hi += abs(hi) * 2.0 ** -21 + 1e-45
        if not (abs(lo) <= 1e38 and abs(hi) <= 1e38):  # NaN, infinite or float32's overflow
            return -2
        lo_all[j], hi_all[j] = lo, hi
        if best < 0 or lo > best_lo:
            best, best_lo, best_exact = j, lo, size == 0.0
    if best < 0:
        return -1
    for j in range(n):
        if j == best or seeds[j] == c:
            continue
        # numpy's argmax is the first maximum: a later seed may equal an exact best
        if not (hi_all[j] < best_lo or (j > best and best_exact and hi_all[j] <= best_lo)):
            return -2
    return seeds[best]
