"""The replay uses the product's import; a whole evaluation run on a tiny log; click queries
with inverse-propensity weights."""
import json

import numpy as np

from server.evaluation.formats import load
from server.evaluation.replay import events_of
from server.evaluation.run import evaluate


def _events_file(tmp_path):
    """Three customers over ten days: views with engaged time, carts, orders of the same pairs."""
    lines = ["session,visitor,type,product,time,order,engaged_ms,price"]
    t = 1_700_000_000
    pairs = [("a", "b"), ("c", "d"), ("a", "b"), ("e", "f"), ("c", "d"), ("a", "b")]
    n = 0
    for day in range(10):
        for v in range(3):
            x, y = pairs[(day + v) % len(pairs)]
            s = f"s{day}_{v}"
            ts = t + day * 86400 + v * 600
            lines += [f"{s},v{v},view,{x},{ts},,{5000 + 1000 * v},10",
                      f"{s},v{v},view,{y},{ts + 30},,2000,12",
                      f"{s},v{v},view,{x}2,{ts + 60},,,",
                      f"{s},v{v},cart,{y},{ts + 90},,,12",
                      f"{s},v{v},purchase,{x},{ts + 120},o{n},,10",
                      f"{s},v{v},purchase,{y},{ts + 120},o{n},,12"]
            n += 1
    p = tmp_path / "events.csv"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_events_of_groups_orders_and_adds_engagement(tmp_path):
    log = load("events", _events_file(tmp_path))
    evs = list(events_of(log.rows[:6]))
    types = [e["type"] for e in evs]
    assert types == ["page_view", "engagement", "page_view", "engagement", "page_view", "add_to_cart", "purchase"]
    assert evs[1]["engaged_ms"] == 5000
    buy = evs[-1]
    assert buy["order"] == "o0" and [l["product"] for l in buy["lines"]] == ["a", "b"]
    assert len({e["id"] for e in evs}) == len(evs)


def test_evaluate_end_to_end(tmp_path):
    out = tmp_path / "out"
    res = evaluate(_events_file(tmp_path), "events", out, max_cases=200, test_fraction=0.3, quiet=True, label="tiny")
    assert res["import"]["events"]["rejected"] == 0
    assert res["split"]["train_rows"] > 0 and res["split"]["test_rows"] > 0
    for task in ("next_item", "next_basket", "bought_together"):
        r = res["tasks"][task]
        assert "skipped" not in r, task
        assert "baseline:popularity" in r and "placement:cart" in r and "rec:bought_together" in r
        for name, m in r.items():
            if not name.startswith("_"):
                assert 0.0 <= m["hit"] <= 1.0 and 0.0 <= m["ndcg"] <= 1.0 and m["cases"] > 0
    # bought together on this log is easy: a and b always go together
    assert res["tasks"]["bought_together"]["rec:bought_together"]["recall"] > 0.9
    saved = json.loads((out / "tiny.json").read_text())
    assert saved["tasks"].keys() == res["tasks"].keys()
    md = (out / "tiny.md").read_text()
    assert "## Bought together" in md and "| baseline:popularity |" in md
    from server.evaluation.summary import condensed, questions
    table = condensed(saved, "bought_together")
    assert "| baseline:popularity |" in table and "| placement:cart |" in table
    assert "best placement" in questions(saved, "bought_together")


def test_click_queries_weight_clicks_by_position(tmp_path):
    from server.ranking.train import _History, click_queries, ipw_weight
    from tests.engine.fixtures import MIN, T0, ShopData, buy, e, product, view
    shop = ShopData(tmp_path).products([product(p) for p in "abcdef"])
    shop.events([view("a", ts=T0), view("b", ts=T0 + MIN)])
    shown = ["c", "d", "e", "f"]

    def served(conn):
        conn.execute("INSERT INTO rec_served (rec_id, ts, visitor, session, page, slot, placement, strategy, variant,"
                     " products) VALUES ('r1', ?, 'v1', 's1', 'detail', 's', 'detail_similar', 'x', 'A', ?)",
                     (T0 + 2 * MIN, json.dumps(shown)))
    shop.shard.write_sync(served)
    evs = [e("rec_impression", ts=T0 + 2 * MIN + k, rec_id="r1", product=p, position=k) for k, p in enumerate(shown)]
    evs += [e("rec_click", ts=T0 + 3 * MIN, rec_id="r1", product="e", position=2)]
    evs += [buy("o9", ["f", "a"], ts=T0 + 5 * MIN)]           # a shown product bought after it was shown
    shop.events(evs)
    model = shop.model(only=["viewed_together"])
    conn = shop.shard.connect_read()
    try:
        qs = click_queries(conn, model.ds, 0, _History(model.ds), 10)
    finally:
        conn.close()
        shop.close()
    ds = model.ds
    assert len(qs) == 1
    q = qs[0]
    assert q.placement == "detail_similar"
    assert q.truth == {ds.item("e"): ipw_weight(2), ds.item("f"): 2.0 * ipw_weight(3)} and ipw_weight(2) == 3.0
    assert sorted(q.restrict.tolist()) == sorted(ds.item(p) for p in shown)
    assert q.ctx.item == ds.item("b")                   # the product the visitor was on
    assert np.all([r.ts < T0 + 2 * MIN + 1 for r in q.ctx.recent])
