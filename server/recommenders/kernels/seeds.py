"""A request's seeds, compiled (``server/jit.py``): ``Context``'s session and page seeds as the
item sources take them, in one call a view.

``Context.session_items`` walks the visitor's recent interactions (``_SessionWalk``) and
``Context.seed_items`` puts the page's products before them; the item sources then want each
view as ``SeedVectors`` (items int64, weights float32, their range and sign). In Python that
is a loop over the interactions, a tuple, then a conversion to arrays (~6 µs a view); here it
is one call over the interactions as columns (``base.walk_columns``, made when the live state
is bound: ``live.py``) returning the arrays (~1.5 µs a view warm; a request's first call pays
the cold start of its code and columns, a few µs; all of a request's usual views in one call
was measured and gave nothing); the float64 weights, which only a view's pairs and a few
sources read, by a second call when asked (``session_weights``, ``page_weights``). Same
answers, bit for bit (``tests/recommenders/test_seed_kernels.py`` compares them with the
Python walk):

- the walk: the columns hold the interactions the walk keeps in any case (a known product, a
  kind of interest, not a bounce), in list order; ``in_session_only`` skips those of earlier
  visits; a product's weight is ``0.0 + w * decay * f + ...`` in float64 in list order, ``decay``
  the recency decay of the latest new product (``DECAY``, ``0.8 ** rank`` as Python computes
  it), ``f`` 1.0 in this session else 0.3; the walk stops at the first product beyond
  ``max_items``; products whose weight is not > 0 (NaN) are left out after it;
- the page's seeds: the current product (3.0), the cart and order items (2.0; a product
  already there keeps its weight: ``max(3.0 or 2.0, 2.0)`` changes nothing), then the
  session's products not among them, ``min(w, 2.0) x 0.2`` (x 1.0 without page products), the
  first ``max_items`` in that order (a dict's insertion order, cut by ``islice``);
- float32 weights as numpy casts the float64 ones; ``positive`` judged on the float64 ones.
Bounds: ``max_items`` from 0 to ``MAX_ITEMS`` (the walk's decay table); ``Context`` walks
others in Python.
"""
from __future__ import annotations

import numpy as np

from ...jit import kernel

MAX_ITEMS = 64
DECAY = np.array([0.8 ** rank for rank in range(MAX_ITEMS)])   # (Python's pow, as the walk's table)


@kernel("int64(float64[:, ::1], int64, boolean, int64[::1], float64[::1])")
def session_walk(cols, max_items, only, items, weights):
    """``_SessionWalk`` from the start with the bound ``max_items`` (0..``MAX_ITEMS``), then
    the > 0 filter: writes the products (newest first) and their weights to ``items`` and
    ``weights`` (at least ``max_items`` long) and returns how many. ``cols``: [n, 3] rows
    (item, weight, in_session 1.0/0.0) of ``base.walk_columns``."""
    n = 0
    decay = 1.0
    for j in range(cols.shape[0]):
        insess = cols[j, 2] != 0.0
        if only and not insess:
            continue
        item = np.int64(cols[j, 0])
        pos = -1
        for p in range(n):
            if items[p] == item:
                pos = p
                break
        if pos < 0:
            if n >= max_items:
                break
            decay = DECAY[n]
            pos = n
            items[pos] = item
            weights[pos] = 0.0
            n += 1
        weights[pos] = weights[pos] + cols[j, 1] * decay * (1.0 if insess else 0.3)
    m = 0
    for p in range(n):
        if weights[p] > 0.0:   # (NaN is not)
            items[m] = items[p]
            weights[m] = weights[p]
            m += 1
    return m


@kernel("UniTuple(int64, 3)(int64[::1], float64[::1], float32[::1], int64)")
def seed_stats(items, weights, weights32, n):
    """The first ``n`` seeds' float32 weights into ``weights32``, and (the smallest item or 0,
    1 + the largest or 0, 1 when every weight > 0 else 0)."""
    low = 0
    end = 0
    positive = 1
    for p in range(n):
        i = items[p]
        if p == 0 or i < low:
            low = i
        if p == 0 or i + 1 > end:
            end = i + 1
        w = weights[p]
        if not w > 0.0:
            positive = 0
        weights32[p] = np.float32(w)
    return low, end, positive


@kernel("int64(float64[:, ::1], int64, int64, int32[::1], int32[::1], int64[::1], float64[::1])")
def page_walk(cols, max_items, item, cart, order, items, weights):
    """``Context.seed_items(max_items)`` (see the module docstring): the current product ``item``
    (< 0: none), the ``cart`` and ``order`` items, then the session's; written as
    ``session_walk`` writes a walk."""
    n = 0
    if item >= 0 and n < max_items:
        items[n] = item
        weights[n] = 3.0
        n += 1
    paged = item >= 0 or len(cart) > 0 or len(order) > 0
    for k in range(len(cart) + len(order)):
        if n >= max_items:
            break
        i = np.int64(cart[k]) if k < len(cart) else np.int64(order[k - len(cart)])
        new = True
        for p in range(n):
            if items[p] == i:
                new = False
                break
        if new:
            items[n] = i
            weights[n] = 2.0
            n += 1
    if n < max_items:
        s_items = np.empty(max_items, np.int64)
        s_weights = np.empty(max_items, np.float64)
        m = session_walk(cols, max_items, False, s_items, s_weights)
        paged_n = n
        scale = 0.2 if paged else 1.0
        for q in range(m):
            if n >= max_items:
                break
            i = s_items[q]
            new = True
            for p in range(paged_n):   # (the session's products are distinct)
                if items[p] == i:
                    new = False
                    break
            if new:
                w = s_weights[q]
                items[n] = i
                weights[n] = (2.0 if 2.0 < w else w) * scale
                n += 1
    return n


