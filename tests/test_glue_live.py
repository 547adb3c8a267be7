"""The live state's bound interactions hold the model's own objects of their products (server/live.py
``_model_objects``): equal to the visitor's, shared by every visitor, the answers unchanged."""
from __future__ import annotations

import random

from server import live as L
from tests.engine import test_live
from tests.engine.fixtures import T0, view

shop, reader = test_live.shop, test_live.reader   # its fixtures


def test_bound_interactions_hold_the_models_product_objects(shop, reader):
    conn, ds = reader
    rng = random.Random(8)
    visitors = [f"m{i}" for i in range(8)]
    shop.events(test_live._random_events(rng, visitors, 300, set())
                + [view("not-in-the-model", visitor="m0", session="m0a", ts=T0 + 10**7)])
    w = L.LiveState()
    w.sync(conn)
    ids, indices = L._model_objects(ds)
    known = unknown = 0
    for v in visitors:
        for s in (v + "a", None):
            recent, bought, newest = w.context(conn, ds, v, s)
            ref = L.live_context(conn, ds, v, s)
            assert [tuple(r) for r in recent] == [tuple(r) for r in ref[0]] and (bought, newest) == ref[1:]
            for r in recent:
                if r.item >= 0:
                    assert r.product is ids[r.item] and r.item is indices[r.item]
                    known += 1
                else:
                    unknown += 1
    assert known and unknown   # both kinds met
    assert L._model_objects(ds)[1] is indices and indices == tuple(range(ds.n_items))
