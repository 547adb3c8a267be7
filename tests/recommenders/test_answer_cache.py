"""The engine's per-model caches (source answers by ``cache_key``, blended pools): a cached
answer equals a freshly computed one, a key holds everything the answer depends on, a changed
key misses, a rebuild (a new model) or a pickled model starts empty, and a learned ranker
still orders every request itself."""
from __future__ import annotations

import itertools
import pickle
import random

import numpy as np
import pytest

from server import rules as R
from server.placements import blend
from server.placements import ranker as hook
from server.placements.defaults import DEFAULT_STRATEGIES
from server.recommenders.base import Context, Recent
from server.signals import CART, PURCHASE, VIEW
from tests.engine.fixtures import T0, ShopData, buy, engage, product, view

HOUR = 3_600_000


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    rng = random.Random(3)
    d = ShopData(tmp_path_factory.mktemp("cache"))
    cats = ["Home > Mugs", "Home > Lamps", "Food > Tea", "Food > Cake", "Garden"]
    d.products([product(f"p{i}", f"{['Blue', 'Red', 'Green'][i % 3]} {['mug', 'lamp', 'tea', 'cake', 'rake'][i % 5]} {i}",
                        cats[i % 5], price=float(1 + i % 17), created_at=T0 + i) for i in range(60)])
    evs = []
    for v in range(80):
        fav = rng.sample(range(60), 6)
        for s in range(3):
            ts = T0 + (v * 7 + s * 500) * 60_000
            seen = rng.sample(fav, 3) + [rng.randrange(60)]
            for n, i in enumerate(seen):
                evs += [view(f"p{i}", f"v{v}", f"s{v}_{s}", ts + n * 1000),
                        engage(f"p{i}", rng.choice([1500, 20_000, 60_000]), f"v{v}", f"s{v}_{s}", ts + n * 1000 + 500)]
            if rng.random() < 0.6:
                evs.append(buy(f"o{v}_{s}", [f"p{i}" for i in seen[:2]], f"v{v}", f"s{v}_{s}", ts + 9000))
    d.events(evs)
    m = d.model()
    yield d, m
    d.close()


def contexts(model, n=160, seed=1):
    """Varied requests: pages with and without product, cart, order, category, query, session,
    known and unknown persons, profiles, hours."""
    rng = random.Random(seed)
    ds = model.ds
    out = []
    for k in range(n):
        ctx = Context(tenant="t", visitor=f"v{rng.randrange(100)}", session="sx", clock_ms=ds.clock_ms,
                      now_ms=ds.clock_ms, hour=rng.choice([3, 9, 9, 20]), weekday=rng.choice([1, 6]))
        ctx.person = ds.person(None, ctx.visitor)
        if rng.random() < 0.6:
            ctx.product = f"p{rng.randrange(8)}"
            ctx.item = ds.item(ctx.product)
        if rng.random() < 0.3:
            ctx.cart = [f"p{rng.randrange(8)}"]
            ctx.cart_items = np.array([ds.item(p) for p in ctx.cart], np.int32)
        if rng.random() < 0.2:
            ctx.order = [f"p{rng.randrange(8)}"]
            ctx.order_items = np.array([ds.item(p) for p in ctx.order], np.int32)
        if rng.random() < 0.5:
            ctx.recent = [Recent(f"p{i}", ds.item(f"p{i}"), rng.choice([VIEW, VIEW, CART]), ds.clock_ms - j,
                                 rng.choice([0.5, 1.0, 2.0]), True)
                          for j, i in enumerate(rng.sample(range(8), rng.randrange(1, 3)))]
        if rng.random() < 0.2:
            ctx.bought = {f"p{rng.randrange(8)}": ds.clock_ms - HOUR}
            ctx.recent.append(Recent("p1", ds.item("p1"), PURCHASE, ds.clock_ms - HOUR, 5.0, False))
        ctx.category = rng.choice([None, None, "Home", "Food > Tea", "Garden"])
        ctx.query = rng.choice([None, "mug", "blue lamp", "xqzzy"])
        ctx.profile = rng.choice([None, {"gender": "f", "age_band": "25-34"}, {"interests": ["tea"]}])
        out.append(ctx)
    return out


def fresh(model, name, ctx, k=20):
    return model.recommenders[name].recommend(model.fitted[name], model.ds, ctx, k)


