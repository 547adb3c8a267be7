"""Each of the engine's recommenders on small hand-built shards with known answers."""
import numpy as np
import pytest

from server.recommenders import registry
from server.recommenders.base import Candidates, Context, Recent
from server.signals import CART, PURCHASE, VIEW
from tests.engine.fixtures import MIN, T0, ShopData, buy, cart, e, engage, product, view

DAY = 86_400_000


def ids(model, c: Candidates):
    return [model.ds.item_ids[i] for i in c.items]


def run(model, name, ctx=None, k=10):
    ctx = ctx or Context()
    rec = model.recommenders[name]
    return rec.recommend(model.fitted[name], model.ds, ctx, k)


def ctx_for(model, product=None, recent=(), bought=None, visitor="vx", user=None, **kw):
    ds = model.ds
    rec = [Recent(p, ds.item(p), kind, ts, w, True) for p, kind, ts, w in recent]
    return Context(visitor=visitor, session="sx", product=product, item=ds.item(product), recent=rec,
                   bought=bought or {}, person=ds.person(user, visitor), clock_ms=ds.clock_ms, **kw)


@pytest.fixture
def shop(tmp_path):  # noqa: F811
    d = ShopData(tmp_path)
    d.products([product("mug", "Blue mug", "Home > Mugs", 12), product("mug2", "Red mug", "Home > Mugs", 14),
                product("tea", "Green tea", "Food > Tea", 5), product("spoon", "Spoon", "Home > Cutlery", 3),
                product("cake", "Cake", "Food > Sweets", 8),
                product("lamp", "Lamp", "Home > Light", 40, created_at=T0 + DAY)])
    yield d
    d.close()


def test_registry_lists_the_engine_recommenders():
    names = set(registry.names())
    assert {"realtime_personal", "viewed_together", "bought_together", "item_cf", "popular_now", "best_sellers",
            "recently_viewed", "buy_again", "category_top", "new_arrivals", "trending"} <= names
    assert registry.get("nope") is None


def test_viewed_together_co_views_not_bounces(shop):
    evs = []
    for s in range(5):  # mug and mug2 viewed together, engaged
        evs += [view("mug", f"v{s}", f"s{s}", T0 + s), engage("mug", 20_000, f"v{s}", f"s{s}", T0 + s),
                view("mug2", f"v{s}", f"s{s}", T0 + s + 1), engage("mug2", 20_000, f"v{s}", f"s{s}", T0 + s + 1)]
    for s in range(5, 12):  # mug and lamp "viewed" together, but lamp is a 1-second bounce
        evs += [view("mug", f"v{s}", f"s{s}", T0 + s), engage("mug", 20_000, f"v{s}", f"s{s}", T0 + s),
                view("lamp", f"v{s}", f"s{s}", T0 + s + 1), engage("lamp", 1_000, f"v{s}", f"s{s}", T0 + s + 1)]
    m = shop.events(evs).model()
    c = run(m, "viewed_together", ctx_for(m, "mug"))
    assert ids(m, c) == ["mug2"]
    assert c.reason(0) == "viewed together with Blue mug"


def test_bought_together_uses_lift(shop):
    evs = []
    for n in range(10):  # tea is in every basket (popular), spoon only with mug
        evs.append(buy(f"a{n}", ["mug", "spoon", "tea"] if n < 4 else ["tea", "cake"] if n < 8 else ["tea", "lamp"],
                       f"v{n}", f"s{n}", T0 + n))
    m = shop.events(evs).model()
    c = run(m, "bought_together", ctx_for(m, "mug"))
    assert ids(m, c)[0] == "spoon"  # same co-count as tea, but tea is in every basket: lower lift
    assert "often bought with Blue mug" == c.reason(0)
    assert "mug" not in ids(m, c)


def test_item_cf_from_person_history(shop):
    evs = [buy(f"o{n}", ["mug", "mug2"], f"v{n}", f"s{n}", T0 + n) for n in range(4)]
    evs += [buy(f"p{n}", ["tea", "cake"], f"w{n}", f"t{n}", T0 + n) for n in range(4)]
    evs.append(buy("me", ["tea"], "me", "sme", T0 + 10))
    m = shop.events(evs).model()
    c = run(m, "item_cf", ctx_for(m, visitor="me"))
    assert ids(m, c)[0] == "cake" and c.reason(0) == "similar to Green tea"


