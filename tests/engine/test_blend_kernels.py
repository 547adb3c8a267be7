"""The slot pipeline's compiled kernels (server/placements/kernels.py) against the numpy code
they replace, on random data with ties, single elements, empty and silent answers."""
import numpy as np
import pytest

from server.placements import kernels as K

NO_CART = np.zeros(0, np.int32)


def blend_numpy(items, scores, lens, weights, rank=True):
    """``blend.py``'s numpy blend before the kernel: (silent, rows, score) as the kernel's."""
    starts = np.concatenate(([0], np.cumsum(lens)[:-1])).astype(np.intp)
    tops = np.maximum.reduceat(scores, starts) if len(scores) else np.zeros(0, np.float32)
    silent = int(sum(1 for t in tops.tolist() if not t > 0))
    if silent:
        return silent, None, None
    if not len(items):
        return 0, np.zeros((5, 0), np.int64), np.zeros(0, np.float32)
    items = items.astype(np.intp)
    srci = np.arange(len(lens)).repeat(lens)
    with np.errstate(invalid="ignore"):   # (inf / inf: a NaN, as the kernel's)
        norm = scores / tops[srci]
    part = norm * np.asarray(weights, np.float32)[srci]
    order = np.lexsort((-part, items))
    items_o = items[order]
    first = np.empty(len(order), bool)
    first[0] = True
    np.not_equal(items_o[1:], items_o[:-1], out=first[1:])
    best = order[first]
    index = items_o[first]
    score = np.bincount(items, weights=part)[index].astype(np.float32)
    ranking = (-score).argsort(kind="stable") if rank else np.zeros(len(index), np.intp)
    return 0, np.stack([index, srci[best], best, ranking, best - starts[srci[best]]]).astype(np.int64), score


def random_answers(rng, n_src, n_items, max_len, levels=None):
    """``n_src`` answers of 1..max_len distinct items each; scores on ``levels`` values (ties)."""
    items, scores, lens = [], [], []
    for _ in range(n_src):
        m = int(rng.integers(1, max_len + 1))
        its = rng.choice(n_items, size=min(m, n_items), replace=False).astype(np.int32)
        sc = (rng.integers(1, levels + 1, len(its)) / levels if levels else rng.random(len(its)) + 1e-3).astype(np.float32)
        items.append(its)
        scores.append(np.sort(sc)[::-1].copy())
        lens.append(len(its))
    return np.concatenate(items), np.concatenate(scores), np.array(lens, np.int64)


def check(items, scores, lens, weights, rank=True):
    w = np.array(weights, np.float64)
    got = K.blend_sources(items, scores, lens, w, rank)
    want = blend_numpy(items, scores, lens, w, rank)
    assert got[0] == want[0]
    if want[0]:
        return got
    keep = [0, 1, 2, 3, 4] if rank else [0, 1, 2, 4]   # (ranking: only when asked)
    assert np.array_equal(got[1][keep], want[1][keep])
    assert got[2].dtype == np.float32 and np.array_equal(got[2], want[2], equal_nan=True)
    assert np.array_equal(np.signbit(got[2]), np.signbit(want[2]))
    return got


@pytest.mark.parametrize("levels", [None, 2, 3, 7])
@pytest.mark.parametrize("seed", range(6))
def test_blend_equals_numpy_on_random_answers_with_ties(seed, levels):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n_src = int(rng.integers(1, 7))
        n_items = int(rng.integers(1, 300))
        items, scores, lens = random_answers(rng, n_src, n_items, 60, levels)
        weights = rng.choice([1.0, 0.6, 0.3, 0.2, 0.1, 0.7, 1 / 3], n_src).tolist()
        check(items, scores, lens, weights, rank=bool(rng.integers(0, 2)))


@pytest.mark.parametrize("seed", range(6))
def test_blend_equals_numpy_with_negative_zero_and_infinite_scores(seed):
    # an answer's best is positive (else it is silent) but the others may be anything: negative
    # and signed-zero sums, inf (whose answer's other parts are 0 or NaN) rank as numpy's
    rng = np.random.default_rng(100 + seed)
    pool = np.array([1.0, 0.5, 0.0, -0.0, -0.5, -1.0, 2.0, np.inf, -np.inf], np.float32)
    for _ in range(60):
        items, scores, lens = random_answers(rng, int(rng.integers(1, 6)), int(rng.integers(1, 80)), 30, 3)
        scores = rng.choice(pool[:8] if rng.random() < 0.2 else pool[:7], len(scores)).astype(np.float32)
        p = 0
        for n in lens:
            scores[p] = abs(scores[p]) + np.float32(0.25)
            p += n
        check(items, scores, lens, rng.choice([1.0, 0.6, 0.3], len(lens)).tolist())


