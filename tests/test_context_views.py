"""``Context``'s derived views (server/recommenders/base.py) against their plain definitions:
the walk's decay table beyond its 64 precomputed ranks, weights that are not positive numbers
(a NaN: dropped), seed weights capped at 2, the page's products before the session's."""
import math
import random

from server.recommenders.base import Context, Recent
from server.signals import CART, CLICK, IMPRESSION, PURCHASE, REMOVE, REVIEW, VIEW
from tests.recommenders.test_request_helpers import _session_items   # the definition

import numpy as np


def _seed_items(ctx, max_items):
    """The definition of ``Context.seed_items``."""
    seeds = {}
    if ctx.item >= 0:
        seeds[ctx.item] = 3.0
    for i in ctx.cart_items.tolist() + ctx.order_items.tolist():
        seeds[i] = max(seeds.get(i, 0.0), 2.0)
    scale = 0.2 if seeds else 1.0
    for i, w in _session_items(ctx.recent, max_items, False):
        if i not in seeds:
            seeds[i] = min(w, 2.0) * scale
    return list(seeds.items())[:max_items]


def _same(a, b):
    assert [i for i, _ in a] == [i for i, _ in b]
    for (_, x), (_, y) in zip(a, b):
        assert x == y or (math.isnan(x) and math.isnan(y))   # bit for bit


def test_views_equal_their_definitions_on_random_visits():
    rng = random.Random(11)
    kinds = (VIEW, VIEW, CART, PURCHASE, CLICK, REVIEW, REMOVE, IMPRESSION)
    weights = (0.1, 0.2, 0.5, 1.0, 2.0, 2.5, 5.0, float("nan"), 0.19999)
    for n in [0, 1, 2] + [rng.randrange(0, 160) for _ in range(200)]:
        spread = rng.choice((5, 30, 120))   # 120 distinct products: ranks beyond the decay table
        recent = [Recent("p", rng.randrange(-1, spread), rng.choice(kinds), 0, rng.choice(weights), rng.random() < 0.5)
                  for _ in range(n)]
        ctx = Context(item=rng.choice((-1, -1, 3, 50)), recent=recent,
                      cart_items=np.array(rng.sample(range(60), rng.choice((0, 0, 1, 3))), np.int32),
                      order_items=np.array(rng.sample(range(60), rng.choice((0, 0, 2))), np.int32))
        for m in (rng.randrange(0, 90), 8, 10, 20, 100):
            for only in (False, True):
                _same(ctx.session_items(m, only), _session_items(recent, m, only))
            _same(ctx.seed_items(m), _seed_items(ctx, m))
            _same(ctx.seed_items(m), _seed_items(ctx, m))    # from the memo


def test_seeds_follow_a_cart_changed_in_place_of_its_length():
    ctx = Context(item=1, cart_items=np.array([2], np.int32), recent=[Recent("a", 4, VIEW, 0, 3.0, True)])
    assert ctx.seed_items() == [(1, 3.0), (2, 2.0), (4, 0.4)]
    ctx.cart_items = np.array([2, 5], np.int32)   # a new array: another key
    assert ctx.seed_items() == [(1, 3.0), (2, 2.0), (5, 2.0), (4, 0.4)]


def test_equal_views_are_one_tuple():
    """A walk that a larger ``max_items`` does not extend (the visit has fewer products) gives
    the same tuple, and a page without products whose session weights are all <= 2 has the
    session's tuple as its seeds: what the request derives per tuple is then made once. A walk
    that goes on gives a new tuple, equal to the definition."""
    recent = [Recent("p", i % 5, VIEW, 0, 0.5, True) for i in range(9)]   # 5 products, weights <= 2
    ctx = Context(recent=recent)
    s8 = ctx._session(8, False)
    assert ctx._session(10, False) is s8 and ctx._seeds(10) is s8 and ctx._seeds(20) is ctx._session(20, False)
    _same(s8, _session_items(recent, 8, False))
    recent = [Recent("p", i, VIEW, 0, 1.5, True) for i in range(12)]   # 12 products: 10 goes on from 8
    ctx = Context(recent=recent)
    s8, s10 = ctx._session(8, False), ctx._session(10, False)
    assert s10 is not s8 and len(s8) == 8 and len(s10) == 10 and ctx._seeds(10) is s10
    _same(s10, _session_items(recent, 10, False))
    ctx = Context(recent=[Recent("p", 1, PURCHASE, 0, 8.0, False), Recent("p", 2, VIEW, 0, 1.0, True)])
    assert ctx._seeds(10) is not ctx._session(10, False) and ctx.seed_items() == [(1, 2.0), (2, 0.8)]
    ctx = Context(item=7, recent=[Recent("p", 2, VIEW, 0, 1.0, True)])
    assert ctx.seed_items() == [(7, 3.0), (2, 0.2)]


