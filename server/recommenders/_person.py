"""The requesting visitor as weighted items (private: not a recommender).

``visitor_items(ds, ctx)``: the person's row of the model's feedback matrix ``ds.R`` (what they
did up to the last build) merged with the live session items read at request time
(``ctx.session_items``), the current product (weight 1) and the cart / order items (weight 3, a
cart add), so an event posted a moment ago counts on the very next request. In two steps for a
caller that may not need the merge: ``live_items`` (the request's part), then ``merge_row``
(``kernels/factors.row_lacks`` tells whether the live items add anything to the row without
merging: matrix_factorization's known person).
"""
from __future__ import annotations

import numpy as np

from .kernels.factors import merged_row
from .kernels.sums import merge_visitor_items


def visitor_items(ds, ctx, max_live: int = 20) -> tuple[np.ndarray, np.ndarray, bool]:
    """(item indices int64, weights float64, has_live) — items unique, weights > 0.

    ``has_live``: whether live items add anything the model row lacks (then a trained
    person vector is stale and should be recomputed)."""
    return merge_row(ds, ctx.person, *live_items(ds, ctx, max_live))


def live_items(ds, ctx, max_live: int = 20) -> tuple[np.ndarray, np.ndarray]:
    """The request's items (int64, unique, in the catalog) and their weights (float64): the
    session's latest ``max_live``, the current product (weight at least 1), the cart and order
    items (at least 3, a cart add). Not to be changed in place (a session's may be the
    request's ``session_vectors``)."""
    n = ds.n_items
    item, cart, order = ctx.item, ctx.cart_items, ctx.order_items
    if not (0 <= item < n or len(cart) or len(order)):
        # the session alone (a main or category page): its items are distinct and > 0; a
        # walked view's arrays as they are (the request's, read only: no tuples and back),
        # its float64 weights (``weights64``: none for a view made of tuples)
        v = ctx.session_vectors(max_live)
        w = v.weights64
        if w is not None and v.low >= 0 and v.end <= n:
            return v.items, w
        pairs = v.pairs()
        li = [i for i, _ in pairs if 0 <= i < n]
        if len(li) == len(pairs):
            return np.array(li, np.int64), np.array([v for _, v in pairs], np.float64)
    else:
        pairs = ctx.session_items(max_live)
    # item -> largest live weight (few items: plain Python); session items are distinct, > 0
    live = {i: v for i, v in pairs if 0 <= i < n}
    if 0 <= item < n:
        live[int(item)] = max(live.get(int(item), 0.0), 1.0)   # the current product
    for i in cart.tolist() + order.tolist():
        if 0 <= i < n:
            live[i] = max(live.get(i, 0.0), 3.0)               # cart / order: a cart add
    return np.fromiter(live, np.int64, len(live)), np.fromiter(live.values(), np.float64, len(live))


def merge_row(ds, person: int, live_i: np.ndarray, live_w: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
    """``visitor_items``' answer from ``live_items``' (see there)."""
    rows = positive_rows(ds)
    if rows is not None:    # (one kernel call: the row read and merged)
        return merged_row(*rows, person, live_i, live_w)
    R = ds.R
    if 0 <= person < R.shape[0]:
        a, b = R.indptr[person], R.indptr[person + 1]
        own_i = R.indices[a:b].astype(np.int64)
        own_w = R.data[a:b].astype(np.float64)
    else:
        own_i, own_w = np.zeros(0, np.int64), np.zeros(0)
    if not R.has_canonical_format:  # unsorted or repeated indices: the general merge
        return _merge(own_i, own_w, live_i, live_w)
    # own_i is sorted and unique: live items already in the row raise its weight, the others
    # are inserted (one kernel call)
    return merge_visitor_items(own_i, own_w, live_i, live_w, _positive(ds))


def positive_rows(ds) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``ds.R``'s ``indptr``, ``indices`` and ``data`` when it is canonical with int32 indices
    (``_canonical_rows``), float32 weights and every weight > 0 (then a person's row lists
    exactly the model items ``merge_row`` keeps of it), else None (checked once per dataset)."""
    return ds.derived("R_positive_rows", _check_positive_rows)


def _check_positive_rows(ds):
    rows = _canonical_rows(ds)
    return (*rows, ds.R.data) if rows is not None and ds.R.data.dtype == np.float32 and _positive(ds) else None


def _canonical_rows(ds) -> tuple[np.ndarray, np.ndarray] | None:
    """``ds.R``'s ``indptr`` and ``indices`` when it is in canonical format (each row sorted,
    no repeats) with int32 indices, else None (checked once per dataset)."""
    return ds.derived("R_canonical_rows", _check_rows)


def _check_rows(ds) -> tuple[np.ndarray, np.ndarray] | None:
    R = ds.R
    ok = R.has_canonical_format and R.indptr.dtype == np.int32 and R.indices.dtype == np.int32
    return (R.indptr, R.indices) if ok else None


def _positive(ds) -> bool:
    """Whether every stored weight of ``ds.R`` is > 0 (checked once per dataset)."""
    return ds.derived("R_positive", lambda ds: bool((ds.R.data > 0).all()))


def _merge(own_i: np.ndarray, own_w: np.ndarray, live_i: np.ndarray, live_w: np.ndarray) -> tuple[np.ndarray, np.ndarray, bool]:
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
