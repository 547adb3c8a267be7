"""The requesting visitor as weighted items (private: not a recommender).

``visitor_items(ds, ctx)``: the person's row of the model's feedback matrix ``ds.R`` (what they
did up to the last build) merged with the live session items read at request time
(``ctx.session_items``), the current product (weight 1) and the cart / order items (weight 3, a
cart add), so an event posted a moment ago counts on the very next request.
"""
from __future__ import annotations

import numpy as np

from .kernels.sums import merge_visitor_items


def visitor_items(ds, ctx, max_live: int = 20) -> tuple[np.ndarray, np.ndarray, bool]:
    """(item indices int64, weights float64, has_live) — items unique, weights > 0.

    ``has_live``: whether live items add anything the model row lacks (then a trained
    person vector is stale and should be recomputed)."""
    R = ds.R
    if 0 <= ctx.person < R.shape[0]:
        a, b = R.indptr[ctx.person], R.indptr[ctx.person + 1]
        own_i = R.indices[a:b].astype(np.int64)
        own_w = R.data[a:b].astype(np.float64)
    else:
        own_i, own_w = np.zeros(0, np.int64), np.zeros(0)
    n = ds.n_items
    # item -> largest live weight (few items: plain Python); session items are distinct, > 0
    live = {i: v for i, v in ctx.session_items(max_live) if 0 <= i < n}
    if 0 <= ctx.item < n:
        live[int(ctx.item)] = max(live.get(int(ctx.item), 0.0), 1.0)   # the current product
    for i in ctx.cart_items.tolist() + ctx.order_items.tolist():
        if 0 <= i < n:
            live[i] = max(live.get(i, 0.0), 3.0)                     # cart / order: a cart add
    if not R.has_canonical_format:  # unsorted or repeated indices: the general merge
        return _merge(own_i, own_w, live)
    # own_i is sorted and unique: live items already in the row raise its weight, the others
    # are inserted (one kernel call)
    li = np.fromiter(live, np.int64, len(live))
    lw = np.fromiter(live.values(), np.float64, len(live))
    return merge_visitor_items(own_i, own_w, li, lw, _positive(ds))


def _positive(ds) -> bool:
    """Whether every stored weight of ``ds.R`` is > 0 (checked once per dataset)."""
    return ds.derived("R_positive", lambda ds: bool((ds.R.data > 0).all()))


def _merge(own_i: np.ndarray, own_w: np.ndarray, live: dict[int, float]) -> tuple[np.ndarray, np.ndarray, bool]:
    live_i = np.fromiter(live.keys(), np.int64, len(live))
    live_w = np.fromiter(live.values(), np.float64, len(live))
    has_live = bool(len(live_i)) and bool(np.isin(live_i, own_i, invert=True).any())
    keep = own_w > 0
    all_i = np.concatenate([own_i[keep], live_i])
    all_w = np.concatenate([own_w[keep], live_w])
    if not len(all_i):
        return np.zeros(0, np.int64), np.zeros(0), False
    uniq, inv = np.unique(all_i, return_inverse=True)
    w = np.zeros(len(uniq))
    np.maximum.at(w, inv, all_w)
    return uniq, w, has_live
