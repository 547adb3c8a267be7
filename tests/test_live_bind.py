"""The live state's model binding (server/live.py): a visitor read (on a request or by the warm
start) is bound to the model of the last request for any session, and each request makes its
``Recent`` list of that (``_recent_list``) and a read-only view of the purchases held beside
the state (``Bought``). The answers must be bit for bit the SQL reference's (``live_context``),
whatever the session asked (the visitor's, another of its sessions, none), the model, and
after evictions."""
from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping

import numpy as np
import pytest

from server import live as L
from server.recommenders.base import Bought, Context, RecentList, newest_purchase, walk_columns
from tests.engine.fixtures import T0, buy, engage, view
from tests.engine import test_live

_random_events = test_live._random_events
shop, reader = test_live.shop, test_live.reader   # its fixtures


def _exact(a, b):
    (ra, ba, na), (rb, bb, nb) = a, b
    assert [tuple(r) for r in ra] == [tuple(r) for r in rb] and [type(r) for r in ra] == [type(r) for r in rb]
    assert list(ba.items()) == list(bb.items()) and na == nb
    if type(ba) is Bought and ba:   # the live state's purchases carry their newest ts
        assert ba.size == len(ba) and newest_purchase(ba) == ba.newest == max(bb.values())


def _random_visitors(shop, conn, ds, rng, events: int) -> tuple[L.LiveState, list[str]]:
    """12 visitors with ``events`` random events, and a live state whose reads bind to ``ds``."""
    visitors = [f"v{i}" for i in range(12)]
    shop.events(_random_events(rng, visitors, events, set()))
    w = L.LiveState()
    w.sync(conn)
    w.context(conn, ds, "nobody", "s")             # the model of the last request: reads bind to it
    return w, visitors


def test_read_binding_answers_every_session_exactly(shop, reader):
    conn, ds = reader
    rng = random.Random(3)
    w, visitors = _random_visitors(shop, conn, ds, rng, 400)
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


def test_purchases_are_read_only_and_leave_with_their_visitor(shop, reader):
    conn, ds = reader
    shop.events([buy(f"o{i}", ["p1", f"p{i}"], visitor=f"b{i}", session="s", ts=T0 + i) for i in range(6)])
    w = L.LiveState(max_visitors=4)
    w.sync(conn)
    got = w.context(conn, ds, "b5", "s")
    assert type(got[1]) is Bought and got[1].newest == T0 + 5
    assert got[1]._d is w.bought["b5"]                # a view of the held purchases, not a copy ...
    with pytest.raises((TypeError, AttributeError)):
        got[1]["p1"] = 0                              # ... that no caller can change
    with pytest.raises(AttributeError):
        got[1].pop("p1")
    assert got[1] == L.live_context(conn, ds, "b5", "s")[1] and dict(got[1]) == got[1].copy() and "p1" in got[1]
    assert isinstance(got[1], Mapping) and list(got[1]) == list(got[1].keys()) and got[1].get("nope", 7) == 7
    _exact(w.context(conn, ds, "b5", "s"), L.live_context(conn, ds, "b5", "s"))
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


def _digest_reference(rows, lines):
    """``live._digest`` as first written (one sort by -ts over the events' entries then the
    purchases'; the type weight asked per entry), its events' aggregation aside."""
    from server.signals import PURCHASE
    entries = [(*e[:3], L.SIGNALS.type_weight(e[1]), *e[4:]) for e in L._digest_rows(rows)[0]]
    newest = max([0] + [r[2] for r in rows if r[0] in L._KIND])
    bought = {}
    for p, ts, _ in lines:
        bought.setdefault(p, ts)
    newest = max((newest, *bought.values()))
    entries += [(p, PURCHASE, ts, L.SIGNALS.purchase, (), None) for p, ts in list(bought.items())[:20]]
    entries.sort(key=lambda e: -e[2])
    return tuple(entries), bought, newest


def test_digest_orders_equal_times_as_the_reference():
    """Many interactions at the same time (an import, a purchase with its views): the digest's
    order among them is the reference's (a stable sort newest first)."""
    rng = random.Random(8)
    types = ("page_view", "engagement", "add_to_cart", "remove_from_cart", "review", "rec_impression")
    for _ in range(300):
        rows = [(rng.choice(types), f"p{rng.randrange(8)}", rng.choice((5, 6, 7)), rng.choice(("s", "t", None)),
                 rng.choice((None, 2000, 9000)), rng.choice((None, 40.0)), rng.choice((None, 300)), k)
                for k in range(rng.randrange(0, 30))]
        lines = [(f"p{rng.randrange(30)}", rng.choice((5, 6, 7)), f"o{k}") for k in range(rng.randrange(0, 40))]
        got, want = L._digest(rows, lines), _digest_reference(rows, lines)
        assert got[0] == want[0] and list(got[1].items()) == list(want[1].items()) and got[2] == want[2]


def test_events_digest_anew_keeping_the_purchases_while_the_lines_are_the_same(shop, reader):
    conn, ds = reader
    shop.events([buy("oa", ["p1", "p2"], visitor="c", session="s1", ts=T0), view("p3", visitor="c", session="s1", ts=T0 + 1)])
    w = L.LiveState()
    w.sync(conn)
    _exact(w.context(conn, ds, "c", "s2"), L.live_context(conn, ds, "c", "s2"))
    kept = w.bought["c"]
    shop.events([view("p4", visitor="c", session="s2", ts=T0 + 2), engage("p4", 9000, visitor="c", session="s2", ts=T0 + 3)])
    w.sync(conn)
    _exact(w.context(conn, ds, "c", "s2"), L.live_context(conn, ds, "c", "s2"))
    assert w.bought["c"] is kept                      # a view changes no purchase line
    shop.events([buy("ob", ["p5"], visitor="c", session="s2", ts=T0 + 4), view("p6", visitor="c", session="s2", ts=T0 + 5)])
    w.sync(conn)
    got = w.context(conn, ds, "c", "s2")
    _exact(got, L.live_context(conn, ds, "c", "s2"))
    assert "p5" in got[1] and w.bought["c"] is not kept