def test_a_shorter_view_after_a_whole_walk_is_its_tuple():
    """A cart page asks its seeds for 10, then the session for 8: a walk that read the whole
    list and found at most 8 products is the walk for 8 too (the same tuple, no second walk);
    one that found more is not (a walk of its own, equal to the definition)."""
    for n in (1, 5, 8):   # products; weights <= 2 and no product on the page: seeds are the session
        recent = [Recent("p", i % n, VIEW, 0, 0.5, True) for i in range(n + 3)]
        ctx = Context(recent=recent)
        s10 = ctx._seeds(10)
        assert ctx._session(8, False) is s10 and ctx._session(n, False) is s10
        _same(s10, _session_items(recent, 8, False))
    for n in (9, 10, 14):   # more products: the walk for 10 kept its view where the one for 8 stops
        recent = [Recent("p", i % n, VIEW, 0, 0.5, True) for i in range(n + 3)]
        ctx = Context(recent=recent)
        s10 = ctx._seeds(10)
        walk = ctx.memo()[("walk", False, id(recent), len(recent))]
        s8 = ctx._session(8, False)
        assert s8 is not s10 and len(s8) == 8 and walk.cut is not None
        assert ctx.memo()[("walk", False, id(recent), len(recent))] is walk   # not walked again
        _same(s8, _session_items(recent, 8, False))
        _same(ctx._session(10, False), _session_items(recent, 10, False))
        _same(ctx._session(7, False), _session_items(recent, 7, False))     # another bound: its own walk
    rng = random.Random(3)   # bounds around the cut in every order, repeated interactions, NaN-free
    for _ in range(400):
        recent = [Recent("p", rng.randrange(-1, 16), rng.choice((VIEW, CART, PURCHASE, CLICK, IMPRESSION)), 0,
                         rng.choice((0.1, 0.5, 1.0, 3.0, 0.0)), rng.random() < 0.6) for _ in range(rng.randrange(0, 40))]
        ctx = Context(recent=recent, cart_items=np.array(rng.sample(range(20), rng.choice((0, 1))), np.int32))
        for m in rng.sample((5, 8, 8, 9, 10, 20), rng.randrange(1, 6)):
            _same(ctx._session(m, False), _session_items(recent, m, False))
            _same(ctx._seeds(m), _seed_items(ctx, m))


def test_a_recent_list_reads_as_its_recent_interactions():
    """A ``RecentList`` (the live state's plain tuples) reads as the list of ``Recent`` it stands
    for: iteration, indexing, slices, reversed, copy, repr, equality; ``rows()`` the tuples;
    ``has`` and the session walk read it by index to the same answers."""
    from server.recommenders.base import RecentList, recent_rows
    rows = [("p1", -1, VIEW, 9, 1.0, True), ("p2", 4, VIEW, 8, 0.5, True), ("p3", 2, CART, 7, 3.0, False)]
    recent = [Recent(*r) for r in rows]
    got = RecentList.of(tuple(rows))
    assert all(type(r) is Recent for r in got) and list(got) == recent and got == recent
    assert type(got[1]) is Recent and got[1] == recent[1] and got[-1].kind == CART and got[1].item == 4
    assert got[1:] == recent[1:] and all(type(r) is Recent for r in got[:2])
    assert list(reversed(got)) == recent[::-1] and type(next(reversed(got))) is Recent
    assert got.copy() == recent and all(type(r) is Recent for r in got.copy())
    assert repr(got) == repr(recent) and len(got) == 3 and got
    assert all(type(r) is tuple for r in got.rows()) and list(got.rows()) == rows
    assert list(recent_rows(got)) == rows and recent_rows(recent) is recent
    for page in ({}, {"item": 2}, {"cart_items": np.array([4], np.int32)}):
        a, b = Context(recent=got, **page), Context(recent=recent, **page)
        assert a.has("session") and a.has("person") and a.session_items(10) == b.session_items(10)
        assert a.seed_items(10) == b.seed_items(10)
    unknown = RecentList.of((("p1", -1, VIEW, 9, 1.0, True),))
    assert not Context(recent=unknown).has("session") and Context(recent=unknown).has("person")
