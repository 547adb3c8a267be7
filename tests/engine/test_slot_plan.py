"""One slot's machinery after the sources answered: the per-(model, strategy, rules) plan and
the one compiled call (``kernels.blend_select``) give exactly what the separate steps give."""
import pickle

import numpy as np
import pytest

from server import rules as R
from server.placements import blend
from server.placements import kernels as K
from server.recommenders.base import Context, Recent
from server.signals import CART, VIEW
from tests.engine.fixtures import T0, ShopData, rules_shop
from tests.engine.test_blend_kernels import random_answers

NONE = np.zeros(0, np.int64)
NO_CODES = np.zeros(0, np.int32)


def _select_inputs(rng, n_items, n_src):
    mask = rng.random(n_items) < rng.choice([0.3, 0.8, 1.0])
    current = int(rng.integers(-1, n_items))
    cart = rng.choice(np.arange(-n_items, n_items), int(rng.integers(0, 4))).astype(np.int32)   # (negative: from the end)
    h = int(rng.integers(0, min(6, n_items + 1)))
    held = np.array([rng.choice(n_items, h, replace=False), rng.integers(0, 4, h)], np.int64).reshape(2, h)
    codes = rng.integers(0, 4, n_src).astype(np.int64)
    seen = rng.choice(n_items, int(rng.integers(0, 5))).astype(np.int64)
    capped = rng.random() < 0.4
    cat = rng.integers(-1, 4, n_items).astype(np.int32) if capped else NO_CODES
    brand = rng.integers(-1, 3, n_items).astype(np.int32) if capped else NO_CODES
    max_cat, max_brand = (int(rng.integers(0, 3)), int(rng.integers(0, 3))) if capped else (0, 0)
    return mask, current, cart, held, codes, seen, cat, brand, max_cat, max_brand


@pytest.mark.parametrize("levels", [None, 2, 3])
@pytest.mark.parametrize("seed", range(4))
def test_blend_select_is_blend_sources_then_select_pool(seed, levels):
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n_src = int(rng.integers(1, 6))
        n_items = int(rng.integers(1, 200))
        items, scores, lens = random_answers(rng, n_src, n_items, 40, levels)
        if rng.random() < 0.1:   # a silent source
            scores[: lens[0]] = 0
        weights = rng.choice([1.0, 0.6, 0.3, 0.2], n_src).astype(np.float64)
        mask, current, cart, held, codes, seen, cat, brand, max_cat, max_brand = _select_inputs(rng, n_items, n_src)
        count = int(rng.integers(0, 12))
        packed, score = K.blend_select(items, scores, lens, weights, mask, current, cart, held, codes, seen, cat, brand,
                                       max_cat, max_brand, count)
        silent, rows, want_score = K.blend_sources(items, scores, lens, weights, True)
        assert packed[0] == silent
        if silent:
            assert len(packed) == 3
            continue
        want = K.select_pool(rows[3], rows, mask, current, cart, held, codes, seen, cat, brand, max_cat, max_brand, count)
        m, c = int(packed[1]), int(packed[2])
        assert (m, c) == (rows.shape[1], want.shape[1]) and len(packed) == 3 + 3 * c + 5 * m
        assert packed[3:3 + 3 * c].reshape(c, 3).T.tolist() == want.tolist()
        assert np.array_equal(packed[3 + 3 * c:].reshape(5, m), rows)
        assert np.array_equal(score, want_score)


def test_blend_select_single_candidate_and_nothing_allowed():
    one, sc, w = np.array([4], np.int32), np.array([2.0], np.float32), np.ones(1)
    lens = np.ones(1, np.int64)
    held = np.zeros((2, 0), np.int64)
    packed, score = K.blend_select(one, sc, lens, w, np.ones(5, bool), -1, NO_CODES, held, NONE, NONE,
                                   NO_CODES, NO_CODES, 0, 0, 3)
    assert packed.tolist() == [0, 1, 1, 4, 0, 0, 4, 0, 0, 0, 0] and score.tolist() == [1.0]
    for current, cart in ((4, NO_CODES), (-1, np.array([4], np.int32)), (-1, np.array([-1], np.int32))):
        packed, _ = K.blend_select(one, sc, lens, w, np.ones(5, bool), current, cart, held, NONE, NONE,
                                   NO_CODES, NO_CODES, 0, 0, 3)
        assert packed[:3].tolist() == [0, 1, 0]


