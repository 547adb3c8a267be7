"""No request can crash the server, reach another tenant or corrupt a shard."""
from __future__ import annotations

import json
import random

import pytest

from tests.helpers import count, ev

HOSTILE_BODIES = [
    b"", b"null", b"[]", b"{}", b"\xff\xfe\x00garbage", b'{"events": null}', b'{"events": [null, 1, "x", []]}',
    b'{"events": [' + b"[" * 5000 + b"]" * 5000 + b"]}", b'{"site_key": 5, "events": []}',
    b'{"site_key": "pk_x", "events": [{"id": "\xed\xa0\x80", "type": "page_view"}]}',
    json.dumps({"events": [{"id": "a" * 10_000, "type": "page_view"}]}).encode(),
    json.dumps({"events": [ev(ts=-1), ev(ts=10**30), ev(ts="yesterday"), ev(ts=1.5)]}).encode(),
    json.dumps({"events": [ev("purchase", lines=[{"product": "p", "quantity": float("1e309")}])]}).encode().replace(b"Infinity", b"1e999"),
    json.dumps({"events": [ev(props={"nested": {"deep": [1, 2]}})]}).encode(),
    json.dumps({"events": [ev(visitor="'; DROP TABLE events; --")]}).encode(),
]


@pytest.mark.parametrize("body", HOSTILE_BODIES, ids=range(len(HOSTILE_BODIES)))
def test_hostile_event_bodies_never_crash(client, app, shop, body):
    try:
        doc = json.loads(body)
        if isinstance(doc, dict) and "site_key" not in doc:
            doc["site_key"] = shop.site_key
            body = json.dumps(doc).encode()
    except (ValueError, RecursionError):
        pass
    r = client.post("/v1/events", content=body)
    assert r.status_code < 500, r.text
    assert r.json()["ok"] in (True, False)


def test_random_bytes_on_every_route(client, app, shop):
    rnd = random.Random(7)
    routes = [("POST", "/v1/events", {}), ("POST", "/v1/events/import", shop.auth),
              ("POST", "/v1/catalog/products", shop.auth), ("POST", "/v1/catalog/users", shop.auth),
              ("POST", "/v1/catalog/reviews", shop.auth), ("DELETE", "/v1/catalog/products", shop.auth),
              ("POST", "/v1/recommend", {}), ("PUT", "/v1/strategies", shop.auth)]
    for _ in range(30):
        for method, path, headers in routes:
            body = bytes(rnd.getrandbits(8) for _ in range(rnd.randrange(0, 300)))
            if rnd.random() < 0.5:
                body = json.dumps({"site_key": shop.site_key, "events": [rnd.choice([1, "x", None, {}, []])],
                                   "slots": rnd.choice([None, [], [{}], "x"]), "ids": rnd.choice([None, [1], "x"])}).encode()
            r = client.request(method, path, content=body, headers=headers)
            assert r.status_code < 500, (method, path, body, r.text)
    conn = app.state.shards.get(app.state.registry.get("shop")).connect_read()
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
    assert count(app, "shop", "SELECT count(*) FROM sqlite_master WHERE name='events'") == 1


def test_sql_injection_in_ids_is_just_data(client, app, shop):
    nasty = "x' OR '1'='1"
    r = client.post("/v1/events", content=json.dumps({"site_key": shop.site_key, "events": [ev(visitor="v-safe"), ev(product=nasty, type="add_to_cart")]}))
    assert r.json()["accepted"] == 2
    assert client.get(f"/v1/privacy/visitors/{nasty}", headers=shop.auth).json()["events"] == []
    assert client.get("/v1/catalog/products/" + nasty, headers=shop.auth).status_code == 404