def same(a, b) -> bool:
    if a is None or b is None:
        return a is b
    return (len(a) == len(b) and a.items.tolist() == b.items.tolist() and a.scores.tolist() == b.scores.tolist()
            and [a.reason(p) for p in range(len(a))] == [b.reason(p) for p in range(len(b))])


def cacheable(model):
    return sorted(n for n, r in model.recommenders.items()
                  if n in model.fitted and r.cache_key(Context(item=0, query="q", category="Home", profile={"gender": "f"}))
                  is not None)


def test_the_statistical_and_item_sources_are_cacheable(shop):
    _, m = shop
    names = set(cacheable(m))
    assert {"best_sellers", "popular_now", "trending", "new_arrivals", "top_conversion", "viewed_together",
            "bought_together", "content_based", "item_cf", "category_top", "time_of_day", "search_keyword",
            "zero_result", "demographic"} <= names
    # these read the person's whole history or the clock: never cached
    assert not {"matrix_factorization", "user_cf", "buy_again", "recently_viewed"} & names


def test_a_cached_answer_equals_a_fresh_one(shop):
    _, m = shop
    m.clear_caches()
    ctxs = contexts(m)
    for name in cacheable(m):
        for ctx in ctxs:
            rec = m.recommenders[name]
            if not rec.applicable(ctx):
                continue
            blend._call(m, name, ctx, 20)                # offered once: remembered, not kept
            first = blend._call(m, name, ctx, 20)        # offered again: kept
            again = blend._call(m, name, ctx, 20)        # from the model's answer cache
            if rec.keeps_answers:                         # (from its own: a ranked one is kept, an empty one made)
                assert same(again, first)
            else:
                assert again is first
            assert same(again, fresh(m, name, ctx)), (name, ctx)
    assert m.answers.hits > 0 and len(m.answers) > 0


def test_equal_keys_mean_equal_answers(shop):
    """The key holds everything the answer depends on: over many varied requests, any two with
    the same key get the same freshly computed answer (and the cache would be right to share)."""
    _, m = shop
    ctxs = contexts(m, n=240, seed=2)
    checked = 0
    for name in cacheable(m):
        rec = m.recommenders[name]
        by_key: dict = {}
        for ctx in ctxs:
            if rec.applicable(ctx):
                by_key.setdefault(rec.cache_key(ctx), []).append(ctx)
        for group in by_key.values():
            for a, b in itertools.combinations(group[:4], 2):
                assert same(fresh(m, name, a), fresh(m, name, b)), name
                checked += 1
        assert len(by_key) >= 1
    assert checked > 100


def test_a_changed_key_misses(shop):
    _, m = shop
    m.clear_caches()
    ctx = Context(product="p1", item=m.ds.item("p1"), clock_ms=m.ds.clock_ms)
    a = blend._call(m, "viewed_together", ctx, 20)
    misses = m.answers.misses
    other = Context(product="p2", item=m.ds.item("p2"), clock_ms=m.ds.clock_ms)
    b = blend._call(m, "viewed_together", other, 20)
    assert m.answers.misses == misses + 1 and b is not a
    assert same(b, fresh(m, "viewed_together", other))
    # the same product with a session: the session's items are seeds too, so another key
    with_session = Context(product="p1", item=m.ds.item("p1"), clock_ms=m.ds.clock_ms,
                           recent=[Recent("p3", m.ds.item("p3"), VIEW, m.ds.clock_ms, 1.0, True)])
    c = blend._call(m, "viewed_together", with_session, 20)
    assert c is not a and same(c, fresh(m, "viewed_together", with_session))
    # another k is another answer
    assert blend._call(m, "viewed_together", ctx, 5) is not a


def test_a_rebuild_or_a_pickled_model_starts_empty(shop):
    d, m = shop
    ctx = Context(product="p1", item=m.ds.item("p1"), clock_ms=m.ds.clock_ms)
    blend._call(m, "viewed_together", ctx, 20)
    assert len(m.answers)
    copy = pickle.loads(pickle.dumps(m))
    assert "_answers" not in copy.__dict__ and len(copy.answers) == 0
    rebuilt = d.model()
    assert rebuilt.answers is not m.answers and len(rebuilt.answers) == 0


def slot(m, ctx, placement, count=6):
    strat = DEFAULT_STRATEGIES[placement]
    return blend.run_slot(m, ctx, strat, count, R.merge(strat.get("rules")), set())


