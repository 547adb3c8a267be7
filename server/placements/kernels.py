"""Compiled kernels of the slot pipeline (``blend.py``): numba, through ``server/jit.py``.

Each kernel replaces a run of numpy calls and Python steps on a slot's few hundred candidates
by one call, and reproduces the code it replaces exactly: the same float32/float64 arithmetic
step by step, the same summation order, the same order among equal values (see each
docstring). Their tests (``tests/engine/test_blend_kernels.py``) compare them with that code on
random data with ties.

- ``answer_top``     one answer's best score as ``np.maximum`` finds it (the three kernels
                     below that leave a silent source out read it)
- ``blend_sources``  steps 1-2 of a slot: the sources' answers normalised, weighted, summed per
                     item; each item's largest contribution; the blend order
- ``select_pool``    step 3 for the pool's candidates: in the ranker's order, the rules' mask,
                     the items held for another source, the page's products, the diversity
                     caps, up to ``count``
- ``selectable``     ``select_pool``'s tests of one candidate (the kernels below apply them too)
- ``blend_select``   steps 1-3 in one call, the two above compiled into it (a kernel may call
                     kernels: ``server/jit.py``): what a slot with the blend order runs
- ``blend_pick``     ``blend_select``'s selection without the pool's rows or its full order:
                     the items grouped by a hash table, the candidates taken from a heap in
                     the blend order until ``count`` pass (a slot takes ~8 of ~100-400)
- ``slot_select``    steps 1-3 with the neighbour-sum sources' answers computed in the same
                     call (``kernels/sums.neighbour_top`` compiled into it) from their table
                     queries (``recommenders/_tables.TableQuery``), the other sources' answers
                     passed ready: what a slot with table sources runs (``blend._fused``)
                     through ``slot_select_2`` (at most two tables and two queries: fewer
                     arguments, numba's dispatch costs per argument) or ``slot_select_4``
                     (every argument flat: a tuple's elements dispatch more slowly), both
                     taking the first two ready answers apart (``ready_answers``)
- ``catalog_net``    step 5, the last net: the catalog in popularity order under the same
                     tests, the caps counting the slot's products so far

Orders are stable LSD radix sorts (8 bits a pass, a pass skipped when every key has the same
digit there): on ~100 keys they cost a fraction of numba's quicksort or mergesort, and a
stable sort gives equal keys in input order, as numpy's stable sorts do. ``blend_pick``
sorts nothing: a min-heap of distinct keys (the radix sort's key, then the item) pops in
the sorted order, and a slot pops ~10 of them (in the request flow ~2 µs less a call than
``blend_sources`` and ``select_pool`` on the main page's ~180 contributions; none on a
category page's ~50, most of which its mask refuses: nearly every key is popped).
"""
from __future__ import annotations

import numpy as np

from ..jit import kernel
from ..recommenders.kernels.seeds import MAX_ITEMS, WALK_DROP, WALK_STEP, walk_view
from ..recommenders.kernels.sums import neighbour_top_in, sift_down


@kernel("float32(float32[:], int64, int64)")
def answer_top(scores, lo, hi):
    """The largest of ``scores[lo:hi]`` (``hi > lo``: one source's answer) as ``np.maximum``
    finds it: a NaN wins (``blend_sources``, ``blend_pick`` and ``slot_select`` then leave a
    source whose top is not positive out)."""
    top = scores[lo]
    for q in range(lo + 1, hi):
        v = scores[q]
        if not np.isnan(top) and (np.isnan(v) or v > top):
            top = v
    return top