def test_realtime_personal_follows_the_session(shop):
    evs = []
    for s in range(6):
        evs += [view("tea", f"v{s}", f"s{s}", T0 + s), view("cake", f"v{s}", f"s{s}", T0 + s + 1)]
        evs += [view("mug", f"w{s}", f"t{s}", T0 + s), view("spoon", f"w{s}", f"t{s}", T0 + s + 1)]
    m = shop.events(evs).model()
    assert len(run(m, "realtime_personal", ctx_for(m))) == 0  # no session: nothing to say
    assert not m.recommenders["realtime_personal"].applicable(ctx_for(m))
    c = run(m, "realtime_personal", ctx_for(m, recent=[("tea", VIEW, T0, 1.0)]))
    assert ids(m, c)[0] == "cake" and c.reason(0) == "because you viewed Green tea"
    # the newest view weighs most
    c = run(m, "realtime_personal", ctx_for(m, recent=[("mug", VIEW, T0 + 5, 1.0), ("tea", VIEW, T0, 1.0)]))
    assert ids(m, c)[0] == "spoon"


def test_popular_now_vs_best_sellers_vs_trending(shop):
    clock = T0 + 60 * DAY
    evs = [buy(f"old{n}", ["lamp"], f"a{n}", f"a{n}", clock - 20 * DAY + n) for n in range(10)]  # sold a lot, earlier
    evs += [view("cake", f"b{n}", f"b{n}", clock - n * MIN) for n in range(8)]  # viewed a lot just now
    evs += [buy("new1", ["tea"], "c", "c", clock)]
    evs += [view("spoon", f"d{n}", f"d{n}", clock - 20 * DAY + n) for n in range(30)]  # steady old interest
    evs += [view("spoon", f"e{n}", f"e{n}", clock - n * MIN) for n in range(3)]
    m = shop.events(evs).model()
    assert ids(m, run(m, "popular_now"))[0] == "cake"
    assert ids(m, run(m, "best_sellers"))[0] == "lamp"
    tr = ids(m, run(m, "trending"))
    assert tr[0] == "cake" and "lamp" not in tr


def test_recently_viewed_and_buy_again(shop):
    evs = [buy(f"o{n}", ["tea"], "v1", f"s{n}", T0 + n * DAY) for n in range(3)]  # tea is re-bought
    evs += [buy(f"q{n}", ["lamp"], f"x{n}", f"x{n}", T0 + n) for n in range(3)]  # lamps are bought once
    m = shop.events(evs).model()
    ctx = ctx_for(m, visitor="v1", recent=[("spoon", VIEW, T0 + 9, 1.0), ("mug", VIEW, T0 + 8, 1.0),
                                           ("cake", VIEW, T0 + 7, 0.1)],  # a bounce is not "viewed"
                  bought={"tea": T0 + 2 * DAY, "lamp": T0})
    assert ids(m, run(m, "recently_viewed", ctx)) == ["spoon", "mug"]
    assert ids(m, run(m, "buy_again", ctx)) == ["tea", "lamp"]


def test_category_top_and_new_arrivals(shop):
    evs = [view("mug2", f"v{n}", f"s{n}", T0 + n) for n in range(3)] + [view("mug", "v9", "s9", T0)]
    m = shop.events(evs).model()
    assert ids(m, run(m, "category_top", ctx_for(m, category="Home > Mugs"))) == ["mug2", "mug"]
    c = run(m, "category_top", ctx_for(m, category="Home"))
    assert set(ids(m, c)) == {"mug", "mug2", "spoon", "lamp"} and c.reason(0) == "top in Home"
    assert ids(m, run(m, "category_top", ctx_for(m, "tea"))) == ["tea"]  # the current product's category
    assert len(run(m, "category_top", ctx_for(m))) == 0
    na = ids(m, run(m, "new_arrivals"))
    assert na[0] == "lamp"  # listed last


def test_korean_text_end_to_end(tmp_path):
    d = ShopData(tmp_path).products([product("k1", "무선 블루투스 이어폰", "전자 > 음향"),
                                     product("k2", "블루투스 스피커", "전자 > 음향"),
                                     product("k3", "녹차 티백", "식품 > 차")])
    evs = []
    for s in range(4):
        evs += [view("k1", f"v{s}", f"s{s}", T0 + s), view("k2", f"v{s}", f"s{s}", T0 + s + 1)]
    m = d.events(evs).model()
    c = run(m, "viewed_together", ctx_for(m, "k1"))
    assert ids(m, c) == ["k2"] and c.reason(0) == "viewed together with 무선 블루투스 이어폰"
    c = run(m, "category_top", ctx_for(m, category="전자"))
    assert set(ids(m, c)) == {"k1", "k2"} and c.reason(0) == "top in 전자"
    d.close()


def test_every_recommender_survives_an_empty_and_a_tiny_shop(tmp_path):
    d = ShopData(tmp_path)
    for shop_state in ("empty", "catalog"):
        if shop_state == "catalog":
            d.products([product("a", "A"), product("b", "B")])
        m = d.model()
        assert not m.errors, m.errors
        ctx = ctx_for(m, "a" if shop_state == "catalog" else None)
        for name, rec in m.recommenders.items():
            c = rec.recommend(m.fitted[name], m.ds, ctx, 5) if rec.applicable(ctx) else Candidates.empty()
            assert isinstance(c, Candidates) and len(c.items) == len(c.scores)
    d.close()