_OUT = "Tuple((int64[::1], float32[::1], int64, int64, boolean))"   # one view, as ``SeedVectors``


@kernel(_OUT + "(float64[:, ::1], int64, boolean)")
def session_seeds(cols, max_items, only):
    """``Context.session_items(max_items, only)`` as ``SeedVectors`` take them: (items, float32
    weights, the smallest item or 0, 1 + the largest or 0, every weight > 0 (judged on the
    float64 ones)). The float64 weights, which few requests read, are ``session_weights``'
    (each returned array costs ~0.4 µs to hand to Python)."""
    items = np.empty(max_items, np.int64)
    weights = np.empty(max_items, np.float64)
    weights32 = np.empty(max_items, np.float32)
    n = session_walk(cols, max_items, only, items, weights)
    low, end, positive = seed_stats(items, weights, weights32, n)
    return items[:n], weights32[:n], low, end, positive == 1


@kernel("float64[::1](float64[:, ::1], int64, boolean)")
def session_weights(cols, max_items, only):
    """The float64 weights of ``session_seeds``' view (the same walk)."""
    items = np.empty(max_items, np.int64)
    weights = np.empty(max_items, np.float64)
    n = session_walk(cols, max_items, only, items, weights)
    return weights[:n]


@kernel(_OUT + "(float64[:, ::1], int64, int64, int32[::1], int32[::1])")
def page_seeds(cols, max_items, item, cart, order):
    """``Context.seed_items(max_items)`` as ``SeedVectors`` take them (``page_walk``), as
    ``session_seeds`` gives a walk; its float64 weights are ``page_weights``'."""
    items = np.empty(max_items, np.int64)
    weights = np.empty(max_items, np.float64)
    weights32 = np.empty(max_items, np.float32)
    n = page_walk(cols, max_items, item, cart, order, items, weights)
    low, end, positive = seed_stats(items, weights, weights32, n)
    return items[:n], weights32[:n], low, end, positive == 1


@kernel("float64[::1](float64[:, ::1], int64, int64, int32[::1], int32[::1])")
def page_weights(cols, max_items, item, cart, order):
    """The float64 weights of ``page_seeds``' view (the same walk)."""
    items = np.empty(max_items, np.int64)
    weights = np.empty(max_items, np.float64)
    n = page_walk(cols, max_items, item, cart, order, items, weights)
    return weights[:n]


# ``walk_view``'s ``walk``: ``max_items * WALK_STEP + flags`` (``walk_code``)
WALK_PAGE = 1        # the page's seeds (``page_walk``), else the session's (``session_walk``)
WALK_ONLY = 2        # the session's: this session's interactions only
WALK_DROP = 4        # the current product is left out of the answer (``drop``)
WALK_POSITIVE = 8    # a view with a weight not > 0 is refused (``Neighbours``'; any weight for text rows)
WALK_STEP = 16


def walk_code(max_items: int, page: bool, only: bool = False, drop: bool = False, positive: bool = True) -> int:
    """``walk_view``'s ``walk`` for a view of ``max_items`` (0..``MAX_ITEMS``)."""
    return (max_items * WALK_STEP + (WALK_PAGE if page else 0) + (WALK_ONLY if only else 0)
            + (WALK_DROP if drop else 0) + (WALK_POSITIVE if positive else 0))


@kernel("int64(float64[:, ::1], int64, int64, int32[::1], int32[::1], int64[::1], float32[::1], int64)")
def walk_view(cols, walk, item, cart, order, items, weights32, rows):
    """A table query's seeds walked in the call that sums them (``placements/kernels.slot_select``,
    a ``_tables.QuerySpec``'s ``walk``): ``page_seeds`` (``WALK_PAGE``) or ``session_seeds`` of
    ``walk // WALK_STEP`` items, their items and float32 weights written to ``items`` and
    ``weights32`` (at least that long); returns how many, or -1 when the view is not one the
    source's table of ``rows`` items takes (an item out of range; with ``WALK_POSITIVE`` a
    weight not > 0, judged on the float64 ones): what its ``query`` checks (``SeedVectors.fits``)
    before it hands the view to ``neighbour_top``, else it answers otherwise."""
    max_items = walk // WALK_STEP
    weights = np.empty(max_items, np.float64)
    if walk & WALK_PAGE:
        n = page_walk(cols, max_items, item, cart, order, items, weights)
    else:
        n = session_walk(cols, max_items, (walk & WALK_ONLY) != 0, items, weights)
    low, end, positive = seed_stats(items, weights, weights32, n)
    if low < 0 or end > rows or ((walk & WALK_POSITIVE) != 0 and positive == 0):
        return -1
    return n
