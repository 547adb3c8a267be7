"""The personal sources' request-time arithmetic, compiled (``server/jit.py``): one call a step.

``neighbour_top`` (below) is the neighbour-sum sources' whole request (their ``query`` says
its arguments: ``_tables.TableQuery``; a slot computes several in its one compiled call,
``placements/kernels.slot_select``, which calls this same kernel); ``merge_visitor_items``
is ``_person.visitor_items``' merge of a person's model row with the live items
(matrix_factorization, user_cf), ``best_positive`` matrix_factorization's top k over a
shortlist (``best_positive_f64``, its float64 twin, is the test reference of demographic's
``factors.catalog_top_f64``), each described in its docstring.

A neighbour-sum source (viewed_together, bought_together, item_cf, realtime_personal,
content_based) scores every product by Σ over the request's seeds of seed weight x neighbour
score, leaves out the seeds themselves (and the current product where asked), keeps the
positive sums and returns the best ``k`` with, for the reason, each one's closest seed. In
numpy that is a dozen calls (gathers, a ``bincount``, masks, a partition, a sort) and a
Python loop per reason; here it is one kernel, ``neighbour_top``, which reproduces the numpy
code bit for bit:

- Sums: each seed's contributions are ``float32(score) * float32(weight)`` (numpy's float32
  product), summed per product in float64 in seed order then rank order, as
  ``np.bincount(rows.ravel(), weights=contrib.ravel())`` does (``SeedRows.total``). With two
  tables (realtime_personal) each sum is cast to float32 and mixed in float32,
  ``mix_a * a + mix_b * b`` (numpy's ``0.6 * float32_array``: NEP 50 keeps float32).
- Candidates: the products a seed's row touches, with a float32 score > 0 (the float64 sum of
  positive terms is > 0 exactly when its float32 cast is), seeds and ``drop`` left out.
- Closest seed (``_common.SeedFinder``): in the first table whose seed rows hold the product,
  the seed with the largest contribution, the earlier seed on ties.
- Top k: the ``k`` best by (score descending, item ascending), the project's tie rule (equal
  scores, lower item first; ``Candidates.best_order`` and ``_text.top_positions`` follow it
  too), so the answer never depends on how a partition orders equal scores (numpy's is SIMD
  code, its order its own and its build's): each candidate's rank is one int64 key (its
  float32 score's bits, monotonic for scores > 0, then the item reversed), distinct since
  items are, so any exact top k of the keys is the rule's; the best k kept in a min-heap.

Tables are read up to each row's last neighbour (``Neighbours.ends``): a sparse table's rows
are mostly padding. The per-product work runs over a dense int32 map product -> slot (the
catalog's size plus the padding entry; ``neighbour_top_in`` takes it from its caller, who keeps
one for its calls, zeros but for the call's own entries, which it resets: a slot's kernel
call in the request flow then touches ~2 KB of it instead of zeroing 15 KB of cold memory;
``neighbour_top`` allocates it zeroed per call), and compact per-slot arrays as long as the seeds' rows
(up to their ends). The loop over the seeds' neighbours has no branch on the data but the
padding (selects instead: whether a product is new, whether a seed is closer; both
unpredictable, a mispredicted branch per neighbour cost more than its arithmetic).
Measured (``bench/sources.py --fresh``'s calls, online-retail): 5-11 µs a call, 2 µs of it the
call itself (arguments in, three arrays out); the slots' real calls (~540 neighbours from
~13 seeds, k = 44, one after another over 545 of them): 12.4 µs a call with a branch per
neighbour and the k best kept sorted by insertion, 10.1 with selects and the heap.
"""
from __future__ import annotations

import functools

import numpy as np

from ...jit import kernel

_SIG = ("Tuple((int32[::1], float32[::1], int32[::1]))"
        "(int32[:, ::1], float32[:, ::1], int32[::1], int32[:, ::1], float32[:, ::1], int32[::1], float32, float32,"
        " int64[::1], float32[::1], int32[::1], float32[::1], int64[::1], int64)")
NO_MORE = (np.zeros(0, np.int32), np.zeros(0, np.float32))   # ``neighbour_top``'s ``more``, ``more_w``: none