def test_blend_ties_go_to_the_earliest_contribution_and_the_lower_item():
    # items 5 and 2 get the same total; 5's two contributions are equal (the first source's wins)
    items = np.array([5, 2, 9, 5, 2], np.int32)
    scores = np.array([1.0, 0.5, 0.25, 1.0, 0.5], np.float32)
    silent, rows, score = check(items, scores, np.array([3, 2]), [1.0, 1.0])
    assert rows[0].tolist() == [2, 5, 9] and rows[2].tolist() == [1, 0, 2]
    assert rows[3].tolist() == [1, 0, 2]   # 5 (2.0) then 2 (1.0), then 9


def test_blend_single_and_empty():
    check(np.array([3], np.int32), np.array([2.0], np.float32), np.array([1]), [0.5])
    silent, rows, score = K.blend_sources(np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros(0, np.int64),
                                          np.zeros(0), True)
    assert silent == 0 and rows.shape == (5, 0) and len(score) == 0
    # an empty answer among others says nothing
    assert K.blend_sources(np.array([1], np.int32), np.array([1.0], np.float32), np.array([1, 0]),
                           np.array([1.0, 1.0]), True)[0] == 1


@pytest.mark.parametrize("bad", [0.0, -1.0, np.nan])
def test_blend_a_source_without_a_positive_best_is_silent(bad):
    items = np.array([1, 2, 3, 4], np.int32)
    scores = np.array([1.0, 0.5, bad, bad], np.float32)
    assert check(items, scores, np.array([2, 2]), [1.0, 1.0])[0] == 1


def test_blend_nan_and_signed_zero_contributions_order_as_numpy():
    # a NaN in an answer makes its best NaN (np.maximum): silent, as in numpy
    assert check(np.array([1, 2], np.int32), np.array([1.0, np.nan], np.float32), np.array([2]), [1.0])[0] == 1
    # an infinite best: inf / inf is a NaN contribution (it loses to any other), 2 / inf a 0.0;
    # -0.0 and 0.0 contributions tie (the earliest wins); a NaN sum ranks last
    items = np.array([4, 1, 7, 9, 1, 4, 7, 9, 0], np.int32)
    scores = np.array([np.inf, 2.0, 0.0, -0.0, 1.0, -0.0, 0.5, 0.0, 1.0], np.float32)
    silent, rows, score = check(items, scores, np.array([4, 5]), [1.0, 1.0])
    assert rows[0].tolist() == [0, 1, 4, 7, 9] and rows[2].tolist() == [8, 4, 5, 6, 3]
    assert np.isnan(score[2]) and rows[3][-1] == 2


def test_blend_rejects_negative_items_as_bincount_does():
    with pytest.raises(ValueError):
        K.blend_sources(np.array([-1, 2], np.int32), np.array([1.0, 1.0], np.float32), np.array([2]),
                        np.array([1.0]), True)


def test_blend_pool_drops_silent_sources_and_keeps_the_others_positions():
    from server.placements import blend
    from server.recommenders.base import Candidates
    a = Candidates(np.array([3, 1], np.int32), np.array([0.0, -1.0], np.float32), "a")
    b = Candidates(np.array([2, 3], np.int32), np.array([2.0, 1.0], np.float32), ["b2", "b3"])
    pool = blend._blend(None, ["a", "b"], [a, b], [1.0, 0.5], {})
    alone = blend._blend(None, ["b"], [b], [0.5], {})
    assert pool.names == ["b"] and pool.starts == [0] and pool.cands == [b]
    for name in ("index", "score", "best_src", "best_at", "blend_ranking"):
        assert np.array_equal(getattr(pool, name), getattr(alone, name))
    assert pool.score.tolist() == [0.5, 0.25] and pool.best_at.tolist() == [0, 1]


class _Codes:
    """What ``rules.select`` reads of a dataset: category and brand codes."""
    def __init__(self, cat, brand):
        self.category_code, self.brand_code = cat, brand

    def derived(self, name, build):
        return build(self)


