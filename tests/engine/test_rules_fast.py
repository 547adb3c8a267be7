"""The slot pipeline's request-path shortcuts around the sources and the rules keep their
answers: a request's slots ask each source's key once (hashed once: ``SourceKey``), the
catalog net's order is built with the model."""
import numpy as np
import pytest

from server import rules as R
from server.placements import blend
from server.recommenders.base import Context
from tests.engine.fixtures import T0, ShopData, rules_shop


@pytest.fixture
def model(tmp_path):
    d = ShopData(tmp_path)
    yield rules_shop(d, sessions=6)
    d.close()


def test_catalog_order_is_built_with_the_model(model):
    ds = model.ds
    built = ds._derived["catalog_order"]            # there before any request
    ds._derived.pop("catalog_order")
    again = blend.catalog_order(ds)
    assert all(np.array_equal(a, b) for a, b in zip(built, again))


@pytest.mark.parametrize("fused", [False, True])
def test_source_keys_asked_once_per_request(model, monkeypatch, fused):
    """Each (source, params)'s ``applicable`` and ``cache_key`` asked once per request (a table
    source in a slot's one call, ``blend._fused``, is asked ``applicable`` per slot too)."""
    if not fused:
        monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)
    ds = model.ds
    calls = []
    for name in ("viewed_together", "best_sellers"):
        rec = model.recommenders[name]
        base = type(rec)

        def applicable(self, ctx, _base=base, _name=name):
            calls.append(("applicable", _name))
            return _base.applicable(self, ctx)

        def cache_key(self, ctx, _base=base, _name=name):
            calls.append(("cache_key", _name))
            return _base.cache_key(self, ctx)
        model.recommenders[name] = type("Counting", (base,), {"applicable": applicable, "cache_key": cache_key})()
    strat = {"sources": [{"recommender": "viewed_together"}, {"recommender": "best_sellers", "weight": 0.5}],
             "fallbacks": ["best_sellers"]}
    strat2 = {"sources": [{"recommender": "viewed_together", "params": {"x": 1}}], "fallbacks": ["best_sellers"]}

    def request(answers):
        ctx = Context(item=ds.item("p3"), clock_ms=T0, answers=answers)
        seen: set[int] = set()
        return [blend.run_slot(model, ctx, s, 4, R.merge(), seen) for s in (strat, strat, strat2)]

    model.clear_caches()
    alone = request(None)                 # a one-slot request has no memo: asked per slot
    asked_alone = len(calls)
    calls.clear()
    model.clear_caches()
    shared = request({})
    assert shared == alone
    # each (source, params) once: viewed_together, best_sellers, viewed_together with params (the
    # pool's key); a table source in the slot's one call is asked ``applicable`` per slot besides
    extra = [("applicable", "viewed_together")] * 3 if fused else []
    assert sorted(calls) == sorted([("applicable", "viewed_together"), ("cache_key", "viewed_together"),
                                    ("applicable", "best_sellers"), ("cache_key", "best_sellers"),
                                    ("applicable", "viewed_together"), ("cache_key", "viewed_together")] + extra)
    assert asked_alone > len(calls)


def test_source_key_equal_when_its_key_is_and_unhashable_keys_are_not_cached(model):
    a, b = blend.SourceKey(("x", None, ((1, 0.5), (2, 0.25)))), blend.SourceKey(("x", None, ((1, 0.5), (2, 0.25))))
    assert a == b and hash(a) == hash(b) and {(a, 3): 1}[(b, 3)] == 1
    assert a != blend.SourceKey(("x", None, ((1, 0.5),))) and a != a.key   # (never equal to a bare tuple)
    rec = model.recommenders["best_sellers"]
    model.recommenders["best_sellers"] = type("Unhashable", (type(rec),), {"cache_key": lambda self, ctx: [1]})()
    got, key = blend._source_key(model, "best_sellers", Context(clock_ms=T0))
    assert got is model.recommenders["best_sellers"] and key is None
