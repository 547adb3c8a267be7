"""The requesting visitor as weighted items (private: not a recommender).

``visitor_items(ds, ctx)``: the person's row of the model's feedback matrix ``ds.R`` (what they
did up to the last build) merged with the live session items read at request time
(``ctx.session_items``), the current product (weight 1) and the cart / order items (weight 3, a
cart add), so an event posted a moment ago counts on the very next request.
"""
from __future__ import annotations

import numpy as np


def visitor_items(ds, ctx, max_live: int = 20) -> tuple[np.ndarray, np.ndarray, bool]:
    """(item indices int64, weights float64, has_live) — items unique, weights > 0.

    ``has_live``: whether live items add anything the model row lacks (then a trained
    person vector is stale and should be recomputed)."""
    if 0 <= ctx.person < ds.R.shape[0]:
        a, b = ds.R.indptr[ctx.person], ds.R.indptr[ctx.person + 1]
        own_i = ds.R.indices[a:b].astype(np.int64)
        own_w = ds.R.data[a:b].astype(np.float64)
    else:
        own_i, own_w = np.zeros(0, np.int64), np.zeros(0)
    live = [(i, float(v)) for i, v in ctx.session_items(max_live) if 0 <= i < ds.n_items and v > 0]
    if 0 <= ctx.item < ds.n_items:
        live.append((int(ctx.item), 1.0))          # the current product
    live += [(int(i), 3.0) for i in list(ctx.cart_items) + list(ctx.order_items) if 0 <= int(i) < ds.n_items]
    live_i = np.fromiter((i for i, _ in live), np.int64, len(live))
    live_w = np.fromiter((v for _, v in live), np.float64, len(live))
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
