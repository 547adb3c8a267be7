"""/v1/recommend and the strategy API, in process."""
import time

from tests.engine.fixtures import product
from tests.helpers import ORIGIN, ev


def _catalog(client, shop, rows):
    r = client.post("/v1/catalog/products", json=rows, headers=shop.auth)
    assert r.status_code == 200, r.text


def _events(client, shop, evs):
    r = client.post("/v1/events", json={"site_key": shop.site_key, "events": evs})
    assert r.status_code == 200 and r.json()["accepted"] == len(evs), r.text


def _rebuild(client, shop):
    r = client.post("/v1/engine/rebuild?wait=1", headers=shop.auth)
    assert r.status_code == 200, r.text


def _rec(client, shop, slots, **body):
    payload = {"site_key": shop.site_key, "visitor": "v9", "session": "s9", "page": {"type": "main"}, "slots": slots}
    payload.update(body)
    r = client.post("/v1/recommend", content=__import__("json").dumps(payload), headers={"content-type": "text/plain"})
    assert r.status_code == 200, r.text
    return r


def _shop_with_sessions(client, shop):
    _catalog(client, shop, [product(f"p{i}", f"Product {i}", "Home > Mugs" if i < 5 else "Food", price=5 + i)
                            for i in range(10)])
    now = int(time.time() * 1000) - 60_000
    evs = []
    # many sessions view p1 then p2 (substitutes); baskets hold p1 + p7 (complements)
    for s in range(12):
        evs += [ev("page_view", page="detail", product="p1", visitor=f"u{s}", session=f"x{s}", ts=now + s),
                ev("page_view", page="detail", product="p2", visitor=f"u{s}", session=f"x{s}", ts=now + s + 1),
                ev("purchase", order=f"o{s}", lines=[{"product": "p1"}, {"product": "p7"}], visitor=f"u{s}",
                   session=f"x{s}", ts=now + s + 2)]
    evs += [ev("page_view", page="detail", product="p4", visitor="w", session="w", ts=now + 50 + s) for s in range(3)]
    _events(client, shop, evs)
    _rebuild(client, shop)


def test_contract_shape_and_cors(client, shop):
    _shop_with_sessions(client, shop)
    r = _rec(client, shop, [{"id": "cmp", "placement": "detail_complements", "count": 4},
                            {"id": "sim", "placement": "detail_similar", "count": 4}],
             page={"type": "detail", "product": "p1", "category": "Home > Mugs"}, locale="ko")
    assert r.headers["access-control-allow-origin"] == ORIGIN
    body = r.json()
    assert body["ok"] is True and body["currency"] and body["locale"] == "ko"
    sim, cmp_ = body["slots"]["sim"], body["slots"]["cmp"]
    for s in (sim, cmp_):
        assert s["rec_id"].startswith("r_") and s["variant"] == "A" and s["strategy"]
        for it in s["items"]:
            assert set(it) == {"id", "title", "url", "image", "price", "currency", "reason"}
            assert it["id"] != "p1"
    assert cmp_["items"][0]["id"] == "p7" and "bought" in cmp_["items"][0]["reason"]
    ids = [i["id"] for i in sim["items"]] + [i["id"] for i in cmp_["items"]]
    assert len(ids) == len(set(ids)) == 8  # no duplicates across slots, never short
    alone = _rec(client, shop, [{"id": "sim", "placement": "detail_similar", "count": 4}],
                 page={"type": "detail", "product": "p1"}).json()["slots"]["sim"]["items"]
    assert alone[0]["id"] == "p2" and alone[0]["reason"] == "viewed together with Product 1"


def test_realtime_next_request(client, shop):
    _shop_with_sessions(client, shop)
    r = _rec(client, shop, [{"id": "m", "placement": "main", "count": 3}])
    assert r.json()["slots"]["m"]["strategy"] == "personal"
    # the visitor views p1 now: the very next request follows it, no rebuild in between
    _events(client, shop, [ev("page_view", page="detail", product="p1", visitor="v9", session="s9")])
    items = _rec(client, shop, [{"id": "m", "placement": "main", "count": 3}]).json()["slots"]["m"]["items"]
    assert items[0]["id"] == "p2" and "because you viewed" in items[0]["reason"]