@pytest.mark.parametrize("seed", range(6))
def test_select_pool_current_and_cart_equal_a_mask_without_them(seed):
    rng = np.random.default_rng(50 + seed)
    for _ in range(60):
        n_src, n_items = int(rng.integers(1, 5)), int(rng.integers(1, 120))
        items, scores, lens = random_answers(rng, n_src, n_items, 30, 3)
        _, rows, _ = K.blend_sources(items, scores, lens, np.ones(n_src), True)
        mask, current, cart, held, codes, seen, cat, brand, max_cat, max_brand = _select_inputs(rng, n_items, n_src)
        full = mask.copy()   # as rules.allowed_mask makes it
        if current >= 0:
            full[current] = False
        full[cart] = False
        count = int(rng.integers(1, 12))
        got = K.select_pool(rows[3], rows, mask, current, cart, held, codes, seen, cat, brand, max_cat, max_brand, count)
        want = K.select_pool(rows[3], rows, full, -1, NO_CODES, held, codes, seen, cat, brand, max_cat, max_brand, count)
        assert np.array_equal(got, want)


@pytest.fixture
def model(tmp_path):
    d = ShopData(tmp_path)
    yield rules_shop(d, sessions=6)
    d.close()


STRATEGIES = [
    {"sources": [{"recommender": "item_cf"}, {"recommender": "realtime_personal", "weight": 0.6},
                 {"recommender": "best_sellers", "weight": 0.2}], "fallbacks": ["popular_now", "new_arrivals"]},
    {"sources": [{"recommender": "viewed_together"}, {"recommender": "content_based", "weight": 0.7},
                 {"recommender": "item_cf", "weight": 0.4, "params": {"x": 1}}], "fallbacks": ["best_sellers"]},
    {"sources": [{"recommender": "category_top"}, {"recommender": "realtime_personal", "weight": 0.3}],
     "fallbacks": ["category_top", "buy_again", "best_sellers"], "scope_to_category": True},
    {"sources": [{"recommender": "bought_together"}, {"recommender": "no_such_source"}, {"recommender": "buy_again", "weight": 0.5}],
     "fallbacks": ["buy_again", "best_sellers"]},
]
RULES = [{}, {"max_per_brand": 1}, {"max_per_category": 2}, {"dedupe": False}, {"exclude": ["p1", "p2"]},
         {"exclude_current": False, "exclude_cart": False}, {"exclude_seen": False, "exclude_bought_days": 0},
         {"pin": [{"product": "p9", "position": 1}]}, {"boost": [{"brand": "acme", "factor": 2.0}]}, {"price_max": 7}]


def _requests(model, n, seed):
    ds = model.ds
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        recent = [Recent(f"p{i}", ds.item(f"p{i}"), int(rng.choice([VIEW, CART])), T0 - 1000 * j, 1.0, bool(rng.random() < 0.7))
                  for j, i in enumerate(rng.choice(12, int(rng.integers(0, 5)), replace=False))]
        cart = [f"p{i}" for i in rng.choice(12, int(rng.integers(0, 3)), replace=False)]
        cart_items = np.array([ds.item(p) for p in cart], np.int32)
        if rng.random() < 0.3:
            cart_items = cart_items.astype(np.int64) if rng.random() < 0.5 else cart_items.copy()
            cart_items.flags.writeable = False   # (as serving's shared empty array)
        bought = {f"p{i}": T0 - int(rng.integers(0, 40)) * 86_400_000 for i in rng.choice(12, int(rng.integers(0, 3)))}
        product = f"p{int(rng.integers(0, 12))}" if rng.random() < 0.6 else None
        slots = [(STRATEGIES[int(rng.integers(0, len(STRATEGIES)))], R.merge(RULES[int(rng.integers(0, len(RULES)))]),
                  int(rng.integers(1, 9))) for _ in range(int(rng.integers(1, 3)))]
        out.append((dict(recent=recent, cart=cart, cart_items=cart_items, bought=bought, product=product,
                         item=ds.item(product) if product else -1, clock_ms=T0, now_ms=T0,
                         category=str(rng.choice(["Home > Mugs", "Home > Lamps", "Food", "Home", "Nope"]))), slots))
    return out


def _serve(model, requests):
    out = []
    for fields, slots in requests:
        ctx = Context(**fields, answers={} if len(slots) > 1 else None)
        seen: set[int] = set()
        out.append([blend.run_slot(model, ctx, strat, count, dict(rules), seen) for strat, rules, count in slots])
    return out


