"""Business rules and placement blending on a small shop."""
import pytest

from server import rules as R
from server.placements import config as strategies
from server.placements.blend import run_slot
from server.recommenders.base import Context, Recent
from server.signals import VIEW
from tests.engine.fixtures import T0, ShopData, rules_shop

DAY = 86_400_000


@pytest.fixture
def model(tmp_path):
    d = ShopData(tmp_path)
    yield rules_shop(d, sessions=12)  # popularity: p0 > p1 > ... (p0 viewed by everyone)
    d.close()


def slot(model, placement="main", count=5, rules=None, page_seen=None, **ctx_kw):
    ds = model.ds
    ctx_kw.setdefault("clock_ms", ds.clock_ms)
    ctx = Context(**ctx_kw)
    if ctx.product:
        ctx.item = ds.item(ctx.product)
    if ctx.cart:
        import numpy as np
        ctx.cart_items = np.array([ds.item(p) for p in ctx.cart], np.int32)
    strat = strategies.effective(None)[placement][0]
    chosen = run_slot(model, ctx, strat, count, R.merge(strat.get("rules"), rules), page_seen if page_seen is not None else set())
    return [ds.item_ids[i] for i, _, _ in chosen], chosen


def test_cold_visitor_gets_popular_never_out_of_stock(model):
    got, chosen = slot(model, count=8)
    assert len(got) == 8 and "p5" not in got
    assert got[:3] == ["p0", "p1", "p2"]


def test_exclusions(model):
    got, _ = slot(model, count=6, product="p0", cart=["p1"], rules={"exclude": ["p2"]},
                  bought={"p3": T0 + 1000})
    assert not {"p0", "p1", "p2", "p3", "p5"} & set(got)
    # bought long ago: allowed again
    got, _ = slot(model, count=6, bought={"p3": T0 - 60 * DAY}, rules={"max_per_category": 10})
    assert "p3" in got


def test_category_include_exclude_and_price_band(model):
    got, _ = slot(model, count=10, rules={"categories": ["Home > Lamps"]})
    assert set(got) == {"p4", "p6", "p7"}
    got, _ = slot(model, count=10, rules={"exclude_categories": ["Home"]})
    assert set(got) == {"p8", "p9", "p10"}  # main caps a category at 3
    got, _ = slot(model, count=10, rules={"price_min": 2, "price_max": 4})
    assert set(got) == {"p2", "p3", "p4"}


def test_pin_boost_diversity(model):
    got, chosen = slot(model, count=4, rules={"pin": [{"product": "p11", "position": 1}]})
    assert got[1] == "p11" and chosen[1][1] == "featured" and len(got) == 4
    got, _ = slot(model, count=3, rules={"boost": [{"product": "p6", "factor": 10}]})
    assert got[0] == "p6"
    got, _ = slot(model, count=6, rules={"max_per_category": 1})
    assert len(got) == 3  # three categories, one each
    got, _ = slot(model, count=6, rules={"max_per_brand": 2})
    assert len(got) == 4
    got, _ = slot(model, count=3, rules={"pin": [{"product": "p5", "position": 0}]})
    assert "p5" not in got  # out of stock wins over a pin


def test_no_duplicates_across_slots(model):
    seen: set = set()
    a, _ = slot(model, count=4, page_seen=seen)
    b, _ = slot(model, "detail_similar", count=4, page_seen=seen, product="p9")
    assert len(set(a) | set(b)) == 8
    c, _ = slot(model, count=4, rules={"dedupe": False}, page_seen=seen)
    assert c == a


def test_category_placement_scoped_then_completed(model):
    got, _ = slot(model, "category", count=6, category="Home > Mugs")
    assert got[:4] == ["p0", "p1", "p2", "p3"] and len(got) == 6  # its 4, then the shop's best


def test_session_shapes_main(model):
    ds = model.ds
    recent = [Recent("p9", ds.item("p9"), VIEW, T0 + 5000, 2.0, True)]
    got, chosen = slot(model, count=3, recent=recent, visitor="v0", session="s0")
    assert chosen[0][2] in ("realtime_personal", "item_cf")


def test_validate_rules():
    assert R.validate_rules({"exclude": ["a"], "max_per_brand": 2, "pin": [{"product": "a", "position": 0}]}) == []
    errs = R.validate_rules({"price_min": 5, "price_max": 1, "boost": [{"brand": "x", "factor": 99}], "zz": 1})
    assert any("zz" in e for e in errs) and any("boost" in e for e in errs)
    assert R.validate_rules({"price_min": 5, "price_max": 1}) == ["rules: price_min is above price_max"]


def test_validate_strategy_document():
    assert strategies.validate({"placements": {"cart": {"sources": [{"recommender": "bought_together", "weight": 2}]}}}) == []
    errs = strategies.validate({"placements": {"cart": {"sources": [{"recommender": "x"}], "fallbacks": ["y"],
                                                        "rules": {"max_per_brand": 0}}}})
    assert len(errs) == 3
    assert strategies.validate({"placements": {"main": {"variants": [{"name": "A", "share": 0}]}}}) \
        == ["placements.main.variants: the shares add up to 0"]
    eff = strategies.effective({"placements": {"cart": {"rules": {"max_per_brand": 1}}}})
    assert eff["cart"][0]["sources"][0]["recommender"] == "bought_together"  # the default, kept
    assert eff["cart"][0]["rules"] == {"max_per_brand": 1}


def test_variant_split_is_deterministic_and_balanced():
    vs = [{"name": "A", "share": 50}, {"name": "B", "share": 50}]
    picks = [strategies.choose_variant(vs, f"visitor{i}", "main")["name"] for i in range(2000)]
    assert 850 < picks.count("A") < 1150
    assert strategies.choose_variant(vs, "visitor7", "main") is strategies.choose_variant(vs, "visitor7", "main")


def test_unregistered_sources_are_skipped(model):
    strat = {"sources": [{"recommender": "not_written_yet", "weight": 1}], "fallbacks": ["also_missing"]}
    ctx = Context(clock_ms=model.ds.clock_ms)
    chosen = run_slot(model, ctx, strat, 3, R.merge(), set())
    assert [model.ds.item_ids[i] for i, _, _ in chosen] == ["p0", "p1", "p2"]
    assert chosen[0][1] == "popular in the shop"
