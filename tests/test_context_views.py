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