@kernel("Tuple((int64, int64[:, ::1], float32[::1]))(int32[:], float32[:], int64[::1], float64[::1], boolean)")
def blend_sources(items, scores, lens, weights, rank):
    """The blend of the sources' answers concatenated (``items``/``scores``: answer after answer,
    ``lens[s]`` long each; ``weights[s]``: each source's weight).

    Returns ``(silent, rows, score)``. ``silent``: how many sources have no candidates or a
    best score that is not positive (or NaN): they say nothing, and the caller drops them and
    calls again (nothing else is computed then). Otherwise ``rows`` is ``[5, n]`` over the
    ``n`` unique items: ``index`` (the items, ascending), ``best_src`` and ``best_at`` (each
    item's largest contribution: its source, its position in the concatenation; the earliest
    on ties), ``ranking`` when ``rank`` (positions into ``index`` by descending ``score``,
    ties in ``index`` order; unset otherwise) and ``best_pos`` (``best_at``'s position in its
    own answer); ``score`` is each item's blended score (float32).

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
    item here (a stable sort by item); lexsort's "largest part, then earliest" is a strict
    comparison in position order (NaN sorts last there and loses here; -0.0 ties 0.0 in
    both); the ranking is a stable sort of keys that order the float32 scores as numpy's sort
    of ``-score`` does (NaN last, -0.0 equal to 0.0).
    """
    def radix_order(keys, top):
        """Positions of ``keys`` (0 <= key <= ``top``) in stable ascending order."""
        n = len(keys)
        order = np.arange(n)
        tmp = np.empty(n, np.int64)
        count = np.empty(257, np.int64)
        shift = 0
        while (top >> shift) > 0:
            count[:] = 0
            for q in range(n):
                count[((keys[q] >> shift) & 255) + 1] += 1
            if count[((keys[0] >> shift) & 255) + 1] < n:   # (else every key has this digit: the pass changes nothing)
                for d in range(256):
                    count[d + 1] += count[d]
                for q in range(n):
                    x = order[q]
                    d = (keys[x] >> shift) & 255
                    tmp[count[d]] = x
                    count[d] += 1
                order, tmp = tmp, order
            shift += 8
        return order

    n_src = len(lens)
    n = len(items)
    tops = np.empty(n_src, np.float32)
    starts = np.empty(n_src, np.int64)
    silent = 0
    p = 0
    for s in range(n_src):
        lo, hi = p, p + lens[s]
        starts[s] = lo
        p = hi
        if hi == lo:
            silent += 1
            continue
        top = answer_top(scores, lo, hi)
        if not top > 0:
            silent += 1
        tops[s] = top
    if silent or n == 0:   # (before any division: numba raises on a division by zero)
        return silent, np.empty((5, 0), np.int64), np.empty(0, np.float32)

    part = np.empty(n, np.float32)
    srci = np.empty(n, np.int64)
    keys = np.empty(n, np.int64)
    for s in range(n_src):
        top, w = tops[s], np.float32(weights[s])
        for q in range(starts[s], starts[s] + lens[s]):
            part[q] = scores[q] / top * w
            srci[q] = s
            if items[q] < 0:
                raise ValueError("blend_sources: a negative item index")
            keys[q] = items[q]
    order = radix_order(keys, keys.max())

    m = 1
    for t in range(1, n):
        m += keys[order[t]] != keys[order[t - 1]]
    rows = np.empty((5, m), np.int64)
    score = np.empty(m, np.float32)
    u = -1
    acc = 0.0
    best = np.float32(0)
    for t in range(n):
        q = order[t]
        v = part[q]
        if u < 0 or keys[q] != rows[0, u]:
            if u >= 0:
                score[u] = np.float32(acc)
            u += 1
            acc = 0.0
            rows[0, u] = keys[q]
            rows[2, u] = q
            best = v
        elif not np.isnan(v) and (np.isnan(best) or v > best):   # strictly larger: the earliest wins ties
            rows[2, u] = q
            best = v
        acc += np.float64(v)   # bincount: float64, in position order
    score[u] = np.float32(acc)
    for t in range(m):
        s = srci[rows[2, t]]
        rows[1, t] = s
        rows[4, t] = rows[2, t] - starts[s]

    if rank:
        # descending float32 as ascending unsigned keys: the bits of x >= 0 above those of x < 0
        # (whose bits are reversed), the whole reversed; -0.0 as 0.0; NaN after everything
        bits = score.view(np.uint32)
        desc = np.empty(m, np.int64)
        for t in range(m):
            if np.isnan(score[t]):
                desc[t] = 0xFFFFFFFF
            else:
                b = np.int64(bits[t]) if score[t] != 0 else np.int64(0)
                asc = (b ^ 0xFFFFFFFF) if b & 0x80000000 else (b | 0x80000000)
                desc[t] = 0xFFFFFFFF - asc
        rows[3] = radix_order(desc, 0xFFFFFFFF)
    return 0, rows, score


@kernel("boolean(int64, int32[:], int64)")
def in_cart(i, cart, n):
    """Whether ``cart`` has item ``i`` (a scan of a few items; a negative one counts from the end
    of ``n`` items, as ``allowed_mask``'s ``m[ctx.cart_items] = False`` reads it)."""
    for x in cart:
        if x == i or x < 0 and x + n == i:
            return True
    return False


@kernel("boolean(int64, int64, boolean[::1], int64, int32[:], int64[:, ::1], int64[::1], int32[:], int32[:], int64, int64,"
        " int64[:])")
def selectable(i, code, mask, current, cart, held, seen, cat_code, brand_code, max_cat, max_brand, chosen):
    """Whether a slot may show item ``i``, a candidate of the source whose name code is
    ``code``, after the items ``chosen`` (``select_pool``'s tests, which it and ``blend_pick``
    apply to each candidate in order): not when ``mask`` (the rules') refuses it, or it is
    ``current`` or in ``cart`` (the request's part of ``rules.allowed_mask``: -1 and empty
    when ``mask`` has it already); not when it is held (``held``: ``[2, h]`` items and their
    holder's name code) by another name than ``code``; not when it is in ``seen`` (the page's
    products, with dedupe); not when its category (brand) code is >= 0 and ``max_cat``
    (``max_brand``, 0: no cap) of ``chosen`` have it already."""
    def full(codes, i, cap, chosen):
        """Whether ``cap`` of the ``chosen`` items share item ``i``'s code (a code < 0: never)."""
        code = codes[i]
        if code < 0:
            return False
        same = 0
        for j in chosen:
            same += codes[j] == code
        return same >= cap

    if not mask[i] or i == current or in_cart(i, cart, len(mask)):
        return False
    for h in range(held.shape[1]):
        if held[0, h] == i:
            if held[1, h] != code:
                return False
            break
    if i in seen:   # (``in``: a scan of the few products on the page)
        return False
    if max_cat and full(cat_code, i, max_cat, chosen):
        return False
    if max_brand and full(brand_code, i, max_brand, chosen):
        return False
    return True