def test_run_slot_in_one_call_equals_the_separate_steps(model, monkeypatch):
    """The compiled call (blend, the request's mask, the pick) against ``_blend`` then
    ``_select_pool`` with the whole mask, on varied requests, rules and strategies: the same
    slots (products, reasons, sources), and the same pools kept (the table sources' call,
    ``_fused``, left out: tested below)."""
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)
    requests = _requests(model, 120, 0) * 3   # (a key kept on its second request, then served)
    fused = _serve(model, requests)
    fused_pools = dict(model.pools._d)
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    calls = []

    def separate(*a):
        calls.append(1)
        return None   # (as if a source were silent: the separate steps)
    monkeypatch.setattr(blend, "_blend_select", separate)
    assert _serve(model, requests) == fused and calls
    assert fused_pools.keys() == model.pools._d.keys()
    for key, pool in fused_pools.items():
        other = model.pools._d[key]
        assert (pool is None) == (other is None)
        if pool is not None:
            # (row 3, the ranking, is set only without boosts: the blend order compared instead)
            assert np.array_equal(pool.rows[[0, 1, 2, 4]], other.rows[[0, 1, 2, 4]]) and np.array_equal(pool.score, other.score)
            assert np.array_equal(pool.ranking(model, Context()), other.ranking(model, Context()))
            assert pool.names == other.names and len(pool.cands) == len(other.cands)
            for c, o in zip(pool.cands, other.cands):
                assert np.array_equal(c.items, o.items) and np.array_equal(c.scores, o.scores)
            assert np.array_equal(pool.src_codes, other.src_codes)


def test_run_slot_with_table_queries_equals_each_source_asked(model, monkeypatch):
    """The table sources' queries computed in the slot's one call (``_fused``,
    ``kernels.slot_select``) against each source's own answer then the blend and selection:
    the same slots (products, reasons, sources) on varied requests, rules and strategies."""
    requests = _requests(model, 150, 1) * 2
    calls = []
    real = blend._fused

    def counted(*a):
        got = real(*a)
        calls.append(got is not None)
        return got
    monkeypatch.setattr(blend, "_fused", counted)
    arity = {}   # (both calls: slot_select_2 for at most two tables and queries, slot_select_4 above)
    for name in ("slot_select_4", "slot_select_2"):   # (compiled before the stand-ins replace the helper they call)
        getattr(blend.K, name).compile()
    for name in ("slot_select_4", "slot_select_2"):
        monkeypatch.setattr(blend.K, name, lambda *a, _f=getattr(blend.K, name), _n=name:
                            arity.__setitem__(_n, arity.get(_n, 0) + 1) or _f(*a))
    got = _serve(model, requests)
    assert sum(calls) > 150 and not all(calls)   # (None: a pool kept, or to be kept, for the sources' keys)
    assert arity.get("slot_select_4", 0) > 20 and arity.get("slot_select_2", 0) > 20
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)
    assert _serve(model, requests) == got


def test_a_query_asked_by_two_slots_of_a_request_is_copied_from_the_first_call(model, monkeypatch):
    """Two slots of one request asking the same table source (name, params, ``k``): the later
    call copies the earlier one's answer (``slot_select``'s ``prior``) instead of computing it,
    and the slots equal those of each source asked; with other params or another ``k`` it is
    computed again."""
    other = {"sources": [{"recommender": "viewed_together"}, {"recommender": "item_cf", "weight": 0.5},
                         {"recommender": "realtime_personal", "weight": 0.2}], "fallbacks": ["best_sellers"]}
    requests = []
    for i, (fields, _) in enumerate(_requests(model, 120, 4)):
        rules = R.merge(RULES[i % len(RULES)])
        count = 4 if i % 3 else 6   # (every third: another k in the second slot, nothing copied)
        requests.append((fields, [(STRATEGIES[0], rules, 4), (other, rules, count), (STRATEGIES[1], rules, 4)]))
    priors = []
    for name in ("slot_select_4", "slot_select_2"):   # (compiled before the stand-ins replace the helper they call)
        getattr(blend.K, name).compile()
    for name in ("slot_select_4", "slot_select_2"):
        at = 13 * (2 if name.endswith("2") else 4) + 1   # (``prior``: after the tables, the queries and k)
        monkeypatch.setattr(blend.K, name, lambda *a, _f=getattr(blend.K, name), _at=at:
                            priors.append(len(a[_at]) > 0) or _f(*a))
    got = _serve(model, requests)
    assert sum(priors) > 40 and not all(priors)
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)
    assert _serve(model, requests) == got