def test_erased_visitor_leaves_the_live_state(client, shop, app):
    """A privacy erasure makes every worker's live state forget what it holds: the erased
    visitor's view stops shaping their next request at once (not at the next eviction)."""
    _shop_with_sessions(client, shop)
    _events(client, shop, [ev("page_view", page="detail", product="p1", visitor="v9", session="s9")])
    other = dict(visitor="v8", session="s8")
    _events(client, shop, [ev("page_view", page="detail", product="p1", **other)])
    slots = [{"id": "m", "placement": "main", "count": 3}]
    before = _rec(client, shop, slots).json()["slots"]["m"]["items"]
    assert "because you viewed" in before[0]["reason"]
    assert "because you viewed" in _rec(client, shop, slots, **other).json()["slots"]["m"]["items"][0]["reason"]
    r = client.delete("/v1/privacy/visitors/v9", headers=shop.auth)
    assert r.status_code == 200 and r.json()["erased"]["events"] == 1
    after = _rec(client, shop, slots).json()["slots"]["m"]["items"]
    assert not any("because you viewed" in i["reason"] for i in after)
    # the other visitors are read again from the shard: theirs still count
    assert "because you viewed" in _rec(client, shop, slots, **other).json()["slots"]["m"]["items"][0]["reason"]


def test_served_is_stored(client, shop, app):
    _shop_with_sessions(client, shop)
    rid = _rec(client, shop, [{"id": "m", "placement": "main", "count": 3}]).json()["slots"]["m"]["rec_id"]
    shard = app.state.shards.get(app.state.registry.get("shop"))
    for _ in range(50):
        conn = shard.connect_read()
        row = conn.execute("SELECT placement, strategy, products FROM rec_served WHERE rec_id=?", (rid,)).fetchone()
        conn.close()
        if row:
            break
        time.sleep(0.02)
    assert row[0] == "main" and row[2].startswith("[")


def test_cold_start_catalog_only(client, shop):
    _catalog(client, shop, [product("a", "새 머그컵", "주방 > 컵"), product("b", "Tea"), product("c", "Cup", in_stock=False)])
    r = _rec(client, shop, [{"id": "m", "placement": "main", "count": 5}])
    items = r.json()["slots"]["m"]["items"]
    assert {i["id"] for i in items} == {"a", "b"}  # never empty, never out of stock
    assert any(i["title"] == "새 머그컵" for i in items)


def test_empty_catalog_gives_empty_slot(client, shop):
    r = _rec(client, shop, [{"id": "m", "placement": "main", "count": 5}])
    assert r.json()["slots"]["m"]["items"] == []