@kernel("int64[:, ::1](int64[:], int64[:, ::1], boolean[::1], int64, int32[:], int64[:, ::1], int64[::1], int64[::1],"
        " int32[:], int32[:], int64, int64, int64)")
def select_pool(ranking, rows, mask, current, cart, held, src_code, seen, cat_code, brand_code, max_cat, max_brand, count):
    """The pool's first ``count`` candidates a slot may show, in ``ranking`` order (positions
    into the pool's ``rows``: ``blend_sources``' index, best_src, best_at, ranking, best_pos).
    Returns ``[3, c]``: each one's item, source (``best_src``) and position in that source's
    answer (``best_pos``).

    A candidate is skipped when ``selectable`` says so for its item and its best source's
    name code (``src_code[s]``, read only when ``held`` has items): the rules' ``mask``, the request's ``current`` product and
    ``cart``, ``held`` items, the page's products ``seen``, the diversity caps over the
    candidates taken so far.

    It reproduces ``blend.py``'s ``ranking[mask[index[ranking]]]``, ``_lazy_entries`` and
    ``rules.select`` over them (with nothing chosen before) exactly: the same tests (each one
    only skips: their order does not matter), on unique items (a pool's), so that the first
    ``count`` that pass are the same.
    """
    out = np.empty((3, max(min(count, len(ranking)), 0)), np.int64)
    c = 0
    for r in ranking:
        if c >= count:
            break
        i, s = rows[0, r], rows[1, r]
        code = src_code[s] if held.shape[1] else -1   # (read only for held items: may be empty without)
        if selectable(i, code, mask, current, cart, held, seen, cat_code, brand_code, max_cat, max_brand,
                      out[0, :c]):
            out[0, c] = i
            out[1, c] = s
            out[2, c] = rows[4, r]
            c += 1
    return out[:, :c].copy()


@kernel("int64[:, ::1](int32[:], float32[:], int64[::1], float64[::1], int64[::1], boolean[::1], int64, int32[:],"
        " int64[:, ::1], int64[::1], int32[:], int32[:], int64, int64, int64)")
