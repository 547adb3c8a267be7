"""user_cf and matrix_factorization on a shop with two taste groups."""
import numpy as np
import pytest

from server.recommenders.base import Context
from tests.recommenders.helpers import MIN, T0, ShopData, buy, fit, ids, product, recs, session_ctx

# kitchen people buy k1..k4, garden people g1..g4; each person misses one of their group's items
KITCHEN = ["k1", "k2", "k3", "k4"]
GARDEN = ["g1", "g2", "g3", "g4"]


def shop(tmp_path):
    d = ShopData(tmp_path).products([product(p, f"Item {p}") for p in KITCHEN + GARDEN])
    events = []
    n = 0
    for group, prefix in ((KITCHEN, "kv"), (GARDEN, "gv")):
        for v in range(6):
            owned = [p for j, p in enumerate(group) if j != v % 4]
            for p in owned:
                n += 1
                events.append(buy(f"o{n}", [p], visitor=f"{prefix}{v}", session=f"{prefix}{v}s", ts=T0 + n * MIN,
                                  user=f"{prefix}{v}"))
    return d.events(events)


def test_user_cf_known_person_gets_their_groups_missing_item(tmp_path):
    d = shop(tmp_path)
    rec, model, ds = fit(d, "user_cf")
    p = ds.person("kv0", "kv0")       # kv0 has k2, k3, k4: misses k1
    out = recs(rec, model, ds, Context(person=p), k=3)
    assert out and out[0][0] == "k1"
    assert set(ids(out)) <= set(KITCHEN) - {"k2", "k3", "k4"} | set(GARDEN)
    assert not set(ids(out)) & {"k2", "k3", "k4"}        # never what they already have
    assert all(r[1] > 0 and r[2] for r in out)
    d.close()


def test_user_cf_new_visitor_session(tmp_path):
    d = shop(tmp_path)
    rec, model, ds = fit(d, "user_cf")
    out = recs(rec, model, ds, session_ctx(ds, ["g1", "g2"]), k=2)
    assert set(ids(out)) == {"g3", "g4"}
    d.close()


def test_mf_known_person_prefers_their_group_including_repeats(tmp_path):
    """MF does not drop what the person has (repeat purchases are common; rules decide)."""
    d = shop(tmp_path)
    rec, model, ds = fit(d, "matrix_factorization")
    p = ds.person("kv0", "kv0")       # kv0 has k2, k3, k4: misses k1
    out = recs(rec, model, ds, Context(person=p), k=8)
    assert set(ids(out)[:4]) == set(KITCHEN)
    assert all(r[1] > 0 and r[2].startswith("picked for you") for r in out[:4])
    # the current product is never returned
    out = recs(rec, model, ds, Context(person=p, product="k1", item=ds.item("k1")), k=8)
    assert "k1" not in ids(out)
    d.close()


def test_mf_new_visitor_session_is_folded_in(tmp_path):
    d = shop(tmp_path)
    rec, model, ds = fit(d, "matrix_factorization")
    out = recs(rec, model, ds, session_ctx(ds, ["g1", "g2"]), k=4)
    assert set(ids(out)) == set(GARDEN)
    d.close()


def test_reasons(tmp_path):
    d = shop(tmp_path)
    rec, model, ds = fit(d, "user_cf")
    out = recs(rec, model, ds, session_ctx(ds, ["g1", "g2", "g3"]), k=1)
    assert out[0][0] == "g4" and "shoppers with similar taste" in out[0][2]
    rec, model, ds = fit(d, "matrix_factorization")
    out = dict((r[0], r[2]) for r in recs(rec, model, ds, session_ctx(ds, ["g1", "g2"]), k=4))
    assert out["g3"] in ("picked for you (because of Item g1)", "picked for you (because of Item g2)")
    assert out["g1"] == "picked for you (because of Item g2)"      # never "because of" itself
    d.close()


def test_live_session_changes_a_known_persons_mf_vector(tmp_path):
    d = shop(tmp_path)
    rec, model, ds = fit(d, "matrix_factorization")
    p = ds.person("kv0", "kv0")
    before = recs(rec, model, ds, Context(person=p), k=8)
    ctx = session_ctx(ds, ["g1", "g2", "g3"], visitor="kv0")
    ctx.person = p
    after = recs(rec, model, ds, ctx, k=8)
    score = lambda rows, pid: dict((r[0], r[1]) for r in rows).get(pid, 0.0)
    assert score(after, "g4") > score(before, "g4") + 0.3     # the live garden views pull g4 up
    d.close()


@pytest.mark.parametrize("name", ["user_cf", "matrix_factorization"])
def test_cold_start(tmp_path, name):
    d = ShopData(tmp_path)
    rec, model, ds = fit(d, name)
    assert len(rec.recommend(model, ds, Context(), 5)) == 0
    d.products([product("a")])
    rec, model, ds = fit(d, name)
    assert len(rec.recommend(model, ds, session_ctx(ds, ["a"]), 5)) == 0
    d.close()


def test_mf_is_deterministic(tmp_path):
    d = shop(tmp_path)
    _, m1, _ = fit(d, "matrix_factorization")
    _, m2, _ = fit(d, "matrix_factorization")
    assert np.array_equal(m1[0].item_factors, m2[0].item_factors)
    d.close()


@pytest.mark.parametrize("name", ["user_cf", "matrix_factorization"])
def test_cart_alone_is_enough(tmp_path, name):
    """Checkout of a visitor the model does not know: the cart items seed the visitor."""
    d = shop(tmp_path)
    rec, model, ds = fit(d, name)
    ctx = Context(cart=["g1", "g2"], cart_items=np.array([ds.item("g1"), ds.item("g2")], np.int32))
    assert rec.applicable(ctx)
    out = recs(rec, model, ds, ctx, k=4)
    assert {"g3", "g4"} <= set(ids(out))
    d.close()


def test_user_cf_never_returns_what_the_visitor_has_beyond_the_query_items(tmp_path, monkeypatch):
    """A visitor matched from their strongest items only still never gets any item they have
    (all of them, not only those of the query)."""
    import server.recommenders.user_cf as user_cf
    d = shop(tmp_path)
    rec, model, ds = fit(d, "user_cf")
    monkeypatch.setattr(user_cf, "MAX_QUERY_ITEMS", 1)
    out = recs(rec, model, ds, session_ctx(ds, ["g1", "g2", "g3"]), k=8)
    assert out and not set(ids(out)) & {"g1", "g2", "g3"}
    d.close()
