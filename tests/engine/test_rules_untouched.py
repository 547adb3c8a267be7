"""``run_slot`` never changes the rules it is given (nor anything in them): a request's slots
are run with their variant's own rules object, made once per config version
(``config.Pick.rules``), not a copy per slot, so a change would reach every later request."""
import copy

import numpy as np
import pytest

from server import rules as R
from server.placements import config as strategies
from server.placements.blend import run_slot
from server.placements.defaults import PLACEMENTS
from server.recommenders.base import Context
from tests.engine.fixtures import ShopData, rules_shop

RULES = [
    None,
    {"max_per_category": 1, "max_per_brand": 2},
    {"exclude": ["p0", "p3"], "categories": ["Home > Mugs", "Home > Lamps"], "price_min": 1, "price_max": 9},
    {"exclude_categories": ["Food"], "pin": [{"product": "p9", "position": 1}], "dedupe": False},
    {"boost": [{"category": "Home > Lamps", "factor": 2.0}], "exclude_seen": False, "exclude_bought_days": 0},
]


@pytest.fixture
def model(tmp_path):
    d = ShopData(tmp_path)
    yield rules_shop(d, sessions=12)
    d.close()


@pytest.mark.parametrize("extra", RULES)
def test_run_slot_leaves_its_rules_as_they_were(model, extra):
    ds = model.ds
    cfg = strategies.effective(None)
    pages = [dict(), dict(product="p2", item=ds.item("p2")), dict(cart=["p1", "p6"]),
             dict(category="Home > Lamps"), dict(query="p4")]
    for placement in PLACEMENTS:
        strat = cfg[placement][0]
        rules = R.merge(strat.get("rules"), extra)
        before = copy.deepcopy(rules)
        for page in pages:
            ctx = Context(clock_ms=ds.clock_ms, now_ms=ds.clock_ms, placement=placement, **page)
            if "cart" in page:
                ctx.cart_items = np.array([ds.item(p) for p in page["cart"]], np.int32)
            seen: set[int] = set()
            for _ in range(2):   # (the second call: whatever the first kept, planned or cached)
                run_slot(model, ctx, strat, 4, rules, seen)
                assert rules == before, (placement, page)