def test_bound_for_the_newest_events_session(shop, reader):
    """A state is bound ready for the session of its newest event (its list made without
    replacing an entry); any other session's list replaces those whose ``in_session`` differs."""
    conn, ds = reader
    shop.events([view("p1", visitor="n", session="s1", ts=T0), view("p2", visitor="n", session="s2", ts=T0 + 1),
                 view("p1", visitor="n", session="s2", ts=T0 + 2)])
    w = L.LiveState()
    w.sync(conn)
    w.context(conn, ds, "nobody", None)
    w.visit(conn, "n")
    _, bound_session, fields, flips, columns = w.visitors["n"][5]
    assert bound_session == "s2" and [f[5] for f in fields] == [True, True] and len(flips) == 2
    assert columns.tolist() == walk_columns(fields).tolist()
    for s in ("s2", "s1", None, "", "s3"):
        got = w.context(conn, ds, "n", s)
        _exact(got, L.live_context(conn, ds, "n", s))
        # the bound session's list carries the columns (its seed views in compiled calls), another's not
        assert (type(got[0]) is RecentList) is (s == "s2") and (s != "s2" or got[0].columns is columns)


def test_seed_views_of_a_bound_list_are_the_reference(shop, reader):
    """A request in the bound session gets a ``RecentList``, whose seed views the kernels walk
    (``Context.session_vectors``, ``seed_vectors``): they equal the Python walk's over the same
    interactions as a plain list, bit for bit, for random visits, pages and bounds; a new list
    (the next request) walks anew."""
    conn, ds = reader
    rng = random.Random(5)
    w, visitors = _random_visitors(shop, conn, ds, rng, 500)
    walked = 0
    for v in visitors:
        w.visit(conn, v)
        session = w.visitors[v][5][1]
        for _ in range(4):
            recent, bought, newest = w.context(conn, ds, v, session)
            walked += type(recent) is RecentList and len(recent.columns) > 0
            page = dict(item=rng.choice((-1, 0, 3)), cart_items=np.array(rng.sample(range(8), rng.choice((0, 2))), np.int32))
            fast, plain = Context(recent=recent, **page), Context(recent=list(recent), **page)
            for m in rng.sample((0, 1, 3, 8, 10, 20, 64, 65), 5):
                for only in (False, True):
                    assert fast.session_items(m, only) == plain.session_items(m, only)
                    assert fast.session_vectors(m, only).items.tolist() == plain.session_vectors(m, only).items.tolist()
                    assert fast.session_vectors(m, only).weights.tobytes() == plain.session_vectors(m, only).weights.tobytes()
                assert fast.seed_items(m) == plain.seed_items(m)
                fv, pv = fast.seed_vectors(m), plain.seed_vectors(m)
                assert fv.items.tolist() == pv.items.tolist() and fv.weights.tobytes() == pv.weights.tobytes()
                assert (fv.low, fv.end, fv.positive) == (pv.low, pv.end, pv.positive)
                assert fast.seed_vectors(m) is fv   # (once per request)
    assert walked >= 30


def test_newest_purchase_reads_a_changed_dict_in_full():
    b = Bought({"p1": 5, "p2": 9}, 9)
    assert newest_purchase(b) == 9 and b.size == 2 and len(b) == 2 and b["p2"] == 9
    assert newest_purchase(Bought({"p1": 5, "p2": 9})) == 9           # newest not given: the max
    assert not Bought({}) and Bought({}).newest == 0
    assert newest_purchase({"p1": 5, "p2": 3}) == 5   # a plain dict


def test_a_model_that_binds_alike_keeps_the_bindings_and_another_binds_anew(shop, reader):
    """A new model object that binds every product alike (the same products in the same order,
    the same usual engaged times: a rebuild on unchanged data) keeps each visitor's bound state
    (no ~40 µs binding again per visitor); a model whose usual time of one product differs, or
    whose products differ, binds anew. Both give the reference's answers."""
    import pickle

    conn, ds = reader
    rng = random.Random(5)
    w, visitors = _random_visitors(shop, conn, ds, rng, 300)
    for v in visitors:
        w.context(conn, ds, v, v + "a")
    held = {v: w.visitors[v][5] for v in visitors}
    serial = w.ds_serial

    same = pickle.loads(pickle.dumps(ds))   # another object, equal (as a worker loads a published build)
    assert same is not ds and L.binds_alike(ds, same)
    for v in visitors:
        _exact(w.context(conn, same, v, v + "a"), L.live_context(conn, same, v, v + "a"))
        assert w.visitors[v][5] is held[v]          # not bound again
    assert w.ds_serial == serial and w.ds is same

    slower = pickle.loads(pickle.dumps(ds))
    slower.usual_engaged_ms = slower.usual_engaged_ms.copy()
    slower.usual_engaged_ms[:] *= 2                  # every product's usual time doubled: weights change
    assert not L.binds_alike(same, slower)
    for v in visitors:
        _exact(w.context(conn, slower, v, v + "a"), L.live_context(conn, slower, v, v + "a"))
        assert w.visitors[v][5] is not held[v]      # bound again
    assert w.ds_serial != serial

    fewer = pickle.loads(pickle.dumps(ds))
    fewer.item_ids = fewer.item_ids[:-1]
    assert not L.binds_alike(ds, fewer) and not L.binds_alike(None, ds) and not L.binds_alike(ds, None)