def test_pool_cache_for_a_product_page_not_for_a_session(shop):
    """detail_similar for an anonymous visitor without a session reads only the product: the
    blended pool is kept and the next visitor of that page gets the same slot from it; with a
    session, item_cf / viewed_together seed from it too: no pool; main blends
    matrix_factorization (no cache key): never pooled."""
    _, m = shop
    m.clear_caches()
    ds = m.ds
    anon = dict(product="p4", item=ds.item("p4"), clock_ms=ds.clock_ms, now_ms=ds.clock_ms)
    first = slot(m, Context(visitor="a0", **anon), "detail_similar")
    assert len(m.pools) == 0                      # a pool is kept when its key comes a second time
    assert slot(m, Context(visitor="a1", **anon), "detail_similar") == first
    assert len(m.pools) == 1
    hits = m.pools.hits
    second = slot(m, Context(visitor="a2", **anon), "detail_similar")
    assert m.pools.hits == hits + 1 and second == first
    m.clear_caches()
    assert slot(m, Context(visitor="a2", **anon), "detail_similar") == first
    # a session's items are seeds too: a key hardly ever asked again, so not even made (the
    # table sources are computed in the slot's one call, blend._fused): no pool kept
    hits, kept = m.pools.hits, len(m.pools)
    sess = Context(visitor="a3", recent=[Recent("p7", ds.item("p7"), VIEW, ds.clock_ms, 1.0, True)], **anon)
    slot(m, sess, "detail_similar")
    slot(m, Context(visitor="a3", recent=sess.recent, **anon), "detail_similar")
    assert m.pools.hits == hits and len(m.pools) == kept
    m.clear_caches()
    # main blends matrix_factorization (the person's history): never pooled
    slot(m, Context(visitor="v1", person=ds.person(None, "v1"), clock_ms=ds.clock_ms), "main")
    assert len(m.pools) == 0


def pooled_product_page(m, pid="p4"):
    """The caches cleared, then ``pid``'s product page asked by two anonymous visitors (a pool is
    kept on its key's second request): the page's context fields and the second answer."""
    m.clear_caches()
    ds = m.ds
    page = dict(product=pid, item=ds.item(pid), clock_ms=ds.clock_ms, now_ms=ds.clock_ms)
    slot(m, Context(visitor="a0", **page), "detail_similar")
    return page, slot(m, Context(visitor="a1", **page), "detail_similar")


def test_pooled_slots_still_apply_the_visitors_rules(shop):
    _, m = shop
    ds = m.ds
    base, answer = pooled_product_page(m)
    first = [i for i, _, _ in answer]
    banned = ds.item_ids[first[0]]
    ctx = Context(visitor="a2", bought={banned: ds.clock_ms - HOUR}, **base)   # bought an hour ago
    again = [i for i, _, _ in slot(m, ctx, "detail_similar")]
    assert m.pools.hits >= 1 and first[0] not in again


class ReverseRanker:
    """Orders the pool worst first: a ranker that is not the blend's own order."""
    def __init__(self):
        self.calls = 0

    def rank(self, model, ctx, cands):
        self.calls += 1
        return np.lexsort((cands.items, -cands.score))[::-1].copy()


def test_a_learned_ranker_orders_every_pooled_request(shop):
    _, m = shop
    anon, blended = pooled_product_page(m)
    old = hook.get_ranker()
    r = ReverseRanker()
    hook.set_ranker(r)
    try:
        one = slot(m, Context(visitor="a2", **anon), "detail_similar")
        two = slot(m, Context(visitor="a3", **anon), "detail_similar")
    finally:
        hook.set_ranker(old)
    assert m.pools.hits >= 2 and r.calls == 2           # the pool is shared, the ranking is not
    assert one == two and one != blended
    assert slot(m, Context(visitor="a4", **anon), "detail_similar") == blended


def test_the_caches_keep_a_key_offered_a_second_time():
    """Admission on the second sighting: a key offered once is only remembered (keys of fresh
    personalised requests mostly come once), offered again it is kept; the memory of offered
    keys is bounded (4 x size) and forgets the oldest first."""
    from server.recommenders.model import LRU
    c = LRU(2)
    c.put(("a",), 1)
    assert ("a",) not in c and c.get(("a",)) is None
    c.put(("a",), 1)
    assert c.get(("a",)) == 1
    c.put(("a",), 2)                  # a kept key is replaced at once
    assert c.get(("a",)) == 2
    for k in range(8):                # 8 keys offered once: ("b",) below is forgotten
        c.put(("x", k), k)
    assert len(c) == 1
    c.put(("b",), 1)
    for k in range(8, 16):
        c.put(("x", k), k)
    c.put(("b",), 1)
    assert ("b",) not in c            # its first offer was forgotten: this is a first offer again
    c.put(("b",), 1), c.put(("c",), 1), c.put(("c",), 1)
    assert ("b",) in c and ("c",) in c and ("a",) not in c     # size 2: the least recently used went


