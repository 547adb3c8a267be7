"""The learned ranker: it learns a synthetic signal, the guard refuses a worse model, the
hook falls back to the blend, position bias weights, the past has no future rows."""
import numpy as np
import pytest

from server.ranking.features import FeatureSpace
from server.ranking.history import truncate
from server.ranking.mlp import MLP
from server.ranking.pool import CandidateSet
from server.ranking.ranker import LearnedRanker, blend_order
from server.ranking.train import RankerState, _guard, ipw_weight, ndcg_at
from server.recommenders.base import Context


def _synthetic(n_queries, P=20, F=6, seed=0):
    """The positive of each query is the candidate with the largest x0 * x1 (an interaction no
    single feature shows); x2 is a decoy correlated with the row order."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n_queries, P, F)).astype(np.float32)
    M = np.ones((n_queries, P), bool)
    Y = np.zeros((n_queries, P), np.float32)
    best = np.argmax(X[:, :, 0] * X[:, :, 1], axis=1)
    Y[np.arange(n_queries), best] = 1.0
    return X, M, Y, best


def test_mlp_learns_an_interaction():
    X, M, Y, _ = _synthetic(1200)
    Xv, Mv, Yv, _ = _synthetic(300, seed=1)
    Xt, _, _, best_t = _synthetic(400, seed=2)
    mlp = MLP(X.shape[2], seed=0)
    before = float(np.mean(np.argmax(mlp.score(Xt), axis=1) == best_t))
    info = mlp.fit(X, M, Y, Xv, Mv, Yv, lr=1e-2, max_epochs=60, patience=6)
    acc = float(np.mean(np.argmax(mlp.score(Xt), axis=1) == best_t))
    assert info["epochs"] >= 2 and info["val_loss"] < np.log(20)   # better than uniform over 20
    assert acc > 0.5 and acc > before + 0.3                          # chance is 1/20


def test_mlp_early_stopping_keeps_the_best_epoch():
    X, M, Y, _ = _synthetic(200)
    Xv, Mv, Yv, _ = _synthetic(100, seed=1)
    mlp = MLP(X.shape[2], seed=0)
    info = mlp.fit(X, M, Y, Xv, Mv, Yv, max_epochs=50, patience=2)
    assert info["best_epoch"] <= info["epochs"]
    assert mlp.loss((Xv - 0) , Mv, Yv) == pytest.approx(info["val_loss"], rel=1e-3)


class _Stub:
    def __init__(self, sign):
        self.sign = sign

    def score(self, x):
        return self.sign * -np.arange(len(x), dtype=np.float32)   # +1: keeps the blend order, -1: reverses it


def test_guard_refuses_a_worse_model():
    n, P = 40, 10
    X = np.zeros((n, P, 3), np.float32)
    M = np.ones((n, P), bool)
    Y = np.zeros((n, P), np.float32)
    Y[:, 0] = 1.0                              # the blend's first candidate is the right one
    worse = _guard(_Stub(-1), X, M, Y, ["cart"] * n)
    assert worse["cart"]["ranker_ndcg"] < worse["cart"]["blend_ndcg"] and not worse["cart"]["passes"]
    Y[:] = 0
    Y[:, P - 1] = 1.0                          # the blend's last candidate is the right one
    better = _guard(_Stub(-1), X, M, Y, ["cart"] * n)
    assert better["cart"]["passes"]
    few = _guard(_Stub(-1), X[:5], M[:5], Y[:5], ["cart"] * 5)
    assert not few["cart"]["passes"]           # too small a slice: the blend serves


def test_ndcg_at_and_ipw():
    assert ndcg_at(np.array([3, 1, 2]), {1: 1.0}) == pytest.approx(1 / np.log2(3))
    assert ipw_weight(0) == 1.0 and ipw_weight(3) == 4.0 and ipw_weight(50) == 10.0 and ipw_weight(None) == 1.0


class _Model:
    pass


def test_hook_serves_only_where_the_guard_passed(monkeypatch):
    import server.ranking.ranker as R
    items = np.array([10, 11, 12], np.int32)
    cands = CandidateSet(items, np.array([3.0, 2.0, 1.0], np.float32), np.zeros((3, 1), np.float32), ["a"])
    state = RankerState("t-1", FeatureSpace(["a"], ["cart"]), MLP(3), ["cart", "main"], ["cart"])
    monkeypatch.setattr(R, "ranked_order", lambda st, model, ctx, c: np.array([2, 1, 0]))
    model = _Model()
    model.learned_ranker = state
    r = LearnedRanker()
    assert r.rank(model, Context(tenant="t", placement="cart"), cands).tolist() == [2, 1, 0]
    # trained for main but the guard refused it there: blend order
    assert r.rank(model, Context(tenant="t", placement="main"), cands).tolist() == blend_order(cands).tolist() == [0, 1, 2]
    model.learned_ranker = None
    model.ds = type("DS", (), {"n_feedback": 0})()
    assert r.rank(model, Context(tenant="t", placement="cart"), cands).tolist() == [0, 1, 2]   # untrained: blend


def test_truncate_keeps_indices_and_drops_the_future(tmp_path):
    from tests.engine.fixtures import MIN, T0, ShopData, buy, product, view
    shop = ShopData(tmp_path).products([product(p) for p in "abcd"])
    shop.events([view("a", ts=T0), view("b", ts=T0 + MIN), buy("o1", ["a", "b"], ts=T0 + 2 * MIN),
                 buy("o2", ["c", "d"], visitor="v2", session="s2", ts=T0 + 10 * MIN)])
    model = shop.model(only=["bought_together"])
    shop.close()
    ds = model.ds
    past = truncate(ds, T0 + 5 * MIN)
    assert past.item_ids == ds.item_ids and past.n_persons == ds.n_persons
    assert past.fb_ts.max() < T0 + 5 * MIN and len(past.fb_ts) < len(ds.fb_ts)
    assert past.B.shape[0] == 1 and set(past.B.indices.tolist()) == {ds.item("a"), ds.item("b")}
    assert past.P[ds.person(None, "v2")].nnz == 0
    assert past.clock_ms < ds.clock_ms


def test_learned_ranker_in_the_engine_hook(tmp_path):
    """A shop with repeat customers: the first request queues the training in the background
    (the blend answers meanwhile), then the ranker has a version and guard results, and slots
    are served through run_slot with it in the hook."""
    import random

    from server.placements import ranker as hook
    from server.placements.blend import run_slot
    from server.placements.defaults import DEFAULT_STRATEGIES
    from server.ranking.ranker import LearnedRanker
    from tests.engine.fixtures import T0, ShopData, buy, product, view

    rng = random.Random(1)
    products = [f"p{i}" for i in range(40)]
    shop = ShopData(tmp_path).products([product(p, category=f"c{i % 5}") for i, p in enumerate(products)])
    events = []
    for c in range(60):
        fav = rng.sample(products, 3)
        for n in range(8):
            ts = T0 + (n * 60 + c) * 3_600_000
            items = rng.sample(fav, 2) + [rng.choice(products)]
            events.append(view(items[0], visitor=f"v{c}", session=f"s{c}_{n}", ts=ts - 60_000))
            events.append(buy(f"o{c}_{n}", sorted(set(items)), visitor=f"v{c}", session=f"s{c}_{n}", ts=ts))
    shop.events(events)
    model = shop.model()
    shop.close()
    learned = LearnedRanker(min_feedback=100)
    old = hook.get_ranker()
    hook.set_ranker(learned)
    try:
        ctx = Context(tenant="shop", visitor="v3", placement="main", person=model.ds.person(None, "v3"),
                      clock_ms=model.ds.clock_ms, now_ms=model.ds.clock_ms)
        first = run_slot(model, ctx, DEFAULT_STRATEGIES["main"], 8, {}, set())
        assert len(first) == 8                                  # the blend served while training
        learned.wait_idle(120)
        st = model.learned_ranker
        assert isinstance(st, RankerState), st
        assert st.version.startswith("shop-") and st.guard
        assert set(st.serving) <= set(st.placements)
        from server.ranking.ranker import cache_token
        assert cache_token(model) == st.version
        status = learned.status("shop")
        assert status["serving_version"] == st.version and status["history"][-1]["guard"] == st.guard
        again = run_slot(model, ctx, DEFAULT_STRATEGIES["main"], 8, {}, set())
        assert len(again) == 8 and len({e[0] for e in again}) == 8
    finally:
        hook.set_ranker(old)


def test_lookups_answer_as_dicts():
    from server.ranking.features import _lookups
    rng = np.random.default_rng(3)
    probes = rng.integers(-1, 12, 30)
    tables = [(rng.integers(-1, 12, n), rng.random(n), probes) for n in (1, 5, 20)]   # repeated keys: the last wins
    values, found = _lookups(tables)
    for (keys, vals, _), v, f in zip(tables, values, found):
        d = dict(zip(keys.tolist(), vals.tolist()))
        assert v.tolist() == [d.get(p, 0.0) for p in probes.tolist()]
        assert f.tolist() == [p in d for p in probes.tolist()]


def test_features_of_a_pool(tmp_path):
    """Each group of columns from a hand-made request: sources (absent, reordered), seeds,
    recent engagement, purchases, the product not in the catalog, an empty pool."""
    from server.ranking.features import DAY, features
    from server.recommenders.base import Recent
    from server.signals import VIEW
    from tests.engine.fixtures import T0, ShopData, buy, product, view

    shop = ShopData(tmp_path).products([product("a", category="c0", price=10.0), product("b", category="c1", price=30.0),
                                        product("c", category="c1", price=20.0), product("d", category="c0")])
    shop.events([view("a", ts=T0), view("z", ts=T0 + 1), buy("o1", ["a", "c"], ts=T0 + 2), buy("o2", ["a"], ts=T0 + 3)])
    model = shop.model()
    shop.close()
    ds = model.ds
    a, b, c, d, z = (ds.item(p) for p in "abcdz")
    space = FeatureSpace(["s2", "s9", "s1"], ["cart", "main"])
    cands = CandidateSet(np.array([a, b, c, d, z], np.int32), np.array([1.0, 4.0, 2.0, 0.0, 4.0], np.float32),
                         np.array([[1, 0], [0, .5], [.5, .5], [0, 0], [1, 0]], np.float32), ["s1", "s2"])
    ctx = Context(tenant="t", placement="main", item=a, category="c1", person=ds.person(None, "v1"),
                  recent=[Recent("b", b, VIEW, T0, 1.5, True), Recent("b", b, VIEW, T0, 0.5, True),
                          Recent("new", -1, VIEW, T0, 9.0, True)],
                  bought={"a": T0, "c": T0 - 2 * DAY, "gone": T0}, profile={"segment": "VIP"},
                  clock_ms=T0, now_ms=T0, hour=6, weekday=6)
    X = features(space, model, ctx, cands)
    col = {name: X[:, k].tolist() for k, name in enumerate(space.names)}
    assert X.dtype == np.float32 and X.shape == (5, space.width)
    assert col["s1:score"] == [1, 0, .5, 0, 1] and col["s9:score"] == col["s9:rrank"] == [0] * 5
    assert col["s1:rrank"] == pytest.approx([1, 0, 1 / 3, 0, 1 / 2]) and col["s2:rrank"] == [0, 1, 1 / 2, 0, 0]
    assert col["blend:score"] == [.25, 1, .5, 0, 1] and col["blend:rrank"] == pytest.approx([1 / 4, 1, 1 / 3, 1 / 5, 1 / 2])
    assert col["n_sources"] == [1, 1, 2, 0, 1] and col["price_missing"] == [0, 0, 0, 0, 1]
    seeds = [ds.price[i] for i, _ in ctx.seed_items() if not np.isnan(ds.price[i])]
    assert col["price_rel_session"][:4] == pytest.approx(list(np.log((ds.price[[a, b, c, d]] + 1) / (np.median(seeds) + 1))))
    assert col["price_rel_session"][4] == 0
    assert col["same_category_product"] == [1, 0, 0, 1, 0] and col["requested_category"] == [0, 1, 1, 0, 0]
    assert col["seed_category_share"] == pytest.approx([.5, .5, .5, .5, 0])   # seeds a (c0) and b (c1)
    assert col["own_recent_weight"] == [0, 2, 0, 0, 0] and col["related_engaged_max"] == [0, 1.5, 1.5, 0, 0]
    assert col["bought_before"] == [1, 0, 1, 0, 0]
    assert col["days_since_bought_log"] == pytest.approx([0, 0, np.log1p(2), 0, 0])
    assert col["orders_of_item_log"] == pytest.approx([np.log1p(2), 0, np.log1p(1), 0, 0])
    assert col["weekend"] == [1] * 5 and col["segment:vip"] == [1] * 5 and col["placement:main"] == [1] * 5
    assert col["placement:cart"] == [0] * 5 and col["person_known"] == [1] * 5
    empty = CandidateSet(np.zeros(0, np.int32), np.zeros(0, np.float32), np.zeros((0, 2), np.float32), ["s1", "s2"])
    assert features(space, model, ctx, empty).shape == (0, space.width)