def test_errors(client, shop):
    r = client.post("/v1/recommend", json={"site_key": "pk_nope", "slots": [{"id": "a"}]})
    assert r.status_code == 401 and r.json()["ok"] is False
    r = client.post("/v1/recommend", json={"site_key": shop.site_key, "slots": [{"id": "a", "count": 0}]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_body"
    assert r.headers["access-control-allow-origin"] == ORIGIN
    r = client.post("/v1/recommend", json={"site_key": shop.site_key, "slots": [{"id": "a"}, {"id": "a"}]})
    assert r.status_code == 400 and "unique" in r.json()["message"]
    r = client.post("/v1/recommend", content=b"{", headers={"content-type": "text/plain"})
    assert r.status_code == 400
    r = client.post("/v1/recommend", json={"site_key": shop.site_key, "slots": [{"id": "a", "rules": {"bogus": 1}}]})
    assert r.status_code == 400 and r.json()["error"] == "invalid_rules"


def test_strategy_api_versions_and_variants(client, shop):
    _shop_with_sessions(client, shop)
    r = client.get("/v1/strategies", headers=shop.auth)
    assert r.json()["version"] == 0 and "main" in r.json()["effective"]
    bad = client.put("/v1/strategies", json={"placements": {"main": {"sources": [{"recommender": "nope"}]}}},
                     headers=shop.auth)
    assert bad.status_code == 400 and bad.json()["error"] == "invalid_strategy" and "nope" in bad.json()["message"]
    doc = {"placements": {"main": {"variants": [
        {"name": "A", "share": 0},
        {"name": "B", "share": 100, "strategy": "newest", "sources": [{"recommender": "new_arrivals", "weight": 1}],
         "fallbacks": []}]}}, "note": "test"}
    r = client.put("/v1/strategies", json=doc, headers=shop.auth)
    assert r.status_code == 200 and r.json()["version"] == 1
    s = _rec(client, shop, [{"id": "m", "placement": "main", "count": 3}]).json()["slots"]["m"]
    assert s["variant"] == "B" and s["strategy"] == "newest" and s["items"][0]["reason"] == "new arrival"
    assert client.put("/v1/strategies", json={"placements": {}}, headers=shop.auth).json()["version"] == 2
    assert client.post("/v1/strategies/rollback", json={"version": 1}, headers=shop.auth).json()["version"] == 3
    vs = client.get("/v1/strategies/versions", headers=shop.auth).json()["versions"]
    assert [v["version"] for v in vs] == [3, 2, 1]
    assert client.get("/v1/strategies", headers={"authorization": f"Bearer {shop.site_key}"}).status_code == 403


def test_repeat_request_same_items_new_rec_id(client, shop, app):
    _shop_with_sessions(client, shop)
    slots = [{"id": "a", "placement": "detail_similar", "count": 3}, {"id": "b", "placement": "main", "count": 3}]
    one = _rec(client, shop, slots, page={"type": "detail", "product": "p1"}).json()["slots"]
    two = _rec(client, shop, slots, page={"type": "detail", "product": "p1"}).json()["slots"]
    assert app.state.engine.cache.hits >= 1
    for k in ("a", "b"):
        assert one[k]["items"] == two[k]["items"] and one[k]["rec_id"] != two[k]["rec_id"]


def test_catalog_change_rebuilds_the_model(client, shop, app):
    _shop_with_sessions(client, shop)
    app.state.engine.models.catalog_delay_s = 0
    page = {"type": "detail", "product": "p1"}
    slots = [{"id": "s", "placement": "detail_similar", "count": 3}]
    assert _rec(client, shop, slots, page=page).json()["slots"]["s"]["items"][0]["id"] == "p2"
    _catalog(client, shop, [product("p2", "Product 2", "Home > Mugs", in_stock=False)])
    deadline = time.time() + 20
    while time.time() < deadline:
        ids = [i["id"] for i in _rec(client, shop, slots, page=page).json()["slots"]["s"]["items"]]
        if "p2" not in ids:
            break
        time.sleep(0.05)
    assert "p2" not in ids and len(ids) == 3


def test_recommend_is_rate_limited(tmp_path):
    from starlette.testclient import TestClient

    from server.app import create_app
    from tests.helpers import BROWSER_UA, make_settings

    app = create_app(make_settings(tmp_path, rate_limit_rps=0.5, rate_limit_burst=2))
    with TestClient(app, headers={"user-agent": BROWSER_UA, "origin": ORIGIN}) as c:
        t, _ = app.state.registry.create("rl", (ORIGIN,))
        body = {"site_key": t.site_key, "slots": [{"id": "a"}]}
        codes = [c.post("/v1/recommend", json=body).status_code for _ in range(4)]
        assert codes[:2] == [200, 200] and codes[-1] == 429
        r = c.post("/v1/recommend", json=body)
        assert r.json()["error"] == "rate_limited" and r.headers["access-control-allow-origin"] == ORIGIN


def test_first_request_never_waits_for_a_slow_build(client, shop, app, monkeypatch):
    from server.recommenders import model as model_mod
    real = model_mod.build_model

    def slow(*a, **kw):
        time.sleep(1.0)
        return real(*a, **kw)
    monkeypatch.setattr(model_mod, "build_model", slow)
    app.state.engine.first_wait_s = 0.05
    _catalog(client, shop, [product("old", "Old", created_at=1_600_000_000_000),
                            product("new", "New", created_at=1_700_000_000_000),
                            product("gone", "Gone", created_at=1_750_000_000_000, in_stock=False)])
    t0 = time.time()
    s = _rec(client, shop, [{"id": "m", "placement": "main", "count": 5}]).json()["slots"]["m"]
    assert time.time() - t0 < 0.8
    assert s["strategy"] == "cold_start" and [i["id"] for i in s["items"]] == ["new", "old"]
    deadline = time.time() + 20
    while time.time() < deadline:
        s = _rec(client, shop, [{"id": "m", "placement": "main", "count": 5}]).json()["slots"]["m"]
        if s["strategy"] != "cold_start":
            break
        time.sleep(0.1)
    assert s["strategy"] == "personal" and {i["id"] for i in s["items"]} == {"new", "old"}


def test_result_cache_follows_the_visitors_live_state(client, shop, app):
    """A repeat is answered from the cache; an event of the visitor changes the answer at once
    (it misses); visitors without any history share one cached answer."""
    _shop_with_sessions(client, shop)
    cache = app.state.engine.cache
    slot = [{"id": "m", "placement": "main", "count": 4}]
    first = _rec(client, shop, slot, visitor="live1", session="l1").json()["slots"]["m"]["items"]
    hits = cache.hits
    assert _rec(client, shop, slot, visitor="live1", session="l1").json()["slots"]["m"]["items"] == first
    assert cache.hits == hits + 1
    _events(client, shop, [ev("page_view", page="detail", product="p1", visitor="live1", session="l1")])
    after = _rec(client, shop, slot, visitor="live1", session="l1").json()["slots"]["m"]
    assert cache.hits == hits + 1  # a miss: computed again with the new event
    assert after["items"][0]["id"] == "p2" and "p1" not in [it["id"] for it in after["items"]]
    _rec(client, shop, slot, visitor="new-a", session="na")
    hits = cache.hits
    _rec(client, shop, slot, visitor="new-b", session="nb")
    assert cache.hits == hits + 1  # two new visitors, the same (empty) live state


def test_items_are_encoded_as_the_item_dicts_would_be(tmp_path):
    """A slot's items are encoded from per-product heads (``serving._encode_items``, kept per
    dataset and tenant currency): the same bytes as encoding the item dicts, for a product's own
    currency, an unknown price, characters JSON escapes and products only seen in events."""
    import msgspec

    from server import serving
    from tests.engine.fixtures import ShopData, view

    data = ShopData(tmp_path)
    data.products([product("p0", 'Mug "Ünï" \\ ☃\n', "Home", price=12.5, currency="EUR"),
                   product("p1", "Lamp", "Home", price=3.0), product("p2", "Tea", "Food", price=0.1)])
    ds = data.events([view("p1"), view("p9")]).model().ds  # p9: only seen in events (no price, url, currency)
    data.close()
    chosen = [(ds.item(p), reason, "item_cf") for p, reason in
              [("p0", "because you viewed \"Lamp\""), ("p9", "new ☃"), ("p1", ""), ("p2", "x\ty")]]

    def by_dicts(currency):
        return msgspec.json.encode([{"id": ds.item_ids[i], "title": ds.title[i], "url": ds.url[i], "image": ds.image[i],
                                     "price": None if ds.price[i] != ds.price[i] else float(ds.price[i]),
                                     "currency": ds.currency[i] or currency, "reason": reason}
                                    for i, reason, _ in chosen])
    for currency in ("GBP", "KRW", "GBP"):  # the second GBP from the kept heads
        assert serving._encode_items(ds, chosen, currency) == by_dicts(currency)
        assert serving._encode_items(ds, chosen[::-1], currency) == msgspec.json.encode(
            msgspec.json.decode(by_dicts(currency))[::-1])
    assert msgspec.json.decode(serving._encode_items(ds, chosen, "GBP"))[1]["price"] is None
    assert serving._encode_items(ds, [], "GBP") == b"[]"


def test_a_new_model_is_warmed_before_it_serves(client, shop, app):
    """The reply's product heads are made when the process builds (or loads) a model, in that
    thread, so no request pays for them; a request then reads them as they are."""
    _shop_with_sessions(client, shop)
    model = app.state.engine.models.get("shop")
    currency = app.state.registry.get("shop").currency
    heads = model.ds._derived.get("_serving_item_heads." + currency)
    assert heads is not None and len(heads) == model.ds.n_items
    _rec(client, shop, [{"id": "a", "placement": "main", "count": 3}])
    assert model.ds._derived["_serving_item_heads." + currency] is heads


def test_the_remote_store_warms_what_it_loads_and_survives_a_failing_warm(tmp_path, caplog):
    import pickle

    from server.builder import RemoteModelStore
    from tests.helpers import make_settings

    path = tmp_path / "m.pkl"
    path.write_bytes(pickle.dumps({"a model": 1}))
    store = RemoteModelStore(make_settings(tmp_path))
    seen = []
    store.on_loaded = lambda slug, model: seen.append((slug, model))
    assert store._load("shop", path) == {"a model": 1} and seen == [("shop", {"a model": 1})]

    def broken(slug, model):
        raise RuntimeError("warm failed")
    store.on_loaded = broken
    assert store._load("shop", path) == {"a model": 1}   # still loaded: a request builds what it needs
    assert "warming a model for requests failed" in caplog.text


def test_served_rows_go_to_the_writer_process_packed_and_are_stored_as_they_were(tmp_path):
    """``_store_served``: a ``RemoteWriter`` gets one MessagePack blob, and the job stores the
    same rows (strings with any characters, big ints, ``None``s) as ``insert_served`` does."""
    import functools
    import sqlite3

    from server import serving
    from server.shards import migrate
    from server.writer_client import RemoteWriter

    rows = [(f"r_{k:x}ab", 1_795_999_647_323 + k, "v\u00e9\U0001f600" if k % 2 else None, None, "u\x00\n\"",
             "detail", "s", "detail_similar", "detail_similar", "A", 2**40 + k, '["22112","84029E"]',
             '["item_cf","bought_together"]') for k in range(7)]

    class Client:
        jobs: list = []

        def submit(self, writer, job):
            self.jobs.append(job)
            return __import__("concurrent.futures").futures.Future()

    class Shard:
        writer = RemoteWriter(Client(), "t", 1)

    serving._store_served(Shard(), rows)
    (job,) = Client.jobs
    assert job.func is serving.insert_packed_served and isinstance(job.args[0], bytes)
    stored = []
    for insert in (job, functools.partial(serving.insert_served, rows)):
        conn = sqlite3.connect(tmp_path / f"s{len(stored)}.db", isolation_level=None)
        migrate(conn)
        insert(conn)
        stored.append(conn.execute("SELECT *, typeof(ts), typeof(user_id) FROM rec_served ORDER BY rec_id").fetchall())
    assert stored[0] == stored[1] and [r[:13] for r in stored[0]] == sorted(rows)


def test_the_reply_is_the_encoded_reply_dict(client, shop):
    """The reply is written from its parts (``config.Pick.reply``, the slots' items, the encoded
    ids): the bytes of encoding the reply's dict (decoded and encoded again: the same bytes), for
    slot ids, placements and a locale that JSON escapes, several slots, an empty and a full one."""
    import msgspec

    _shop_with_sessions(client, shop)
    slots = [{"id": 'a "quoted" \\ ☃\u2028', "placement": "detail_similar", "count": 3},
             {"id": "b", "placement": "made up\t☃", "count": 2}, {"id": "c", "placement": "main", "count": 50,
                                                                  "exclude": [f"p{i}" for i in range(10)]}]
    for locale in (None, "en", 'x"\n'):
        r = _rec(client, shop, slots, page={"type": "detail", "product": "p1"}, locale=locale)
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        got = msgspec.json.decode(r.content)
        assert msgspec.json.encode(got) == r.content
        assert list(got["slots"]) == [s["id"] for s in slots] and got["slots"]["c"]["items"] == []
        assert [s["placement"] for s in got["slots"].values()] == [s["placement"] for s in slots]
        assert got["locale"] == (locale or got["locale"]) and got["currency"] and len(got["slots"]["b"]["items"]) == 2