class _ReferenceLRU:
    """``LRU``'s get, put and offer as first written (``offer`` called by ``put``): the
    reference of its one-hash ``put``."""
    def __init__(self, size):
        from collections import OrderedDict
        self.size, self._d, self._seen = size, OrderedDict(), OrderedDict()

    def get(self, key, default=None):
        if key not in self._d:
            return default
        self._d.move_to_end(key)
        return self._d[key]

    def put(self, key, value):
        d = self._d
        if key not in d:
            if not self.offer(key):
                return
            self._seen.pop(hash(key), None)
        d[key] = value
        d.move_to_end(key)
        while len(d) > self.size:
            d.popitem(last=False)

    def offer(self, key):
        if key in self._d:
            return True
        h = hash(key)
        if h in self._seen:
            return True
        self._seen[h] = None
        if len(self._seen) > 4 * self.size:
            self._seen.popitem(last=False)
        return False


def test_the_lru_is_its_reference():
    """Random gets, puts and offers over few and many keys, sizes 0 to 8: the same answers,
    the same entries in the same order and the same remembered hashes as the reference."""
    import random

    from server.recommenders.model import LRU
    rng = random.Random(4)
    for trial in range(300):
        size = rng.randrange(0, 9)
        a, b = LRU(size), _ReferenceLRU(size)
        keys = [("k", j) for j in range(rng.randrange(1, 40))]
        for step in range(300):
            key, op = rng.choice(keys), rng.random()
            if op < 0.4:
                a.put(key, step), b.put(key, step)
            elif op < 0.8:
                assert a.get(key, "none") == b.get(key, "none")
            else:
                assert a.offer(key) == b.offer(key)
            assert list(a._d.items()) == list(b._d.items()) and list(a._seen) == list(b._seen)


def test_sources_that_keep_their_answers_skip_the_answer_cache(shop):
    """category_top and time_of_day keep their answers themselves (``keeps_answers``): the
    placement neither looks them up in nor offers them to the model's answer cache, their keys
    still exist (the pools'), and a kept answer is the one computed from the fitted state."""
    from server.recommenders.time_of_day import TimeOfDay
    _, m = shop
    m.clear_caches()
    for name in ("category_top", "time_of_day"):
        assert m.recommenders[name].keeps_answers and name in cacheable(m)
    assert not any(r.keeps_answers for n, r in m.recommenders.items() if n not in ("category_top", "time_of_day"))
    ctxs = contexts(m)
    for name in ("category_top", "time_of_day"):
        for ctx in ctxs:
            ctx.answers = None
            first, again = blend._call(m, name, ctx, 20), blend._call(m, name, ctx, 20)
            assert (again is first) if name == "time_of_day" or len(first) else same(again, first)
    assert len(m.answers) == 0 and m.answers.hits == m.answers.misses == 0
    tod = m.recommenders["time_of_day"]
    for hour in range(-1, 26):
        for weekday in range(7):
            for k in (1, 20, 44, 300):
                ctx = Context(hour=hour, weekday=weekday)
                got = tod.recommend(m.fitted["time_of_day"], m.ds, ctx, k)
                assert got is tod.recommend(m.fitted["time_of_day"], m.ds, ctx, k)
                assert same(got, TimeOfDay._answer(m.fitted["time_of_day"], int(weekday >= 5), hour % 24, k))
    other = TimeOfDay()   # another fitted state: its own answers
    idx, sc = m.fitted["time_of_day"]
    flat = (idx[:, :, ::-1].copy(), sc[:, :, ::-1].copy())
    assert same(other.recommend(flat, m.ds, Context(hour=9), 5), TimeOfDay._answer(flat, 0, 9, 5))
    assert not same(other.recommend(flat, m.ds, Context(hour=9), 5), tod.recommend(m.fitted["time_of_day"], m.ds, Context(hour=9), 5))
