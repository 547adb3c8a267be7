"""The slot pipeline's shortcuts keep its answers: the rules' mask kept per dataset and rule
values, select's caps and page dedupe, the blend's unique items and sums, the catalog net,
reasons computed only for the products shown."""
import numpy as np
import pytest

from server import rules as R
from server.placements import blend
from server.recommenders.base import Candidates, Context
from tests.engine.fixtures import T0, ShopData, rules_shop

DAY = 86_400_000


@pytest.fixture
def model(tmp_path):
    d = ShopData(tmp_path)
    yield rules_shop(d, sessions=6)
    d.close()


def _mask_by_hand(ds, ctx, rules):
    m = ds.in_catalog & (ds.in_stock if rules.get("exclude_out_of_stock", True) else True)
    if rules.get("exclude_current", True) and ctx.item >= 0:
        m[ctx.item] = False
    m[ctx.cart_items] = False
    for pid in rules.get("exclude") or ():
        if ds.item(pid) >= 0:
            m[ds.item(pid)] = False
    if rules.get("categories"):
        m &= np.isin(np.arange(ds.n_items), np.concatenate([ds.category_items(c) for c in rules["categories"]]))
    for c in rules.get("exclude_categories") or ():
        m[ds.category_items(c)] = False
    p = ds.price
    if rules.get("price_min") is not None:
        m &= np.isnan(p) | (p >= rules["price_min"])
    if rules.get("price_max") is not None:
        m &= np.isnan(p) | (p <= rules["price_max"])
    return m


@pytest.mark.parametrize("extra", [{}, {"exclude": ["p1", "nope"]}, {"categories": ["Home"], "exclude_categories": ["Home > Lamps"]},
                                   {"price_min": 2, "price_max": 6}, {"exclude_out_of_stock": False, "exclude_current": False}])
def test_allowed_mask_kept_per_rules_is_a_fresh_copy(model, extra):
    ds = model.ds
    rules = R.merge(extra)
    ctx = Context(item=ds.item("p3"), cart_items=np.array([ds.item("p4")], np.int32))
    for _ in range(2):  # the second time from the dataset's memo of the rules' part
        m = R.allowed_mask(ds, ctx, rules)
        assert m.flags.writeable and (m == _mask_by_hand(ds, ctx, rules)).all()
        m[:] = False   # the caller's copy: the memo is untouched
    other = Context(item=ds.item("p0"))
    assert (R.allowed_mask(ds, other, rules) == _mask_by_hand(ds, other, rules)).all()


def test_rules_masks_memo_is_bounded(model, monkeypatch):
    ds = model.ds
    monkeypatch.setattr(R, "_RULES_MASKS_BYTES", 4 * ds.n_items)   # room for 4 rule sets
    for i in range(12):
        R.allowed_mask(ds, Context(), R.merge({"exclude": [f"p{i}"]}))
        assert len(ds.__dict__["_rules_masks"]) <= 4


@pytest.mark.parametrize("rules", [{}, {"max_per_category": 1}, {"max_per_brand": 1}, {"dedupe": False}])
def test_select_counts_caps_page_and_already(model, rules):
    ds = model.ds
    rules = R.merge(rules)
    mask = np.ones(ds.n_items, bool)
    mask[ds.item("p2")] = False
    ranked = [(ds.item(f"p{i}"), f"r{i}", "s") for i in (0, 1, 2, 3, 4, 6, 8, 0, 9)]   # p0 twice
    already = [(ds.item("p1"), "a", "s")]
    got = [ds.item_ids[e[0]] for e in R.select(ds, iter(ranked), 4, rules, mask, {ds.item("p3")}, already)]
    if rules.get("max_per_category"):    # p1 (Mugs) already chosen: one per category
        assert got == ["p4", "p8"]
    elif rules.get("max_per_brand"):     # p1 is acme: then one zeta
        assert got == ["p0"]
    elif rules["dedupe"]:
        assert got == ["p0", "p4", "p6", "p8"]
    else:                                # p3 was shown elsewhere on the page: allowed again
        assert got == ["p0", "p3", "p4", "p6"]


def test_blend_unique_items_sums_and_best_source(model):
    ds = model.ds
    a = Candidates(np.array([3, 1, 2], np.int32), np.array([4.0, 2.0, 1.0], np.float32), ["a3", "a1", "a2"])
    b = Candidates(np.array([2, 3, 7], np.int32), np.array([1.0, 0.5, 0.5], np.float32), ["b2", "b3", "b7"])
    pool = blend._blend(ds, ["a", "b"], [a, b], [1.0, 2.0], {})
    assert pool.uniq.tolist() == [1, 2, 3, 7] and pool.uniq.dtype == np.int32 and pool.index.tolist() == [1, 2, 3, 7]
    # a / 4 + 2 x b / 1: 1 -> .5; 2 -> .25 + 2; 3 -> 1 + 1; 7 -> 1
    assert pool.score.tolist() == [0.5, 2.25, 2.0, 1.0]
    assert [pool.names[s] for s in pool.best_src] == ["a", "b", "a", "b"]   # 3: a tie, the first answer
    assert [pool.cands[s].reason(int(at) - pool.starts[s]) for s, at in zip(pool.best_src, pool.best_at)] == ["a1", "b2", "a3", "b7"]
    assert pool.ranking(model, Context()).tolist() == [1, 2, 3, 0]
    assert blend._blend(ds, ["a"], [Candidates(np.array([1], np.int32), np.array([0.0], np.float32))], [1.0], {}) is None


def test_catalog_net_skips_held_and_counts_the_slot_in_its_caps(model):
    ds = model.ds
    mask = np.ones(ds.n_items, bool)
    mask[ds.item("p5")] = False
    held = {ds.item("p0"): "buy_again"}
    got = blend._catalog_net(ds, [(ds.item("p1"), "x", "s")], 5, R.merge({"max_per_category": 1}), mask, set(), held)
    # p1 (Mugs) is in the slot: one Lamp (p4..p6 as popular: the newest), one Food; no more under the cap
    assert [ds.item_ids[e[0]] for e in got] == ["p6", "p8"]
    assert {e[1] for e in got} == {"popular in the shop"} and {e[2] for e in got} == {"catalog"}


def test_reasons_only_for_the_products_shown(model):
    asked = []
    strat = {"sources": [{"recommender": "best_sellers"}], "fallbacks": []}

    class Counting(Candidates):
        __slots__ = ()

        def reason(self, pos):
            asked.append(pos)
            return super().reason(pos)

    def fake(self, fitted, ds, ctx, k):
        return Counting(np.arange(12, dtype=np.int32), np.linspace(1, 0.1, 12).astype(np.float32), [f"r{i}" for i in range(12)])
    rec = model.recommenders["best_sellers"]
    model.recommenders["best_sellers"] = type("Fake", (type(rec),), {"recommend": fake, "cache_key": lambda self, ctx: None})()
    chosen = blend.run_slot(model, Context(clock_ms=T0), strat, 3, R.merge(), set())
    assert [r for _, r, _ in chosen] == ["r0", "r1", "r2"] and sorted(asked) == [0, 1, 2]