def test_more_table_sources_than_the_call_takes_are_asked_as_any_source(model, monkeypatch):
    """Five table sources (four tables): the fifth query is answered on its own and passed
    ready; the slots equal those of each source asked."""
    many = {"sources": [{"recommender": n, "weight": w} for n, w in
                        (("realtime_personal", 1.0), ("item_cf", 0.6), ("viewed_together", 0.5),
                         ("bought_together", 0.4), ("content_based", 0.3), ("best_sellers", 0.1))],
            "fallbacks": ["best_sellers"]}
    requests = [(fields, [(many, R.merge(), 8)]) for fields, _ in _requests(model, 80, 3) if fields["recent"]]
    asked = []
    real = blend._call
    monkeypatch.setattr(blend, "_call", lambda model, name, *a: asked.append(name) or real(model, name, *a))
    got = _serve(model, requests)
    assert "content_based" in asked and "viewed_together" not in asked
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)
    assert _serve(model, requests) == got


def test_a_failing_table_source_or_call_leaves_the_others(model, monkeypatch, caplog):
    """Error isolation: a table source whose query raises is left out of the slot (logged, as
    ``_call`` does), and a failing ``slot_select`` call falls back to asking each source."""
    from server.recommenders.item_cf import ItemCF

    requests = [r for r in _requests(model, 80, 2) if r[0]["recent"]]
    for fields, slots in requests:
        slots[:] = [(STRATEGIES[0], R.merge(), 6)]
    fused = _serve(model, requests)

    def broken(*a):
        raise RuntimeError("broken table")
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    monkeypatch.setattr(ItemCF, "query", broken)
    monkeypatch.setattr(ItemCF, "recommend", broken)
    without = _serve(model, requests)
    assert "recommender failed at request time" in caplog.text
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)
    assert _serve(model, requests) == without != fused    # (item_cf left out as when asked on its own)
    monkeypatch.undo()
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    monkeypatch.setattr(blend.K, "slot_select_4", broken)
    monkeypatch.setattr(blend.K, "slot_select_2", broken)
    blend._MAPS.slot = np.ones(model.ds.n_items + 1, np.int32)   # (as a call that raised midway may leave it)
    assert _serve(model, requests) == fused and "slot_select failed" in caplog.text
    assert blend._MAPS.slot is blend._NO_MAP   # the product map dropped: the next call makes a new one
    monkeypatch.undo()
    assert _serve(model, requests) == fused and not blend._MAPS.slot.any()


def test_a_strategys_last_rules_give_its_plan_and_other_rules_theirs(model):
    """``slot_plan``'s shortcut (the strategy's last rules, compared as dicts) gives the plan the
    memo gives: the same for equal rules (another dict, another order), the rules' own for
    others, alternating or changed in place after the call."""
    strat = STRATEGIES[0]
    a_rules, b_rules = R.merge(), R.merge({"exclude": ["p1"], "max_per_brand": 2})
    a = blend.slot_plan(model, strat, a_rules)
    assert blend.slot_plan(model, strat, dict(reversed(list(a_rules.items())))) is a
    b = blend.slot_plan(model, strat, b_rules)
    assert b is not a and b.max_brand == 2
    for _ in range(3):
        assert blend.slot_plan(model, strat, R.merge()) is a
        assert blend.slot_plan(model, strat, R.merge({"exclude": ["p1"], "max_per_brand": 2})) is b
    b_rules["max_per_brand"] = 3   # (the caller's dict changed after the call: not the plan's rules)
    c = blend.slot_plan(model, strat, b_rules)
    assert c is not b and c.max_brand == 3
    other = dict(strat)   # (another strategy with equal rules: its own plan)
    assert blend.slot_plan(model, other, R.merge()) is not a


def test_slot_plans_are_kept_per_strategy_and_rules_bounded_and_not_pickled(model, monkeypatch):
    strat = STRATEGIES[0]
    a = blend.slot_plan(model, strat, R.merge())
    assert blend.slot_plan(model, strat, R.merge()) is a                       # equal rules: the same plan
    assert blend.slot_plan(model, dict(strat), R.merge()) is not a             # another strategy object
    b = blend.slot_plan(model, strat, R.merge({"exclude": ["p1"]}))            # (a list among the rules)
    assert b is not a and blend.slot_plan(model, strat, R.merge({"exclude": ["p1"]})) is b
    assert blend.slot_plan(model, strat, R.merge({"exclude": ["p2"]})) is not b
    assert [s.name for s in a.sources] == ["item_cf", "realtime_personal", "best_sellers"]
    assert a.subset(0b101)[0] == ["item_cf", "best_sellers"] and a.subset(0b101)[1].tolist() == [1.0, 0.2]
    assert not a.mask.flags.writeable is False and np.array_equal(a.mask, R._rules_mask(model.ds, R.merge()))
    monkeypatch.setattr(blend, "_PLANS", 4)
    for n in range(10):
        blend.slot_plan(model, strat, R.merge({"max_per_brand": n + 1}))
        assert len(model.__dict__["_slot_plans"]) <= 4
    copy = pickle.loads(pickle.dumps(model))
    assert len(copy.__dict__["_slot_plans"]) == 0


