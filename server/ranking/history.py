"""The tenant's data as it was at an earlier time: ``truncate(ds, cut_ms)``.

The ranker learns from what happened after ``cut_ms`` (the next product, the next order),
scored by recommenders fitted only on what happened before: otherwise the candidates' scores
would already contain the very co-occurrence the ranker is asked to predict (leakage), and the
guard would compare two leaked rankings. The truncated ``Dataset`` keeps every index of the
full one (products, persons, sessions), so features computed on it line up with the serving
model; only the feedback, the matrices, searches and reviews are cut.
"""
from __future__ import annotations

import copy
import threading

import numpy as np
import scipy.sparse as sp

from ..signals import weights as sig
from ..signals.weights import REVIEW, VIEW

_FB = ("fb_person", "fb_session", "fb_item", "fb_kind", "fb_ts", "fb_weight", "fb_qty", "fb_engaged_ms", "fb_hour",
       "fb_weekday")


def truncate(ds, cut_ms: int):
    past = copy.copy(ds)
    past._derived = {}
    past._lock = threading.RLock()  # derivations may nest (a text index inside text neighbours)
    m = ds.fb_ts < cut_ms
    for name in _FB:
        if hasattr(ds, name):
            setattr(past, name, getattr(ds, name)[m])
    past.clock_ms = int(past.fb_ts.max()) if len(past.fb_ts) else int(cut_ms)
    cfg = getattr(ds, "cfg", sig.DEFAULT)
    past.fb_decay = sig.decay(past.fb_ts, past.clock_ms, cfg)
    n_p, n_i, n_s = ds.n_persons, ds.n_items, ds.n_sessions
    pref = past.fb_kind <= REVIEW
    R = sp.csr_matrix(((past.fb_weight * past.fb_decay)[pref], (past.fb_person[pref], past.fb_item[pref])),
                      shape=(n_p, n_i), dtype=np.float32)
    R.data = np.maximum(R.data, 0)
    R.eliminate_zeros()
    past.R = R
    vm = past.fb_kind == VIEW
    past.V = sp.csr_matrix((past.fb_weight[vm], (past.fb_session[vm], past.fb_item[vm])), shape=(n_s, n_i), dtype=np.float32)
    keep = np.flatnonzero(ds.basket_ts < cut_ms)
    past.B = ds.B[keep]
    past.basket_ids = [ds.basket_ids[k] for k in keep.tolist()]
    past.basket_person = ds.basket_person[keep]
    past.basket_ts = ds.basket_ts[keep]
    coo = past.B.tocoo()
    past.P = sp.csr_matrix((np.ones(coo.nnz, np.float32), (past.basket_person[coo.row], coo.col)), shape=(n_p, n_i))
    if len(getattr(ds, "search_ts", ())):
        sm = ds.search_ts < cut_ms
        past.search_session, past.search_person = ds.search_session[sm], ds.search_person[sm]
        past.search_query = [q for q, k in zip(ds.search_query, sm.tolist()) if k]
        past.search_ts, past.search_results = ds.search_ts[sm], ds.search_results[sm]
    if len(getattr(ds, "review_ts", ())):
        rm = ds.review_ts < cut_ms
        past.review_item, past.review_person = ds.review_item[rm], ds.review_person[rm]
        past.review_rating, past.review_ts = ds.review_rating[rm], ds.review_ts[rm]
        past.review_text = [t for t, k in zip(ds.review_text, rm.tolist()) if k]
    return past