def _entries_python(pool, ranking, held):
    """``blend._lazy_entries`` before the kernel (the pool's entries in ranking order)."""
    index, best_src, best_at, names, cands, starts = pool.index, pool.best_src, pool.best_at, pool.names, pool.cands, pool.starts
    for i, s, at in zip(index[ranking].tolist(), best_src[ranking].tolist(), best_at[ranking].tolist()):
        name = names[s]
        if held and held.get(i, name) != name:
            continue
        yield i, (cands[s], at - starts[s]), name


@pytest.mark.parametrize("seed", range(12))
def test_select_pool_equals_the_python_rules(seed):
    from server import rules as R
    from server.placements import blend
    from server.recommenders.base import Candidates
    rng = np.random.default_rng(seed)
    n_items = int(rng.integers(5, 120))
    ds = _Codes(rng.integers(-1, 4, n_items).astype(np.int32), rng.integers(-1, 3, n_items).astype(np.int32))
    for _ in range(60):
        n_src = int(rng.integers(1, 5))
        items, scores, lens = random_answers(rng, n_src, n_items, 30, int(rng.integers(1, 4)))
        names = list(rng.choice(["a", "b", "c"], n_src))   # (a name twice: a recommender listed twice)
        cands, p = [], 0
        for n in lens:
            cands.append(Candidates(items[p:p + n], scores[p:p + n], "r"))
            p += n
        pool = blend._blend(ds, names, cands, rng.random(n_src).tolist(), {})
        mask = rng.random(n_items) < rng.choice([0.3, 0.8, 1.0])
        held = blend.Held({int(i): str(rng.choice(["a", "b", "c", "buy_again"])) for i in rng.choice(n_items, int(rng.integers(0, 6)))})
        page_seen = {int(i) for i in rng.choice(n_items, int(rng.integers(0, 8)))}
        rules = R.merge({k: v for k, v in (("max_per_category", int(rng.integers(1, 3))), ("max_per_brand", int(rng.integers(1, 4))),
                                           ("dedupe", False)) if rng.random() < 0.4})
        count = int(rng.integers(1, 12))
        ranking = pool.ranking(None, None) if rng.random() < 0.7 else rng.permutation(len(pool.index))  # (another ranker's)
        want = R.select(ds, _entries_python(pool, ranking[mask[pool.index[ranking]]], held), count, rules, mask, page_seen)
        got = blend._select_pool(ds, pool, ranking, count, rules, mask, page_seen, held)
        assert got == want


def test_select_pool_empty_and_single():
    rows = np.zeros((5, 0), np.int64)
    none = np.zeros(0, np.int64)
    codes = np.zeros(0, np.int32)
    got = K.select_pool(none, rows, np.ones(3, bool), -1, NO_CART, np.zeros((2, 0), np.int64), none, none, codes, codes, 0, 0, 8)
    assert got.shape == (3, 0)
    rows = np.array([[2], [0], [5], [0], [5]], np.int64)
    one = np.zeros(1, np.int64)
    got = K.select_pool(one, rows, np.ones(3, bool), -1, NO_CART, np.zeros((2, 0), np.int64), none, none, codes, codes, 0, 0, 8)
    assert got.tolist() == [[2], [0], [5]]
    held = np.array([[2], [7]], np.int64)   # held by a name the pool's source has not
    assert K.select_pool(one, rows, np.ones(3, bool), -1, NO_CART, held, one, none, codes, codes, 0, 0, 8).shape == (3, 0)
    assert K.select_pool(one, rows, np.ones(3, bool), -1, NO_CART, held, one + 7, none, codes, codes, 0, 0, 8).shape == (3, 1)


def test_addable_counts_only_what_a_fallback_or_the_net_could_add():
    from server.placements.blend import _addable
    mask = np.zeros(100, bool)
    mask[[3, 7, 9]] = True
    rules = {"dedupe": True}
    chosen = [(3, "r", "s")]
    assert _addable(mask, chosen, {7}, {}, rules, ["a"])                          # 9 is free
    assert not _addable(mask, chosen, {7}, {9: "buy_again"}, rules, ["a"])        # 9 held for another
    assert _addable(mask, chosen, {7}, {9: "buy_again"}, rules, ["buy_again"])    # ... which is a fallback
    assert _addable(mask, chosen, {7, 9}, {}, {"dedupe": False}, [])              # on the page, no dedupe
    assert not _addable(np.zeros(100, bool), [], set(), {}, rules, ["a"])
    assert _addable(np.ones(100, bool), [(i, "r", "s") for i in range(100)], set(), {}, rules, [])   # (large: not checked)