def test_a_scoped_plan_keeps_each_categorys_mask_and_none_for_an_empty_one(model):
    ds = model.ds
    plan = blend.slot_plan(model, STRATEGIES[2], R.merge())
    rules, mask, first = plan.scoped(ds, R.merge(), "Home > Mugs")
    assert rules["categories"] == ["Home > Mugs"]
    assert np.array_equal(mask, R.allowed_mask(ds, Context(), rules))
    assert first.dtype == np.int64 and np.array_equal(first, np.flatnonzero(mask))   # (few: kept)
    assert blend._few(np.ones(blend._FEW + 1, bool)) is None and len(blend._few(np.ones(blend._FEW, bool))) == blend._FEW
    assert plan.scoped(ds, R.merge(), "Nope") is None and plan.scoped(ds, R.merge(), "Home > Mugs")[1] is mask
    assert not blend.slot_plan(model, STRATEGIES[2], R.merge({"categories": ["Food"]})).scope   # (scoped by the rules)


def test_a_source_without_a_key_of_its_own_is_not_keyed(model, monkeypatch):
    """``_fused``'s sources whose recommender has no ``cache_key`` of its own (buy_again: the
    person's) are asked ``applicable`` directly, not ``_source_key`` (their key is None): the
    slots equal those of each source asked, where it applies (a person) and where not."""
    strat = {"sources": [{"recommender": "bought_together"}, {"recommender": "buy_again", "weight": 0.5},
                         {"recommender": "best_sellers", "weight": 0.2}], "fallbacks": ["best_sellers"]}
    requests = [(dict(fields, person=p % 3 - 1), [(strat, R.merge(RULES[p % len(RULES)]), 6)])
                for p, (fields, _) in enumerate(_requests(model, 120, 9))]
    keyed, inside = [], []   # (the names ``_fused`` asks ``_source_key``)
    real = blend._source_key
    monkeypatch.setattr(blend, "_source_key", lambda model, name, *a: (inside and keyed.append(name)) or real(model, name, *a))
    real_fused = blend._fused

    def fused(*a, **kw):
        inside.append(1)
        try:
            return real_fused(*a, **kw)
        finally:
            inside.pop()
    monkeypatch.setattr(blend, "_fused", fused)
    got = _serve(model, requests)
    assert "best_sellers" in keyed and "buy_again" not in keyed
    assert any(src == "buy_again" for slots in got for slot in slots for _, _, src in slot)
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)
    assert _serve(model, requests) == got


def test_three_and_four_ready_answers_equal_each_source_asked(model, monkeypatch):
    """Slots whose call takes three ready answers (the third as it is, its length ``_one_len``'s)
    or four (the last two concatenated): the slots equal those of each source asked."""
    ready = [{"recommender": n, "weight": w} for n, w in
             (("best_sellers", 0.5), ("popular_now", 0.4), ("new_arrivals", 0.3), ("buy_again", 0.2))]
    strats = [{"sources": [{"recommender": "item_cf"}, *ready[:n]], "fallbacks": ["best_sellers"]} for n in (3, 4)]
    requests = [(dict(fields, person=p % 3 - 1), [(strats[p % 2], R.merge(RULES[p % len(RULES)]), 6)])
                for p, (fields, _) in enumerate(_requests(model, 120, 10))]
    lens = []
    real = blend._one_len
    monkeypatch.setattr(blend, "_one_len", lambda n: lens.append(n) or real(n))
    got = _serve(model, requests)
    assert len(lens) > 30
    assert blend._one_len(3) is blend._one_len(3) and blend._one_len(3).tolist() == [3]
    assert blend._one_len(3).dtype == np.int64
    model.clear_caches()
    model.__dict__.pop("_slot_plans")
    monkeypatch.setattr(blend.SlotPlan, "fusion", lambda self, model: None)
    assert _serve(model, requests) == got