@kernel("void(int64[::1], int64, int64, int64)")
def sift_down(heap, size, key, p):
    """``key`` put at place ``p`` of the min-heap ``heap[:size]`` (whose subtrees below ``p``
    are heaps), moved down to its place: a heap's root replaced (``p`` 0), or a heap built
    bottom-up (each inner place in turn, the last first)."""
    while True:
        ch = 2 * p + 1
        if ch >= size:
            break
        if ch + 1 < size and heap[ch + 1] < heap[ch]:
            ch += 1
        if heap[ch] >= key:
            break
        heap[p] = heap[ch]
        p = ch
    heap[p] = key


@kernel(_SIG)
def neighbour_top(pad_a, score_a, end_a, pad_b, score_b, end_b, mix_a, mix_b, seeds, weights, more, more_w, drop, k):
    """``neighbour_top_in`` with a product map of its own (zeroed here: ~0.3 µs a call for
    4,000 products, more when the caches are cold)."""
    return neighbour_top_in(pad_a, score_a, end_a, pad_b, score_b, end_b, mix_a, mix_b, seeds, weights, more, more_w,
                            drop, k, np.zeros(pad_a.shape[0] + 1, np.int32))


@kernel(_SIG.replace(", int64)", ", int64, int32[::1])"))
def neighbour_top_in(pad_a, score_a, end_a, pad_b, score_b, end_b, mix_a, mix_b, seeds, weights, more, more_w, drop, k,
                     slot):
    """The ``k`` best products by the seeds' neighbour sums: (items int32, scores float32,
    closest seed of each int32), best first, equal scores by item (see the module docstring).

    ``pad_a``/``score_a``/``end_a``: a neighbour table (``Neighbours.padded()``: -1 padding
    replaced by the item count ``n``), its float32 scores and its rows' ends
    (``Neighbours.ends()``); ``pad_b``/``score_b``/``end_b`` a second table over the same
    items, read only when ``mix_b`` != 0 (the score is then ``mix_a * a + mix_b * b`` in
    float32; with ``mix_b`` == 0 it is the float32 sum of table a, ``mix_a`` unused).
    ``seeds`` (all in range) and ``weights`` (their float32 weights) in the numpy code's seed
    order; ``more`` (``more_w`` their weights) seeds that follow them unless already among
    them, -1 for none (item_cf's person's top items: ``dict.setdefault`` after the request's
    seeds, in one call); ``drop`` more products to leave out (any values; those out of range
    are ignored). ``slot``: the per-product map, zeros, zeros again on return (only the entries
    used are reset: a caller keeps one map for its calls, e.g. ``placements/kernels.slot_select``;
    a call that raises may leave it dirty: the caller then drops it); one not longer than the
    tables' ``n`` items is not used (a map of the call's own instead)."""
    n = pad_a.shape[0]
    if len(slot) <= n:
        slot = np.zeros(n + 1, np.int32)
    tables = 2 if mix_b != 0 else 1
    if len(more):
        n_seeds = len(seeds)
        merged = np.empty(n_seeds + len(more), np.int64)
        merged_w = np.empty(n_seeds + len(more), np.float32)
        merged[:n_seeds], merged_w[:n_seeds] = seeds, weights
        for j in range(len(more)):
            i = more[j]
            if i < 0:
                continue
            known = False
            for q in range(n_seeds):
                if merged[q] == i:
                    known = True
                    break
            if not known:
                merged[n_seeds], merged_w[n_seeds] = i, more_w[j]
                n_seeds += 1
        seeds, weights = merged[:n_seeds], merged_w[:n_seeds]
    cap = 0                                   # the seeds' rows up to their ends
    for s in range(len(seeds)):
        cap += end_a[seeds[s]] + (end_b[seeds[s]] if tables == 2 else 0)
    # the seeds' rows read ahead, a cache line (16 entries) at a time: independent loads that
    # the processor overlaps, rather than one miss after another in the sums below (a request's
    # other work has evicted the tables: ~1 µs of a 13 µs call with the caches cold)
    ahead, ahead_f = np.int32(0), np.float32(0)
    for s in range(len(seeds)):
        row = seeds[s]
        for j in range(0, end_a[row], 16):
            ahead += pad_a[row, j]
            ahead_f += score_a[row, j]
        if tables == 2:
            for j in range(0, end_b[row], 16):
                ahead += pad_b[row, j]
                ahead_f += score_b[row, j]
    # ``slot``: product -> 1 + its slot (0: not touched)
    item = np.empty(cap, np.int32)            # (int32 as the tables: less to read and write)
    total = np.zeros((tables, cap), np.float64)    # per table and slot: the sum,
    best = np.empty((tables, cap), np.float32)     # the closest seed's contribution
    near = np.full((tables, cap), -1, np.int32)    # and that seed (-1: not in the table's rows)
    used = 0
    # (the loop body without branches on the data, as selects: whether a product is new and
    # whether a seed is closer are unpredictable, and a mispredicted branch per neighbour cost
    # more than the arithmetic)
    for s in range(len(seeds)):
        row, w, seed = seeds[s], weights[s], np.int32(seeds[s])
        for tab in range(tables):
            pad, score, end = (pad_a, score_a, end_a) if tab == 0 else (pad_b, score_b, end_b)
            for j in range(end[row]):
                i = pad[row, j]
                if i == n:                         # padding
                    continue
                c = score[row, j] * w              # float32, as numpy's contrib
                t = slot[i] - 1
                fresh = t < 0
                t = used if fresh else t           # a new product takes the next slot
                used += fresh
                slot[i] = t + 1
                item[t] = i
                total[tab, t] += c                 # float64, seed order then rank: bincount's order
                b, nr = best[tab, t], near[tab, t]
                closer = (nr < 0) | (c > b)        # the first maximum: the earlier seed on ties
                best[tab, t] = c if closer else b
                near[tab, t] = seed if closer else nr
    # the seeds themselves and ``drop`` are no candidates (their sums are zeroed in numpy)
    for s in range(len(seeds) + len(drop)):
        i = seeds[s] if s < len(seeds) else drop[s - len(seeds)]
        t = slot[i] - 1 if 0 <= i < n else -1
        if t >= 0:
            total[:, t] = 0.0
    # the k best by (score desc, item asc): each candidate's rank as one int64 key, larger
    # better (its float32 score's bits, monotonic for scores > 0, then the item reversed;
    # items are unique, so keys are distinct and any exact top k of them is the rule's), the
    # k best kept in a min-heap (its root the worst kept: a candidate below it costs one test)
    bits = np.empty(1, np.float32)
    as_int = bits.view(np.uint32)
    heap = np.empty(max(k, 0), np.int64)
    filled = 0
    worst = np.float32(0)                      # the worst kept's score once k are kept: below it, out
    for t in range(used):
        if tables == 2:
            f = mix_a * np.float32(total[0, t]) + mix_b * np.float32(total[1, t])
        else:
            f = np.float32(total[0, t])
        if not f > 0 or f < worst:
            continue
        bits[0] = f
        key = (np.int64(as_int[0]) << 32) | (0xFFFFFFFF - np.int64(item[t]))
        if filled < k:                         # (sift up)
            p = filled
            filled += 1
            while p > 0 and heap[(p - 1) >> 1] > key:
                heap[p] = heap[(p - 1) >> 1]
                p = (p - 1) >> 1
            heap[p] = key
        elif filled > 0 and key > heap[0]:     # replaces the worst kept
            sift_down(heap, filled, key, 0)
        if filled == k and filled > 0:
            as_int[0] = np.uint32(heap[0] >> 32)
            worst = bits[0]
    top_t = np.empty(filled, np.int64)         # best first: the heap's roots taken worst first
    top_f = np.empty(filled, np.float32)
    for q in range(filled - 1, -1, -1):
        key = heap[0]
        it = np.int32(0xFFFFFFFF - (key & 0xFFFFFFFF))
        top_t[q] = slot[it] - 1
        as_int[0] = np.uint32(key >> 32)
        top_f[q] = bits[0]
        sift_down(heap, q, heap[q], 0)          # (the heap shrinks by one: its last entry sifts down from the root)
    if ahead == -7 and ahead_f == -1.5:     # (never so: the reads ahead are not optimised away)
        filled = 0
    items = np.empty(filled, np.int32)
    scores = np.empty(filled, np.float32)
    closest = np.empty(filled, np.int32)
    for q in range(filled):
        t = top_t[q]
        items[q], scores[q] = item[t], top_f[q]
        closest[q] = near[0, t] if near[0, t] >= 0 or tables == 1 else near[1, t]   # table a's first
    for t in range(used):                       # (the map zeros again: only the entries used)
        slot[item[t]] = 0
    return items, scores, closest


