"""top_conversion, top_rec_ctr, top_rec_inflow, time_of_day with hand-computed values."""
import datetime as dt

import numpy as np
import pytest

from server.recommenders.base import Context
from tests.recommenders.helpers import (HOUR, MIN, T0, ShopData, buy, click, fit, ids, impression, product, recs,
                                        view)

PRODUCTS = [product(p) for p in ("a", "b", "c", "d")]


def views(pid, n, start=0, prefix="s"):
    return [view(pid, f"{prefix}{pid}{i}", f"{prefix}{pid}{i}", T0 + (start + i) * MIN) for i in range(n)]


def test_top_conversion_smoothed_values(tmp_path):
    d = ShopData(tmp_path).products(PRODUCTS)
    ev = views("a", 100) + views("b", 2) + views("c", 50)
    ev += [buy(f"oa{i}", ["a"], f"sa{i}", f"sa{i}", T0 + 200 * MIN) for i in range(20)]     # 20 %
    ev += [buy("ob0", ["b"], "sb0", "sb0", T0 + 200 * MIN)]                                 # 1 of 2
    d.events(ev)
    rec, model, ds = fit(d, "top_conversion")
    p0 = 21 / 152
    rate, _ = model
    assert rate[ds.item("a")] == pytest.approx((20 + 30 * p0) / (100 + 30), rel=1e-5)
    assert rate[ds.item("b")] == pytest.approx((1 + 30 * p0) / (2 + 30), rel=1e-5)
    assert rate[ds.item("d")] == 0                          # never viewed: not ranked
    out = recs(rec, model, ds, Context(), k=5)
    assert ids(out) == ["a", "b", "c"]                      # 1/2 with 2 views does not beat 20/100
    assert out[0][2] == "20% of viewers buy it" and out[1][2] == "50% of viewers buy it"
    d.close()


def test_top_rec_ctr_smoothed(tmp_path):
    d = ShopData(tmp_path).products(PRODUCTS)
    ev = [impression("a", f"v{i}", f"s{i}", T0 + i, rec_id=f"r{i}") for i in range(200)]
    ev += [click("a", f"v{i}", f"s{i}", T0 + 1000 + i, rec_id=f"r{i}") for i in range(20)]       # 10 %
    ev += [impression("b", "x", "x", T0, rec_id="rb"), click("b", "x", "x", T0 + 5, rec_id="rb")]  # 1 of 1
    ev += [impression("c", f"w{i}", f"w{i}", T0 + i, rec_id=f"rc{i}") for i in range(50)]        # 0 of 50
    d.events(ev)
    rec, model, ds = fit(d, "top_rec_ctr")
    rate, _ = model
    p0 = 21 / 251
    assert rate[ds.item("a")] == pytest.approx((20 + 100 * p0) / 300, rel=1e-5)
    assert rate[ds.item("b")] == pytest.approx((1 + 100 * p0) / 101, rel=1e-5)
    out = recs(rec, model, ds, Context(), k=5)
    assert ids(out) == ["a", "b", "c"]
    assert out[0][2] == "clicked in 10% of recommendations"
    d.close()


def test_top_rec_inflow(tmp_path):
    d = ShopData(tmp_path).products(PRODUCTS)
    ev = []
    for i in range(10):             # a: 8 of 10 visits start with a rec click on it
        s = f"sa{i}"
        if i < 8:
            ev.append(click("a", s, s, T0 + i * MIN, rec_id=f"ra{i}"))
        ev.append(view("a", s, s, T0 + i * MIN + 1000))
    for i in range(10):             # b: 10 visits, clicks only AFTER the views, or on another product
        s = f"sb{i}"
        ev.append(view("b", s, s, T0 + i * MIN))
        ev.append(click("b" if i < 5 else "a", s, s, T0 + i * MIN + 5000, rec_id=f"rb{i}"))
    d.events(ev)
    rec, model, ds = fit(d, "top_rec_inflow")
    share, raw = model
    assert raw[ds.item("a")] == pytest.approx(0.8) and raw[ds.item("b")] == 0
    p0 = 8 / 20
    assert share[ds.item("a")] == pytest.approx((8 + 20 * p0) / 30, rel=1e-5)
    out = recs(rec, model, ds, Context(), k=5)
    assert out[0][0] == "a" and out[0][2] == "80% of its visits come from recommendations"
    d.close()


@pytest.mark.parametrize("name", ["top_conversion", "top_rec_ctr", "top_rec_inflow", "time_of_day"])
def test_stats_cold_start(tmp_path, name):
    d = ShopData(tmp_path)
    rec, model, ds = fit(d, name)
    assert len(rec.recommend(model, ds, Context(hour=3, weekday=1), 5)) == 0
    d.products(PRODUCTS)
    d.events([buy("o1", ["a"])])            # purchases only: no views, no impressions
    rec, model, ds = fit(d, name)
    c = rec.recommend(model, ds, Context(hour=3, weekday=1), 5)
    if name != "time_of_day":
        assert len(c) == 0
    d.close()


def at(hour, day=0):
    """ms of 2024-01-01 (a Monday) + day at hour:00 UTC."""
    return int(dt.datetime(2024, 1, 1 + day, hour, tzinfo=dt.timezone.utc).timestamp() * 1000)


def test_time_of_day_buckets(tmp_path):
    d = ShopData(tmp_path).products(PRODUCTS)
    ev = []
    for day in range(5):                    # weekdays: coffee "a" in the morning, "b" in the evening
        for i in range(6):
            ev.append(view("a", f"m{day}{i}", f"m{day}{i}", at(8, day) + i * MIN))
            ev.append(view("b", f"e{day}{i}", f"e{day}{i}", at(21, day) + i * MIN))
    for day in (5, 6):                      # weekend mornings: "c"
        for i in range(6):
            ev.append(view("c", f"w{day}{i}", f"w{day}{i}", at(9, day) + i * MIN))
    d.events(ev)
    rec, model, ds = fit(d, "time_of_day")
    out = recs(rec, model, ds, Context(hour=8, weekday=2), k=1)
    assert ids(out) == ["a"] and out[0][2] == "popular around 8 am"
    assert ids(recs(rec, model, ds, Context(hour=22, weekday=0), k=1)) == ["b"]      # neighbouring hour
    out = recs(rec, model, ds, Context(hour=9, weekday=6), k=1)
    assert ids(out) == ["c"] and out[0][2] == "popular on weekend mornings"
    # an hour with no data falls back to the all-day popularity, never empty
    assert len(recs(rec, model, ds, Context(hour=3, weekday=2), k=3)) == 3
    d.close()
