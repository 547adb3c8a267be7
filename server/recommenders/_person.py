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
    w: dict[int, float] = {}
    if 0 <= ctx.person < ds.R.shape[0]:
        a, b = ds.R.indptr[ctx.person], ds.R.indptr[ctx.person + 1]
        for i, v in zip(ds.R.indices[a:b].tolist(), ds.R.data[a:b].tolist()):
            if v > 0:
                w[i] = float(v)
    known = set(w)
    has_live = False
    for i, v in ctx.session_items(max_live):
        if 0 <= i < ds.n_items and v > 0:
            if i not in known:
                has_live = True
            w[i] = max(w.get(i, 0.0), float(v))
    extra = [(int(ctx.item), 1.0)] if 0 <= ctx.item < ds.n_items else []
    extra += [(int(i), 3.0) for i in list(ctx.cart_items) + list(ctx.order_items) if 0 <= int(i) < ds.n_items]
    for i, v in extra:                      # the current product, the cart, the order
        if i not in known:
            has_live = True
        w[i] = max(w.get(i, 0.0), v)
    if not w:
        return np.zeros(0, np.int64), np.zeros(0), False
    items = np.fromiter(w.keys(), np.int64, len(w))
    return items, np.fromiter(w.values(), np.float64, len(w)), has_live