@kernel("Tuple((int64[::1], float64[::1], boolean))(int64[::1], float64[::1], int64[::1], float64[::1], boolean)")
def merge_visitor_items(own_i, own_w, live_i, live_w, positive):
    """``_person.visitor_items``' merge of a person's model row (``own_i`` sorted and unique,
    ``own_w``) with the request's live items (``live_i`` unique, ``live_w``): (items sorted,
    weights, has_live). A live item already in the row raises its weight to the larger of the
    two (``np.maximum``'s: NaN wins, the row's on equal values), the others are inserted
    (``has_live``: there are such); without a row, the live items alone, sorted; then, unless
    ``positive`` (every weight of the model > 0), the row's weights <= 0 are dropped (as the
    numpy code, not when there is no row). Items are unique, so any sort by item gives the
    numpy code's stable one."""
    n_own, n_live = len(own_i), len(live_i)
    if n_live and not n_own:
        order = np.argsort(live_i)
        return live_i[order], live_w[order], True
    items, w = own_i, own_w.copy()
    has_live = False
    if n_live:
        at = np.searchsorted(own_i, live_i)
        present = np.zeros(n_live, np.bool_)
        for j in range(n_live):
            p = min(at[j], n_own - 1)
            if own_i[p] == live_i[j]:
                present[j] = True
                a, b = w[p], live_w[j]
                w[p] = a if (a >= b or a != a) else b
            else:
                has_live = True
        if has_live:
            n_add = n_live - present.sum()
            items = np.empty(n_own + n_add, np.int64)
            merged = np.empty(n_own + n_add, np.float64)
            items[:n_own], merged[:n_own] = own_i, w
            q = n_own
            for j in range(n_live):
                if not present[j]:
                    items[q], merged[q] = live_i[j], live_w[j]
                    q += 1
            order = np.argsort(items)
            items, w = items[order], merged[order]
    if not positive:
        keep = w > 0
        if not keep.all():
            items, w = items[keep], w[keep]
    return items.copy(), w, has_live