def test_run_slot_skipping_exhausted_fallbacks_gives_the_same_slots(tmp_path, monkeypatch):
    from server import rules as R
    from server.placements import blend
    from server.recommenders.base import Context
    from tests.engine.fixtures import T0, ShopData, rules_shop
    d = ShopData(tmp_path)
    try:
        model = rules_shop(d, sessions=6)
        strat = {"sources": [{"recommender": "category_top"}, {"recommender": "realtime_personal", "weight": 0.3}],
                 "fallbacks": ["category_top", "buy_again", "best_sellers", "new_arrivals"], "scope_to_category": True}
        rng = np.random.default_rng(0)
        cases = []
        for n in range(120):
            bought = {f"p{i}": T0 for i in rng.choice(12, int(rng.integers(0, 3)), replace=False)}
            item = int(rng.choice([-1, int(rng.integers(0, 12))]))
            cart = rng.choice(np.arange(-12, 12), int(rng.integers(0, 3))).astype(np.int32)   # (negative: from the end)
            cases.append((str(rng.choice(["Home > Mugs", "Home > Lamps", "Food", "Home", ""])), bought,
                          {int(i) for i in rng.choice(12, int(rng.integers(0, 4)))},
                          R.merge(rng.choice([{}, {"max_per_brand": 1}, {"dedupe": False}, {"exclude": ["p1", "p2"]},
                                              {"categories": ["Food"]}, {"exclude_cart": False, "exclude_current": False}])),
                          int(rng.integers(1, 10)), item, cart, bool(rng.random() < 0.5)))

        def slots():
            out = []
            for category, bought, seen, rules, count, item, cart, scoped in cases:
                model.clear_caches()
                ctx = Context(category=category, bought=bought, clock_ms=T0, now_ms=T0, item=item, cart_items=cart)
                out.append(blend.run_slot(model, ctx, strat if scoped else unscoped, count, dict(rules), set(seen)))
            return out
        unscoped = {**strat, "scope_to_category": False}
        calls = []
        real = blend._exhausted_net
        monkeypatch.setattr(blend, "_exhausted_net", lambda *a: calls.append(real(*a)) or calls[-1])
        fast = slots()
        assert sum(c is not None for c in calls) > 20 and any(calls) and any(c == [] for c in calls)   # (the shortcut taken)
        monkeypatch.setattr(blend, "_exhausted_net", lambda *a: None)
        assert fast == slots()
        monkeypatch.setattr(blend, "_addable", lambda *a: True)
        assert fast == slots()
    finally:
        d.close()


@pytest.mark.parametrize("seed", range(4))
def test_pool_per_source_is_the_blends_normalised_scores(seed):
    # what a learned ranker reads: each source's score / its best, 0 where it has no say
    from server.placements import blend
    from server.recommenders.base import Candidates
    rng = np.random.default_rng(seed)
    for _ in range(20):
        n_src = int(rng.integers(1, 5))
        items, scores, lens = random_answers(rng, n_src, int(rng.integers(1, 60)), 20, 3)
        cands, p = [], 0
        for n in lens:
            cands.append(Candidates(items[p:p + n], scores[p:p + n], "r"))
            p += n
        pool = blend._blend(None, [f"s{i}" for i in range(n_src)], cands, [1.0] * n_src, {})
        want = np.zeros((len(pool.index), n_src), np.float32)
        for s, c in enumerate(cands):
            want[np.searchsorted(pool.index, c.items), s] = c.scores / c.scores.max()
        assert pool.per_source.dtype == np.float32 and np.array_equal(pool.per_source, want)
        assert np.array_equal(pool.uniq, pool.index) and pool.uniq.dtype == np.int32


def _catalog_net_python(ds, chosen, count, rules, mask, page_seen, held, order, score):
    """``blend._catalog_net`` before the kernel: its generator over the catalog through ``rules.select``."""
    from server import rules as R

    def entries():
        lo, n = 0, 64
        while lo < len(order):
            chunk = order[lo:lo + n]
            ok = mask[chunk]
            for i, sc in zip(chunk[ok].tolist(), score[lo:lo + n][ok].tolist()):
                if i not in held:
                    yield i, ("popular in the shop" if sc > 1e-3 else "new in the shop"), "catalog"
            lo += n
            n *= 4
    return R.select(ds, entries(), count - len(chosen), rules, mask, page_seen, chosen)