def blend_pick(items, scores, lens, weights, src_code, mask, current, cart, held, seen, cat_code, brand_code, max_cat,
               max_brand, count):
    """``select_pool(rows[3], rows, ...)`` of ``blend_sources(items, scores, lens, weights,
    True)``'s pool, without sorting the pool: what ``slot_select`` needs of it (the selected
    ``[3, c]``: item, source, position in its answer). Every source must say something (a
    non-empty answer with a positive best score; else ValueError): ``slot_select`` has left
    the others out, as ``blend.py`` does.

    Exact as those two: each contribution is the same float32 ``score / top * weight``; the
    items are grouped by a hash table in position order, so each item's float64 sum adds its
    contributions in position order (bincount's, as ``blend_sources``' stable sort by item)
    and its largest contribution is the first maximum in position order (NaN loses); the
    candidates are then taken lazily from a min-heap of one int64 key each: ``blend_sources``'
    descending-score key (NaN last, -0.0 as 0.0) then the item (an int32 >= 0), so in the
    order of its ranking (a stable sort of that key over the items ascending), and
    ``select_pool``'s tests (``selectable``) are applied in that order until ``count`` pass.
    A slot takes ~8 of ~100-400 candidates: the heap's pops cost less than sorting them all.
    """
    n_src, n = len(lens), len(items)
    size = 2
    while size < 2 * n:
        size <<= 1
    table = np.full(size, -1, np.int64)   # open addressing: item's hash -> its place u (-1: free)
    u_item = np.empty(n, np.int64)
    acc = np.empty(n, np.float64)
    best = np.empty(n, np.float32)
    best_src = np.empty(n, np.int64)
    best_pos = np.empty(n, np.int64)
    m = 0
    lo = 0
    for s in range(n_src):
        hi = lo + lens[s]
        if hi == lo:
            raise ValueError("blend_pick: a source without candidates")
        top = answer_top(scores, lo, hi)
        if not top > 0:
            raise ValueError("blend_pick: a source whose best score is not positive")
        w = np.float32(weights[s])
        for q in range(lo, hi):
            v = scores[q] / top * w
            it = np.int64(items[q])
            if it < 0:
                raise ValueError("blend_pick: a negative item index")
            h = (it * 2654435761) & (size - 1)
            while True:
                u = table[h]
                if u < 0:   # a new item
                    u = m
                    m += 1
                    table[h] = u
                    u_item[u], acc[u], best[u], best_src[u], best_pos[u] = it, 0.0, v, s, q - lo
                    break
                if u_item[u] == it:
                    b = best[u]
                    if not np.isnan(v) and (np.isnan(b) or v > b):   # strictly larger: the earliest wins ties
                        best[u], best_src[u], best_pos[u] = v, s, q - lo
                    break
                h = (h + 1) & (size - 1)
            acc[u] += np.float64(v)   # bincount: float64, in position order
        lo = hi

    # descending float32 score as ascending unsigned keys (``blend_sources``' ranking), then the item
    heap = np.empty(m, np.int64)
    bits = np.empty(1, np.float32)
    as_int = bits.view(np.uint32)
    for u in range(m):
        f = np.float32(acc[u])
        if np.isnan(f):
            desc = np.int64(0xFFFFFFFF)
        else:
            bits[0] = f
            b = np.int64(as_int[0]) if f != 0 else np.int64(0)
            asc = (b ^ 0xFFFFFFFF) if b & 0x80000000 else (b | 0x80000000)
            desc = 0xFFFFFFFF - asc
        heap[u] = (desc << 31) | u_item[u]

    for p in range(m // 2 - 1, -1, -1):   # heapify: each inner place sifted down in its subtree
        sift_down(heap, m, heap[p], p)

    out = np.empty((3, max(min(count, m), 0)), np.int64)
    c = 0
    left = m
    while c < count and left > 0:
        key = heap[0]
        left -= 1
        sift_down(heap, left, heap[left], 0)
        i = key & 0x7FFFFFFF
        h = (i * 2654435761) & (size - 1)
        while u_item[table[h]] != i:
            h = (h + 1) & (size - 1)
        u = table[h]
        s = best_src[u]
        code = src_code[s] if held.shape[1] else -1   # (as ``select_pool``)
        if selectable(i, code, mask, current, cart, held, seen, cat_code, brand_code, max_cat, max_brand,
                      out[0, :c]):
            out[0, c], out[1, c], out[2, c] = i, s, best_pos[u]
            c += 1
    return out[:, :c].copy()


@kernel("Tuple((int64[::1], float32[::1]))(int32[:], float32[:], int64[::1], float64[::1], boolean[::1], int64,"
        " int32[:], int64[:, ::1], int64[::1], int64[::1], int32[:], int32[:], int64, int64, int64)")
def blend_select(items, scores, lens, weights, mask, current, cart, held, src_code, seen, cat_code, brand_code,
                 max_cat, max_brand, count):
    """Steps 1-3 of a slot in one call: ``blend_sources`` (with the blend order), then
    ``select_pool`` in that order; the same helpers compiled into it, so exact as they are.

    Returns ``(packed, score)``: ``score`` the pool's (``blend_sources``), ``packed`` int64:
    ``[silent, m, c]``, then the ``c`` selected as (item, source, position) triples, then the
    pool's ``rows`` (``[5, m]``, row after row). ``silent`` > 0: a source said nothing (see
    ``blend_sources``) and nothing else is computed (the caller blends again without it).
    """
    silent, rows, score = blend_sources(items, scores, lens, weights, True)
    if silent:
        out = np.zeros(3, np.int64)
        out[0] = silent
        return out, score
    got = select_pool(rows[3], rows, mask, current, cart, held, src_code, seen, cat_code, brand_code,
                      max_cat, max_brand, count)
    m, c = rows.shape[1], got.shape[1]
    out = np.empty(3 + 3 * c + 5 * m, np.int64)
    out[0], out[1], out[2] = 0, m, c
    for t in range(c):
        out[3 + 3 * t], out[4 + 3 * t], out[5 + 3 * t] = got[0, t], got[1, t], got[2, t]
    out[3 + 3 * c:] = rows.ravel()
    return out, score


QUERIES = 4   # table queries (and distinct tables) one ``slot_select`` call takes
SOURCES = 8   # sources of a strategy ``slot_select`` takes


@kernel("int64[::1](int64[::1], int64[::1], int32[::1], float32[::1], int32[::1])")
def with_answers(head, q_start, q_items, q_scores, q_closest):
    """``head`` (``slot_select``'s selection), then the queries' answers: ``q_start``
    (``QUERIES + 1`` ends) and each entry as (item, its float32 score's bits, closest seed)."""
    n = q_start[QUERIES]
    out = np.empty(len(head) + QUERIES + 1 + 3 * n, np.int64)
    out[:len(head)] = head
    at = len(head)
    out[at:at + QUERIES + 1] = q_start
    at += QUERIES + 1
    bits = np.empty(1, np.float32)
    as_int = bits.view(np.uint32)
    for p in range(n):
        bits[0] = q_scores[p]
        out[at + 3 * p], out[at + 3 * p + 1], out[at + 3 * p + 2] = q_items[p], as_int[0], q_closest[p]
    return out


@kernel("int64[::1](UniTuple(int32[:, ::1], 4), UniTuple(float32[:, ::1], 4), UniTuple(int32[::1], 4),"
        " UniTuple(int64, 4), UniTuple(int64, 4), UniTuple(float64, 4), UniTuple(float64, 4),"
        " UniTuple(int64[::1], 4), UniTuple(float32[::1], 4),"
        " UniTuple(int32[::1], 4), UniTuple(float32[::1], 4), UniTuple(int64[::1], 4), UniTuple(int64, 4), int64,"
        " int64[::1], int32[:], float32[:], int64[::1], UniTuple(int64, 8), float64[::1], int64[::1],"
        " boolean[::1], int64, int32[:], int64[:, ::1], int64[::1], int32[:], int32[:], int64, int64, int64, int32[::1],"
        " float64[:, ::1], int64, int32[::1], int32[::1])")
def slot_select(pads, tscores, ends, qa, qb, mix_a, mix_b, seeds, weights, more, more_w, drops, walks, k, prior, items,
                scores, lens, src, src_weight, src_code, mask, current, cart, held, seen, cat_code, brand_code, max_cat,
                max_brand, count, slot_map, cols, item, page_cart, page_order):
    """Steps 1-3 of a slot whose neighbour-sum sources are given as table queries: each query's
    answer (``neighbour_top``, compiled into this call), the blend of the answers in the
    strategy's order, then the selection (``blend_pick``, exact as ``blend_sources`` then
    ``select_pool``, which ``blend_select`` runs); helpers exact as they are.

    The tables: ``pads[t]``, ``tscores[t]``, ``ends[t]`` (``Neighbours.table()``; unused
    ones any array). Query ``q`` (< ``QUERIES``): tables ``qa[q]`` (-1: no query q) and
    ``qb[q]``, mixed ``mix_a[q]``, ``mix_b[q]`` (cast to float32 as
    ``neighbour_top``'s callers' are), ``seeds[q]``, ``weights[q]``, ``more[q]``,
    ``more_w[q]``, ``drops[q]`` and ``k``: ``neighbour_top``'s arguments; ``qa[q]`` < -1: the
    answer is query ``-2 - qa[q]``'s of ``prior``, an earlier call's output (the same query
    asked by another slot of the request: copied, not computed again). ``walks[q]`` >= 0: the
    query's seeds are not ``seeds[q]`` and ``weights[q]`` but walked here from the request's
    interactions ``cols`` (``base.walk_columns``), current product ``item`` and page's
    ``page_cart`` and ``page_order`` (``kernels/seeds.walk_view``: a ``_tables.QuerySpec``'s
    view), with the current product as its ``drops[q]`` when the walk says so; a walked view
    that its table does not take (what the source's ``query`` checks before its kernel call)
    refuses the call: ``[-1]`` is returned, nothing computed (the caller asks the queries
    then). ``items``,
    ``scores``, ``lens``: the other sources' answers, one after the other. ``src[j]`` per
    source of the strategy (``len(src_weight)`` of them, weights ``src_weight``, name codes
    ``src_code``): q < ``QUERIES`` for query q's answer, ``QUERIES + r`` for ready answer r,
    -1 for none (not applicable, failed). The rest: ``blend_select``'s selection arguments, and
    ``slot_map``, the queries' product map (``neighbour_top_in``'s ``slot``: zeros, longer than
    the tables' items; zeros again on return, dirty after an exception).

    As ``blend.py``'s path without it: the non-empty answers in the strategy's order, those
    whose best score is not positive (or NaN) left out (``blend._blend``: they say nothing),
    blended and selected in the blend order (``blend_pick``: as ``blend_sources`` then
    ``select_pool``). Returns int64 ``[c, then c x (item, source j, position in its answer,
    closest seed)]``: the closest seed (the reason's) of a query's product, -1 for a ready
    answer's; then the queries' answers: where each starts (``QUERIES + 1`` ends, in answer
    entries) and every entry as (item, its float32 score's bits, closest seed), query after
    query (what a later call reads as its ``prior``).
    """
    n_src = len(src_weight)
    # the walked queries' seeds, every one before any sum (a refused view: nothing computed)
    w_items = np.empty((QUERIES, MAX_ITEMS), np.int64)
    w_weights = np.empty((QUERIES, MAX_ITEMS), np.float32)
    w_n = np.zeros(QUERIES, np.int64)
    for q in range(QUERIES):
        if qa[q] >= 0 and walks[q] >= 0:
            if walks[q] // WALK_STEP > MAX_ITEMS:
                raise ValueError("slot_select: a walk longer than MAX_ITEMS")
            w_n[q] = walk_view(cols, walks[q], item, page_cart, page_order, w_items[q], w_weights[q],
                               pads[qa[q]].shape[0])
            if w_n[q] < 0:
                return np.full(1, -1, np.int64)
    drop_item = np.full(1, item, np.int64)   # (a walked query's drop: the current product)
    # the queries' answers one after the other (each at most k long), and where each starts
    q_start = np.zeros(QUERIES + 1, np.int64)
    q_items = np.empty(QUERIES * max(k, 0), np.int32)
    q_scores = np.empty(QUERIES * max(k, 0), np.float32)
    q_closest = np.empty(QUERIES * max(k, 0), np.int32)
    bits = np.empty(1, np.float32)   # (a float32's bits in the int64 output)
    as_int = bits.view(np.uint32)
    for q in range(QUERIES):
        lo = q_start[q]
        q_start[q + 1] = lo
        a, b = qa[q], qb[q]
        if a == -1:
            continue
        if a < -1:   # an earlier call's answer of the same query, copied
            at = 1 + 4 * prior[0]
            p_lo, p_hi = prior[at - 2 - a], prior[at - 1 - a]
            n = p_hi - p_lo
            if n > k:
                raise ValueError("slot_select: a prior answer longer than k")
            at += QUERIES + 1 + 3 * p_lo
            for p in range(n):
                q_items[lo + p] = prior[at + 3 * p]
                as_int[0] = np.uint32(prior[at + 3 * p + 1])
                q_scores[lo + p] = bits[0]
                q_closest[lo + p] = prior[at + 3 * p + 2]
            q_start[q + 1] = lo + n
            continue
        q_seeds, q_weights, q_drop = seeds[q], weights[q], drops[q]
        if walks[q] >= 0:
            q_seeds, q_weights = w_items[q, :w_n[q]], w_weights[q, :w_n[q]]
            if (walks[q] & WALK_DROP) != 0 and item >= 0:
                q_drop = drop_item
        got_i, got_s, got_c = neighbour_top_in(pads[a], tscores[a], ends[a], pads[b], tscores[b], ends[b],
                                               np.float32(mix_a[q]), np.float32(mix_b[q]), q_seeds,
                                               q_weights, more[q], more_w[q], q_drop, k, slot_map)
        n = len(got_i)
        q_items[lo:lo + n], q_scores[lo:lo + n], q_closest[lo:lo + n] = got_i, got_s, got_c
        q_start[q + 1] = lo + n
    r_start = np.zeros(len(lens) + 1, np.int64)
    for r in range(len(lens)):
        r_start[r + 1] = r_start[r] + lens[r]

    # the answers that say something, in the strategy's order
    keep = np.zeros(n_src, np.bool_)
    total = 0
    n_b = 0
    for j in range(n_src):
        v = src[j]
        if v < 0:
            continue
        lo, hi = (q_start[v], q_start[v + 1]) if v < QUERIES else (r_start[v - QUERIES], r_start[v - QUERIES + 1])
        if hi == lo:
            continue
        top = answer_top(q_scores, lo, hi) if v < QUERIES else answer_top(scores, lo, hi)
        if top > 0:
            keep[j] = True
            total += hi - lo
            n_b += 1
    if n_b == 0:
        return with_answers(np.zeros(1, np.int64), q_start, q_items, q_scores, q_closest)
    b_items = np.empty(total, np.int32)
    b_scores = np.empty(total, np.float32)
    b_lens = np.empty(n_b, np.int64)
    b_weight = np.empty(n_b, np.float64)
    b_code = np.empty(n_b, np.int64)
    b_src = np.empty(n_b, np.int64)
    p = 0
    s = 0
    for j in range(n_src):
        if not keep[j]:
            continue
        v = src[j]
        if v < QUERIES:
            lo, hi = q_start[v], q_start[v + 1]
            b_items[p:p + hi - lo], b_scores[p:p + hi - lo] = q_items[lo:hi], q_scores[lo:hi]
        else:
            lo, hi = r_start[v - QUERIES], r_start[v - QUERIES + 1]
            b_items[p:p + hi - lo], b_scores[p:p + hi - lo] = items[lo:hi], scores[lo:hi]
        p += hi - lo
        b_lens[s], b_weight[s], b_code[s], b_src[s] = hi - lo, src_weight[j], src_code[j], j
        s += 1

    got = blend_pick(b_items, b_scores, b_lens, b_weight, b_code, mask, current, cart, held, seen, cat_code, brand_code,
                     max_cat, max_brand, count)   # (none silent: all kept say something)
    c = got.shape[1]
    out = np.empty(1 + 4 * c, np.int64)
    out[0] = c
    for t in range(c):
        j, pos = b_src[got[1, t]], got[2, t]
        v = src[j]
        out[1 + 4 * t], out[2 + 4 * t], out[3 + 4 * t] = got[0, t], j, pos
        out[4 + 4 * t] = q_closest[q_start[v] + pos] if v < QUERIES else -1
    return with_answers(out, q_start, q_items, q_scores, q_closest)


# ``slot_select_2``'s and ``slot_select_4``'s arguments after the queries' (``k``, the ready
# answers: the first two apart, the others concatenated; the selection's)
_SLOT_REST = (" int64, int64[::1], int32[:], float32[:], int32[:], float32[:], int32[:], float32[:], int64[::1], UniTuple(int64, 8),"
              " float64[::1], int64[::1], boolean[::1], int64, int32[:], int64[:, ::1], int64[::1], int32[:], int32[:],"
              " int64, int64, int64, int32[::1], float64[:, ::1], int64, int32[::1], int32[::1])")


@kernel("Tuple((int32[::1], float32[::1], int64[::1]))(int32[:], float32[:], int32[:], float32[:], int32[:], float32[:],"
        " int64[::1])")
def ready_answers(items0, scores0, items1, scores1, items, scores, lens):
    """The ready answers as ``slot_select`` takes them (one after the other, and their lengths)
    from the first two passed apart and the others concatenated (``lens``): the caller does
    not concatenate (two numpy calls, ~1 µs each); a copy of a few hundred numbers here."""
    n0, n1 = len(items0), len(items1)
    all_items = np.empty(n0 + n1 + len(items), np.int32)
    all_scores = np.empty(n0 + n1 + len(items), np.float32)
    all_items[:n0], all_scores[:n0] = items0, scores0
    all_items[n0:n0 + n1], all_scores[n0:n0 + n1] = items1, scores1
    all_items[n0 + n1:], all_scores[n0 + n1:] = items, scores
    all_lens = np.empty(2 + len(lens), np.int64)
    all_lens[0], all_lens[1] = n0, n1
    all_lens[2:] = lens
    return all_items, all_scores, all_lens


_TABLE = " int32[:, ::1], float32[:, ::1], int32[::1],"
_QUERY = " int64, int64, float64, float64, int64[::1], float32[::1], int32[::1], float32[::1], int64[::1], int64,"


@kernel("int64[::1](" + _TABLE * 2 + _QUERY * 2 + _SLOT_REST)
def slot_select_2(pads0, tscores0, ends0, pads1, tscores1, ends1,
                  qa0, qb0, mix_a0, mix_b0, seeds0, weights0, more0, more_w0, drops0, walk0,
                  qa1, qb1, mix_a1, mix_b1, seeds1, weights1, more1, more_w1, drops1, walk1,
                  k, prior, items0, scores0, items1, scores1, items, scores, lens, src, src_weight, src_code, mask,
                  current, cart, held, seen, cat_code, brand_code, max_cat, max_brand, count, slot_map, cols, item,
                  page_cart, page_order):
    """``slot_select`` for a slot with at most two tables and two queries (most slots), each
    table's and query's arguments flat instead of in 4-tuples: the same call (compiled into
    this one), padded here with unused tables (table 0 again) and queries (no table: -1, query
    0's arrays). Why: numba's dispatch costs per argument, and a tuple of 4 costs 4; this
    call takes 46 where ``slot_select`` takes 66 (an empty-bodied kernel of each signature: ~2.0 µs
    a call against ~3.7, with 41). The ready answers: the first two apart, the others
    concatenated (``ready_answers``)."""
    all_items, all_scores, all_lens = ready_answers(items0, scores0, items1, scores1, items, scores, lens)
    return slot_select((pads0, pads1, pads0, pads0), (tscores0, tscores1, tscores0, tscores0),
                       (ends0, ends1, ends0, ends0), (qa0, qa1, -1, -1), (qb0, qb1, -1, -1),
                       (mix_a0, mix_a1, 0.0, 0.0), (mix_b0, mix_b1, 0.0, 0.0), (seeds0, seeds1, seeds0, seeds0),
                       (weights0, weights1, weights0, weights0), (more0, more1, more0, more0),
                       (more_w0, more_w1, more_w0, more_w0), (drops0, drops1, drops0, drops0), (walk0, walk1, -1, -1), k,
                       prior, all_items, all_scores, all_lens, src, src_weight, src_code, mask, current, cart, held, seen,
                       cat_code, brand_code, max_cat, max_brand, count, slot_map, cols, item, page_cart, page_order)


@kernel("int64[::1](" + _TABLE * 4 + _QUERY * 4 + _SLOT_REST)
def slot_select_4(pads0, tscores0, ends0, pads1, tscores1, ends1, pads2, tscores2, ends2, pads3, tscores3, ends3,
                  qa0, qb0, mix_a0, mix_b0, seeds0, weights0, more0, more_w0, drops0, walk0,
                  qa1, qb1, mix_a1, mix_b1, seeds1, weights1, more1, more_w1, drops1, walk1,
                  qa2, qb2, mix_a2, mix_b2, seeds2, weights2, more2, more_w2, drops2, walk2,
                  qa3, qb3, mix_a3, mix_b3, seeds3, weights3, more3, more_w3, drops3, walk3,
                  k, prior, items0, scores0, items1, scores1, items, scores, lens, src, src_weight, src_code, mask,
                  current, cart, held, seen, cat_code, brand_code, max_cat, max_brand, count, slot_map, cols, item,
                  page_cart, page_order):
    """``slot_select`` with every table's and query's arguments flat (``QUERIES`` of each;
    unused ones as ``slot_select`` takes them): the same call, compiled into this one. Why:
    numba's dispatch reads a tuple's elements more slowly than as many plain arguments (an
    empty-bodied kernel of each signature, a slot's real arguments: ~3.3 µs a call against
    ~4.4); what a slot with more than two tables or queries calls (``slot_select_2`` the others)."""
    all_items, all_scores, all_lens = ready_answers(items0, scores0, items1, scores1, items, scores, lens)
    return slot_select((pads0, pads1, pads2, pads3), (tscores0, tscores1, tscores2, tscores3),
                       (ends0, ends1, ends2, ends3), (qa0, qa1, qa2, qa3), (qb0, qb1, qb2, qb3),
                       (mix_a0, mix_a1, mix_a2, mix_a3), (mix_b0, mix_b1, mix_b2, mix_b3),
                       (seeds0, seeds1, seeds2, seeds3), (weights0, weights1, weights2, weights3),
                       (more0, more1, more2, more3), (more_w0, more_w1, more_w2, more_w3),
                       (drops0, drops1, drops2, drops3), (walk0, walk1, walk2, walk3), k, prior, all_items, all_scores,
                       all_lens, src, src_weight, src_code, mask, current, cart, held, seen, cat_code, brand_code, max_cat,
                       max_brand, count, slot_map, cols, item, page_cart, page_order)


@kernel("int64[:, ::1](int64[::1], float32[::1], boolean[::1], int64, int32[:], int64[:], int64[::1], int64[::1],"
        " int32[:], int32[:], int64, int64, int64)")
def catalog_net(order, score, mask, current, cart, held, chosen, seen, cat_code, brand_code, max_cat, max_brand, count):
    """The catalog net's products (``blend._catalog_net``): the first ``count`` of ``order``
    (``catalog_order``: most popular first, then newest; ``score`` alongside) that the slot
    may add. Returns ``[2, c]``: each one's item and whether its score is above 1e-3 (1:
    "popular in the shop", 0: "new in the shop").

    A product is skipped when ``mask`` (the rules') refuses it or it is ``current`` or in
    ``cart`` (the request's part of ``rules.allowed_mask``, as ``selectable`` reads them: -1
    and empty when ``mask`` has it already), when it is ``held`` (for any recommender: the
    net brings none back), when it is in ``chosen`` (the slot's products so far) or ``seen``
    (the page's, with dedupe), when its category (brand) code is >= 0 and ``max_cat``
    (``max_brand``; 0: no cap) of the slot's products, ``chosen`` and those taken here,
    already have it.

    It reproduces the Python net it replaced exactly: its generator over ``order`` (chunks
    filtered by ``mask``, held items left out, the score read as a Python float, compared
    with 1e-3) through ``rules.select(..., already=chosen)``: the same tests, in ``order``,
    with the caps counted over ``chosen`` first, and select's stop (after an entry is taken,
    when ``count`` are: a ``count`` below 1 takes one).
    """
    n_chosen = len(chosen)
    picked = np.empty(n_chosen + max(count, 1), np.int64)   # what the caps count: the slot's, then the net's
    picked[:n_chosen] = chosen
    out = np.empty((2, max(min(count, len(order)), 1)), np.int64)
    c = 0
    n = len(mask)
    for t in range(len(order)):
        i = order[t]
        if not mask[i] or i == current or in_cart(i, cart, n) or i in held or i in chosen or i in seen:
            continue   # (``in``: scans of a few products)
        capped = False
        for codes, cap in ((cat_code, max_cat), (brand_code, max_brand)):   # (a code < 0: never capped)
            if cap and not capped and codes[i] >= 0:
                same = 0
                for j in picked[:n_chosen + c]:
                    same += codes[j] == codes[i]
                capped = same >= cap
        if capped:
            continue
        out[0, c] = i
        picked[n_chosen + c] = i
        out[1, c] = np.float64(score[t]) > 1e-3
        c += 1
        if c >= count:
            break
    return out[:, :c].copy()


@kernel("int64[::1](int64[::1], int64, int32[:], int64[:, ::1], int64[::1], int64[::1], int64[::1], boolean, int64[::1],"
        " float32[::1], boolean[::1], int32[:], int32[:], int64, int64, int64)")
def exhausted_net(first, current, cart, held, fallbacks, chosen, seen, net, order, score, mask, cat_code, brand_code,
                  max_cat, max_brand, count):
    """Steps 4-5 of a short slot whose rules allow few products, when none of those is left:
    ``blend.run_slot``'s ``_addable`` test, then (``net``: the slot is scoped to a category)
    the catalog net over the unscoped rules' ``mask``, in one call. Returns int64 ``[0]`` when
    a fallback or the net could still add a product (the caller takes the steps one by one),
    else ``[1, then c x (item, popular)]``: ``catalog_net``'s products (none without ``net``).

    ``first``: the products the slot's rules allow (``rules._rules_mask``, scoped when the
    slot is), ascending; with ``current`` and ``cart`` left out, ``allowed_mask``'s products
    (the whole mask, ``exempt_bought``). ``_addable`` reproduced: more than 64 of them, or
    one that is not in ``chosen``, not in ``seen`` (the page's, with dedupe), and not held
    (``held``: ``[2, h]`` items and their holder's name code) for a recommender whose code
    is not among ``fallbacks``: then a fallback or the net may add it. Otherwise neither the
    fallbacks nor the scoped net is asked (they could add nothing), and the unscoped net is
    ``catalog_net(order, score, mask, current, cart, held[0], chosen, seen, ...)``, as the
    steps one by one run it.
    """
    n = len(mask)
    left = 0
    for i in first:
        if i == current or in_cart(i, cart, n):
            continue
        left += 1
        if left > 64:   # (``_addable``: a large mask is not checked)
            return np.zeros(1, np.int64)
        if i in chosen or i in seen:
            continue
        free = True
        for h in range(held.shape[1]):
            if held[0, h] == i:
                free = False
                for f in fallbacks:
                    free = free or held[1, h] == f
                break
        if free:
            return np.zeros(1, np.int64)
    if not net:
        return np.ones(1, np.int64)
    got = catalog_net(order, score, mask, current, cart, held[0], chosen, seen, cat_code, brand_code, max_cat,
                      max_brand, count)
    c = got.shape[1]
    out = np.empty(1 + 2 * c, np.int64)
    out[0] = 1
    for t in range(c):
        out[1 + 2 * t], out[2 + 2 * t] = got[0, t], got[1, t]
    return out