def _best_positive(scores, items, k, finite_only):
    """matrix_factorization's pick: the positions of the ``k`` best positive ``scores`` (with
    ``finite_only``, an infinite or NaN score counts as 0, as ``np.where(np.isfinite(s), s, 0)``
    makes it), best first, equal scores by lower ``items`` (unique; the tie rule):
    ``_text.top_positions(scores, k, items)``'s answer, kept sorted in a buffer of ``k``."""
    size = max(k, 0)
    top = np.empty(size, np.int64)
    filled = 0
    for p in range(len(scores)):
        f = scores[p]
        if finite_only and not np.isfinite(f):
            continue
        if not f > 0:
            continue
        it = items[p]
        q = filled
        while q > 0 and (f > scores[top[q - 1]] or (f == scores[top[q - 1]] and it < items[top[q - 1]])):
            q -= 1
        if q >= size:
            continue
        for r in range(filled if filled < size else size - 1, q, -1):
            top[r] = top[r - 1]
        top[q] = p
        if filled < size:
            filled += 1
    return top[:filled].copy()


@functools.lru_cache(maxsize=64)
def positions(n: int) -> np.ndarray:
    """0 .. n - 1 (int64), one array per catalog size: a catalog's items as ``best_positive``
    takes them when it picks over every product (not to be written to)."""
    return np.arange(n, dtype=np.int64)


# (one signature a kernel: float32 scores, matrix_factorization's; float64, the reference of
# demographic's ``factors.catalog_top_f64`` in its tests)
best_positive = kernel("int64[::1](float32[::1], int64[::1], int64, boolean)")(_best_positive)
best_positive_f64 = kernel("int64[::1](float64[::1], int64[::1], int64, boolean)")(_best_positive)