@pytest.mark.parametrize("seed", range(12))
def test_catalog_net_equals_the_python_net(seed, monkeypatch):
    from server import rules as R
    from server.placements import blend
    rng = np.random.default_rng(seed)
    for _ in range(60):
        n_items = int(rng.choice([0, 1, 2, int(rng.integers(3, 400))]))
        ds = _Codes(rng.integers(-1, 4, n_items).astype(np.int32), rng.integers(-1, 3, n_items).astype(np.int32))
        order = rng.permutation(n_items).astype(np.intp)[: int(rng.integers(0, n_items + 1))]   # (not in catalog: left out)
        # scores on a few levels around 1e-3 (ties, and the popular / new boundary itself)
        score = rng.choice(np.array([0, 1e-3, 1.0001e-3, 0.5, 2], np.float32), len(order))
        monkeypatch.setattr(blend, "catalog_order", lambda ds: (order, score))
        mask = rng.random(n_items) < rng.choice([0.05, 0.5, 1.0])
        held = {int(i): "buy_again" for i in rng.choice(max(n_items, 1), int(rng.integers(0, 6))) if i < n_items}
        if rng.random() < 0.5:
            held = blend.Held(held)
        page_seen = {int(i) for i in rng.choice(max(n_items, 1), int(rng.integers(0, 8))) if i < n_items}
        count = int(rng.integers(1, 12))
        chosen = [(int(i), "r", "s") for i in rng.choice(max(n_items, 1), int(rng.integers(0, count))) if i < n_items]
        rules = R.merge({k: v for k, v in (("max_per_category", int(rng.integers(1, 3))), ("max_per_brand", int(rng.integers(1, 4))),
                                           ("dedupe", False)) if rng.random() < 0.4})
        want = _catalog_net_python(ds, chosen, count, rules, mask, page_seen, held, order, score)
        assert blend._catalog_net(ds, chosen, count, rules, mask, page_seen, held) == want


def test_catalog_net_empty_single_and_a_count_below_one():
    none, codes = np.zeros(0, np.int64), np.zeros(0, np.int32)
    net = lambda order, score, held, seen, count, current=-1, cart=NO_CART: K.catalog_net(   # noqa: E731
        order, score, np.ones(3, bool), current, cart, held, none, seen, codes, codes, 0, 0, count)
    assert net(none, np.zeros(0, np.float32), none, none, 5).shape == (2, 0)
    one, sc = np.array([2], np.int64), np.array([5e-4], np.float32)   # (float32 1e-3 is above 1e-3)
    assert net(one, sc, none, none, 5).tolist() == [[2], [0]]
    assert net(one, sc * 4, none, none, 0).tolist() == [[2], [1]]  # (as select)
    assert net(one, sc, one, none, 5).shape == (2, 0)          # held
    assert net(one, sc, none, one, 5).shape == (2, 0)          # on the page
    assert net(one, sc, none, none, 5, current=2).shape == (2, 0)                           # the current product
    assert net(one, sc, none, none, 5, cart=np.array([-1], np.int32)).shape == (2, 0)      # in the cart (from the end)
    assert net(one, sc, none, none, 5, cart=np.array([1], np.int32)).tolist() == [[2], [0]]


def _exhausted_net_python(ds, first_mask, rules_mask, net, current, cart, held, fallbacks, chosen, page_seen, rules, count,
                          order, score):
    """``run_slot``'s steps 4-5 one by one for a slot ``_addable`` says is exhausted (None when
    it is not): nothing, or with ``net`` the catalog net over the unscoped ``allowed_mask``."""
    from server.placements.blend import _addable

    def allowed(m):
        m = m.copy()
        if current >= 0:
            m[current] = False
        m[cart] = False
        return m
    if _addable(allowed(first_mask), chosen, page_seen, held, rules, fallbacks):
        return None
    return _catalog_net_python(ds, chosen, count, rules, allowed(rules_mask), page_seen, held, order, score) if net else []


