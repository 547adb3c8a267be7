"""The live state's model binding (server/live.py): a visitor read (on a request or by the warm
start) is bound to the model of the last request for any session, and each request makes its
``Recent`` list of that (``_recent_list``) and copies the purchases held beside the state. The
answers must be bit for bit the SQL reference's (``live_context``), whatever the session asked
(the visitor's, another of its sessions, none), the model, and after evictions."""
from __future__ import annotations

import asyncio
import random

from server import live as L
from tests.engine.fixtures import T0, buy, engage, view
from tests.engine.test_live import _random_events, reader, shop  # noqa: F401 (fixtures)


def _exact(a, b):
    (ra, ba, na), (rb, bb, nb) = a, b
    assert [tuple(r) for r in ra] == [tuple(r) for r in rb] and [type(r) for r in ra] == [type(r) for r in rb]
    assert list(ba.items()) == list(bb.items()) and na == nb


def test_read_binding_answers_every_session_exactly(shop, reader):
    conn, ds = reader
    rng = random.Random(3)
    visitors = [f"v{i}" for i in range(12)]
    shop.events(_random_events(rng, visitors, 400, set()))
    w = L.LiveState()
    w.sync(conn)
    w.context(conn, ds, "nobody", "s")             # the model of the last request: reads bind to it
    for v in visitors:
        w.visit(conn, v)
        assert w.visitors[v][5] is not None and w.visitors[v][5][0] == w.ds_serial   # bound on the read
        for s in (v + "a", v + "b", None, "", "elsewhere", v + "a"):
            _exact(w.context(conn, ds, v, s), L.live_context(conn, ds, v, s))
    # events: the next request digests and binds again
    shop.events(_random_events(rng, visitors, 200, set()))
    w.sync(conn)
    for v in visitors:
        for s in (v + "b", None):
            _exact(w.context(conn, ds, v, s), L.live_context(conn, ds, v, s))
    assert set(w.bought) == set(w.visitors)


def test_preload_binds_to_the_last_model_and_a_new_model_binds_anew(shop, reader):
    conn, ds = reader
    shop.events([view(f"p{i % 12}", visitor=f"w{i}", session="s", ts=T0 + i) for i in range(10)]
                + [engage("p2", 9000, visitor="w2", session="s", ts=T0 + 50),
                   buy("o-w2", ["p1", "p3"], visitor="w2", session="t", ts=T0 + 60)])
    w = L.LiveState()
    w.sync(conn)
    w.context(conn, ds, "nobody", None)
    assert asyncio.run(w.preload(conn, events=20)) == 10
    for i in range(10):
        _exact(w.context(conn, ds, f"w{i}", "s"), L.live_context(conn, ds, f"w{i}", "s"))
    _exact(w.context(conn, None, "w2", "t"), L.live_context(conn, None, "w2", "t"))   # another model: none
    _exact(w.context(conn, ds, "w2", "t"), L.live_context(conn, ds, "w2", "t"))


def test_purchases_are_a_copy_and_leave_with_their_visitor(shop, reader):
    conn, ds = reader
    shop.events([buy(f"o{i}", ["p1", f"p{i}"], visitor=f"b{i}", session="s", ts=T0 + i) for i in range(6)])
    w = L.LiveState(max_visitors=4)
    w.sync(conn)
    got = w.context(conn, ds, "b5", "s")
    got[1]["p1"] = 0                                  # a caller changing its dict ...
    _exact(w.context(conn, ds, "b5", "s"), L.live_context(conn, ds, "b5", "s"))   # ... changes no other
    for i in range(6):
        w.visit(conn, f"b{i}")
    assert len(w.visitors) == 4 and set(w.bought) == set(w.visitors)   # evicted: both gone


def test_a_bulk_import_forgets_the_purchases_too(shop, reader, monkeypatch):
    conn, ds = reader
    shop.events([buy("o1", ["p1"], visitor="i1", session="s", ts=T0)])
    w = L.LiveState()
    w.sync(conn)
    w.context(conn, ds, "i1", "s")
    monkeypatch.setattr(L, "TAIL_MAX", 2)
    shop.events([view("p2", visitor=f"x{i}", session="s", ts=T0 + 10 + i) for i in range(5)])
    w.sync(conn)
    assert not w.visitors and not w.bought
    _exact(w.context(conn, ds, "i1", "s"), L.live_context(conn, ds, "i1", "s"))
