"""Compiled kernels of the slot pipeline (``blend.py``): numba, through ``server/jit.py``.

Each kernel replaces a run of numpy calls on a slot's few hundred candidates by one call, and
reproduces the numpy code it replaces exactly: the same float32/float64 arithmetic step by
step, the same summation order, the same order among equal values (see each docstring). Their
tests (``tests/engine/test_blend_kernels.py``) compare them with that numpy code on random data
with ties.

- ``blend_sources``  steps 1-2 of a slot: the sources' answers normalised, weighted, summed per
                     item; each item's largest contribution; the blend order
"""
from __future__ import annotations

import numpy as np

from ..jit import kernel


@kernel("Tuple((int64, int64[:, :], float32[:]))(int32[:], float32[:], int64[:], float64[:], boolean)")
def blend_sources(items, scores, lens, weights, rank):
    """The blend of the sources' answers concatenated (``items``/``scores``: answer after answer,
    ``lens[s]`` long each, every answer non-empty; ``weights[s]``: each source's weight).

    Returns ``(silent, rows, score)``. ``silent``: how many sources have a best score that is
    not positive (or NaN): they say nothing, and the caller drops them and calls again (nothing
    else is computed then). Otherwise ``rows`` is ``[4, n]`` over the ``n`` unique items:
    ``index`` (the items, ascending), ``best_src`` and ``best_at`` (each item's largest
    contribution: its source, its position in the concatenation; the earliest on ties) and,
    when ``rank``, ``ranking`` (positions into ``index`` by descending ``score``, ties in
    ``index`` order); ``score`` is each item's blended score (float32).

    It reproduces this numpy code exactly (``blend.py`` before the kernel)::

        tops = np.maximum.reduceat(scores, starts)
        srci = np.arange(len(lens)).repeat(lens)
        part = scores / tops[srci] * np.asarray(weights, np.float32)[srci]   # float32
        order = np.lexsort((-part, items)); first = items[order] changes
        best_at = order[first]; index = items[order][first]
        score = np.bincount(items, weights=part)[index].astype(np.float32)
        ranking = (-score).argsort(kind="stable")

    Why exactly: every ``part`` is the same float32 division then multiplication; bincount adds
    each bin's weights in float64 in input order, which is the order of positions within one
    item here (the sort key is item then position); lexsort's "largest part, then earliest" is
    a strict comparison in position order (NaN sorts last there and loses here; -0.0 ties 0.0
    in both); the ranking is numba's stable mergesort of the same float32 values (NaN last, as
    numpy's).
    """
    n_src = len(lens)
    n = len(items)
    if n == 0:
        return 0, np.empty((4, 0), np.int64), np.empty(0, np.float32)
    tops = np.empty(n_src, np.float32)
    silent = 0
    p = 0
    for s in range(n_src):
        lo, hi = p, p + lens[s]
        p = hi
        if hi == lo:   # (an empty answer says nothing)
            silent += 1
            continue
        top = scores[lo]
        for q in range(lo + 1, hi):   # np.maximum: a NaN wins
            v = scores[q]
            if not np.isnan(top) and (np.isnan(v) or v > top):
                top = v
        if not top > 0:
            silent += 1
        tops[s] = top
    if silent:   # (before any division: numba raises on a division by zero)
        return silent, np.empty((4, 0), np.int64), np.empty(0, np.float32)
    srci = np.empty(n, np.int64)
    part = np.empty(n, np.float32)
    p = 0
    for s in range(n_src):
        top, w = tops[s], np.float32(weights[s])
        for q in range(p, p + lens[s]):
            srci[q] = s
            part[q] = scores[q] / top * w
        p += lens[s]
    # by item, then position: one int64 key each (positions < n), a plain sort of distinct keys
    keys = np.empty(n, np.int64)
    for q in range(n):
        if items[q] < 0:
            raise ValueError("blend_sources: a negative item index")
        keys[q] = np.int64(items[q]) * n + q
    keys.sort()
    m = 0
    last = -1
    for key in keys:
        if key // n != last:
            m += 1
            last = key // n
    rows = np.empty((4, m), np.int64)
    score = np.empty(m, np.float32)
    u = -1
    last = -1
    acc = 0.0
    for key in keys:
        i, q = key // n, key % n
        v = part[q]
        if i != last:
            if u >= 0:
                score[u] = np.float32(acc)
            u += 1
            last = i
            acc = 0.0
            rows[0, u] = i
            rows[2, u] = q
        else:
            b = part[rows[2, u]]
            if not np.isnan(v) and (np.isnan(b) or v > b):   # strictly larger: the earliest wins ties
                rows[2, u] = q
        acc += np.float64(v)   # bincount: float64, in position order
    score[u] = np.float32(acc)
    for t in range(m):
        rows[1, t] = srci[rows[2, t]]
    if rank:
        rows[3] = np.argsort(-score, kind="mergesort")
    return 0, rows, score