@pytest.mark.parametrize("seed", range(8))
def test_exhausted_net_equals_addable_then_the_unscoped_net(seed, monkeypatch):
    from types import SimpleNamespace

    from server import rules as R
    from server.placements import blend
    rng = np.random.default_rng(seed)
    shortcut, steps = 0, 0
    for _ in range(120):
        n_items = int(rng.choice([1, 2, int(rng.integers(3, 300))]))
        ds = _Codes(rng.integers(-1, 4, n_items).astype(np.int32), rng.integers(-1, 3, n_items).astype(np.int32))
        order = rng.permutation(n_items).astype(np.intp)[: int(rng.integers(0, n_items + 1))]
        score = rng.choice(np.array([0, 1e-3, 1.0001e-3, 0.5, 2], np.float32), len(order))   # (ties)
        monkeypatch.setattr(blend, "catalog_order", lambda ds: (order, score))
        rules_mask = rng.random(n_items) < rng.choice([0.05, 0.5, 1.0])
        first_mask = rules_mask & (rng.random(n_items) < rng.choice([0.0, 0.02, 0.1, 0.5]))   # (a category of it)
        current = int(rng.choice([-1, int(rng.integers(0, n_items))]))
        cart = rng.integers(-n_items, n_items, int(rng.choice([0, 1, 3]))).astype(np.int32)
        held = blend.Held({int(i): str(rng.choice(["buy_again", "recently_viewed"])) for i in rng.choice(n_items, int(rng.integers(0, 6)))})
        fallbacks = [x for x in ("category_top", "buy_again", "best_sellers") if rng.random() < 0.5]
        page_seen = {int(i) for i in rng.choice(n_items, int(rng.integers(0, 4)))}
        count = int(rng.integers(1, 12))
        chosen = [(int(i), "r", "s") for i in np.unique(rng.choice(n_items, int(rng.integers(0, count))))]
        rules = R.merge({k: v for k, v in (("max_per_category", int(rng.integers(1, 3))), ("max_per_brand", int(rng.integers(1, 4))),
                                           ("dedupe", False)) if rng.random() < 0.4})
        net = bool(rng.random() < 0.7)
        first = blend._few(first_mask)
        plan = SimpleNamespace(first=first, dedupe=rules["dedupe"], mask=rules_mask, fallback_codes=np.fromiter(
            map(blend.name_code, fallbacks), np.int64, len(fallbacks)), **dict(zip(("cat", "brand", "max_cat", "max_brand"),
                                                                                   blend._caps(ds, rules))))
        got = blend._exhausted_net(ds, plan, (None, None, first) if net else None, chosen, count, current, cart,
                                   held, page_seen)
        want = _exhausted_net_python(ds, first_mask, rules_mask, net, current, cart, held, fallbacks, chosen, page_seen,
                                     rules, count, order, score)
        if first is None:
            assert got is None
        else:
            assert got == want
            shortcut += got is not None
            steps += got is None
    assert shortcut > 40 and steps > 10   # (both answers seen)


def test_exhausted_net_empty_and_single():
    none, codes = np.zeros(0, np.int64), np.zeros(0, np.int32)
    no_held = np.zeros((2, 0), np.int64)
    one, sc = np.array([2], np.int64), np.array([5e-4], np.float32)

    def call(first, order, net=True, held=no_held, fallbacks=none, chosen=none, seen=none, current=-1):
        return K.exhausted_net(first, current, NO_CART, held, fallbacks, chosen, seen, net, order, sc[:len(order)],
                               np.ones(3, bool), codes, codes, 0, 0, 5).tolist()
    assert call(none, none) == [1]                     # nothing allowed, an empty catalog
    assert call(none, one) == [1, 2, 0]                # nothing allowed: the net
    assert call(none, one, net=False) == [1]           # ... unscoped: none
    assert call(one, one) == [0]                       # 2 is free: the steps one by one
    assert call(one, one, chosen=one) == [1]           # ... taken
    assert call(one, one, seen=one) == [1]             # ... on the page
    assert call(one, one, current=2) == [1]           # ... the current product (nor the net's)
    held = np.array([[2], [7]], np.int64)
    assert call(one, one, held=held) == [1]                                  # held for another
    assert call(one, one, held=held, fallbacks=np.array([7], np.int64)) == [0]  # ... by a fallback
    assert call(np.arange(65, dtype=np.int64), one, chosen=np.arange(65, dtype=np.int64)) == [0]   # (large: not checked)
    assert call(np.arange(64, dtype=np.int64), one, chosen=np.arange(64, dtype=np.int64)) == [1]
