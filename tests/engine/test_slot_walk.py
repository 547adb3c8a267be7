"""A table source's seeds walked in the slot's one call (``_tables.QuerySpec``,
``kernels/seeds.walk_view`` in ``kernels.slot_select``) against its ``query`` asked in Python:
the kernel's views equal ``Context``'s walked views and refuse exactly the views the queries
do not hand to ``neighbour_top``; and whole slots (products, reasons, sources) equal those of
the queries asked, on requests with the live state's interactions (``RecentList``): sessions,
carts (int64 or read-only ones: the queries then), an order's product the tables do not hold (a
refused view: the queries then), a person whose top items the query merges, two slots asking one query."""
import random

import numpy as np
import pytest

from server import rules as R
from server.placements import blend
from server.recommenders.base import SEEDS, Context, RecentList
from server.recommenders.kernels import seeds as S
from tests.engine.fixtures import ShopData, rules_shop
from tests.engine.test_slot_plan import RULES, _requests, _serve
from tests.recommenders.test_seed_kernels import _visit

MAIN = {"sources": [{"recommender": "realtime_personal"}, {"recommender": "item_cf", "weight": 0.6},
                    {"recommender": "best_sellers", "weight": 0.2}], "fallbacks": ["best_sellers"]}
DETAIL = {"sources": [{"recommender": "viewed_together"}, {"recommender": "content_based", "weight": 0.7},
                      {"recommender": "item_cf", "weight": 0.4}], "fallbacks": ["best_sellers"]}
CART = {"sources": [{"recommender": "bought_together"}, {"recommender": "realtime_personal", "weight": 0.2}],
        "fallbacks": ["item_cf", "best_sellers"]}


def test_walk_view_is_the_walked_views_and_refuses_what_the_queries_refuse():
    rng = random.Random(5)
    for n in [0, 1, 2] + [rng.randrange(0, 120) for _ in range(300)]:
        recent = _visit(rng, n)
        page = dict(item=rng.choice((-1, -1, 0, 3, 50)),
                    cart_items=np.array([rng.randrange(0, 60) for _ in range(rng.choice((0, 0, 1, 3, 12)))], np.int32),
                    order_items=np.array(rng.sample(range(60), rng.choice((0, 0, 2))), np.int32))
        ctx = Context(recent=RecentList.of(recent), **page)
        cols = ctx.recent.columns
        cart = page["cart_items"] if len(page["cart_items"]) else blend._NO_PAGE
        order = page["order_items"] if len(page["order_items"]) else blend._NO_PAGE
        for m in (0, 1, 8, SEEDS, 20, 64):
            for walk_page in (False, True):
                for only in ((False, True) if not walk_page else (False,)):
                    v = ctx.seed_vectors(m) if walk_page else ctx.session_vectors(m, only)
                    for rows in (0, 3, 40, 200):
                        for positive in (False, True):
                            items, w32 = np.zeros(m, np.int64), np.zeros(m, np.float32)
                            got = S.walk_view(cols, S.walk_code(m, walk_page, only, rng.random() < 0.5, positive),
                                              page["item"], cart, order, items, w32, rows)
                            fits = v.low >= 0 and v.end <= rows and (v.positive or not positive)
                            assert got == (len(v.items) if fits else -1)
                            if fits:
                                assert items[:got].tolist() == v.items.tolist()
                                assert w32[:got].tobytes() == v.weights.tobytes()


@pytest.fixture
def model(tmp_path):
    d = ShopData(tmp_path)
    yield rules_shop(d, sessions=6)
    d.close()


def _live(requests, rng):
    """``_requests``' requests with their interactions as the live state gives them, some
    with an order of a product the tables do not hold, a person, the slots of ``MAIN``,
    ``DETAIL``, ``CART`` or ``_requests``' strategies."""
    out = []
    for i, (fields, slots) in enumerate(requests):
        fields = dict(fields, recent=RecentList.of(fields["recent"]))
        if rng.random() < 0.15:   # (an order's product no table holds: a refused page view)
            fields["order_items"] = np.array([40 + i % 3], np.int32)
        fields["person"] = int(rng.integers(-1, 8))
        if i % 2:
            rules = R.merge(RULES[i % len(RULES)])
            slots = [(s, rules, int(rng.integers(1, 9))) for s in (MAIN, DETAIL, CART)[:1 + i % 3]]
        out.append((fields, slots))
    return out


def test_slots_with_walked_queries_equal_the_queries_asked(model, monkeypatch):
    requests = _live(_requests(model, 200, 7), np.random.default_rng(7)) * 2
    walks, refused = [], []
    real = blend._fused

    def counted(*a, **kw):
        walks.append(a[-1] if len(a) > 10 else kw.get("walk", True))
        if len(a) > 10 and a[-1] is False:
            refused.append(1)
        return real(*a, **kw)
    monkeypatch.setattr(blend, "_fused", counted)
    got = _serve(model, requests)
    assert len(walks) > 200 and refused   # (a product the tables do not hold, or an int64 or read-only cart)
    monkeypatch.undo()
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    asked = []
    monkeypatch.setattr(blend, "_fused", lambda *a, **kw: asked.append(1) or real(*a[:10], False))
    assert _serve(model, requests) == got and asked
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)   # (each source asked on its own)
    assert _serve(model, requests) == got


def test_a_person_whose_top_items_the_query_merges_takes_the_query(model, monkeypatch):
    """item_cf's person whose top items do not all weigh > 0: ``QuerySpec.more`` gives None and
    the source's query answers (it merges them in Python); the others still walk."""
    from server.recommenders.item_cf import ItemCF

    fitted = model.fitted["item_cf"]
    top_ok = fitted[2].copy()
    top_ok[:] = False
    model.fitted["item_cf"] = (fitted[0], fitted[1], top_ok)
    requests = [(dict(f, person=p), [(MAIN, R.merge(), 6)]) for p, (f, _) in
                enumerate(_live(_requests(model, 60, 3), np.random.default_rng(3)))]
    queries = []
    real = ItemCF.query
    monkeypatch.setattr(ItemCF, "query", lambda self, *a: queries.append(1) or real(self, *a))
    got = _serve(model, requests)
    assert queries
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)
    assert _serve(model, requests) == got
