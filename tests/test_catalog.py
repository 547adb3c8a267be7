"""Catalog and profile API (secret key), key scopes, CLI import of CSV/NDJSON, privacy export/erase."""
from __future__ import annotations

import gzip
import json
import time

from click.testing import CliRunner

from server.cli import main
from tests.helpers import ORIGIN, count, ev

PRODUCTS = [
    {"id": "p1", "title": "여성 니트 가디건", "description": "부드러운 울 혼방 니트", "category": ["의류", "여성", "니트"],
     "price": 39000, "currency": "krw", "image": "https://img.example/p1.jpg", "url": "https://shop.example/p/1",
     "brand": "모던", "tags": ["겨울", "니트"], "attrs": {"color": "베이지", "size": ["S", "M"]}},
    {"id": "p2", "title": "Ceramic mug", "category": "Home > Kitchen > Mugs", "price": 8.5, "in_stock": False},
]


def test_upsert_get_delete_products_with_korean_text(client, app, shop):
    r = client.post("/v1/catalog/products", json=PRODUCTS, headers=shop.auth)
    assert r.status_code == 200 and r.json()["stored"] == 2 and r.json()["rejected"] == []
    got = client.get("/v1/catalog/products/p1", headers=shop.auth).json()["product"]
    assert got["title"] == "여성 니트 가디건" and got["category"] == "의류 > 여성 > 니트"
    assert got["currency"] == "KRW" and got["attrs"] == {"color": "베이지", "size": ["S", "M"]} and got["tags"] == ["겨울", "니트"]
    created = got["created_at"]
    # an update keeps the first-listed time unless one is given
    client.post("/v1/catalog/products", json=[{"id": "p1", "title": "여성 니트 가디건 (신상)"}], headers=shop.auth)
    got = client.get("/v1/catalog/products/p1", headers=shop.auth).json()["product"]
    assert got["title"] == "여성 니트 가디건 (신상)" and got["created_at"] == created
    assert client.get("/v1/catalog/products/p2", headers=shop.auth).json()["product"]["in_stock"] is False
    r = client.request("DELETE", "/v1/catalog/products", json={"ids": ["p2", "nope"]}, headers=shop.auth)
    assert r.json() == {"ok": True, "deleted": 1}
    assert client.get("/v1/catalog/products/p2", headers=shop.auth).status_code == 404


def test_ndjson_and_partial_rejection(client, app, shop):
    body = "\n".join([
        json.dumps({"id": "a", "title": "ok"}),
        "{broken json",
        json.dumps({"id": "b", "price": -1}),
        json.dumps({"id": "c", "image": "javascript:alert(1)"}),
        json.dumps({"id": "d", "unknown_field": 1}),
        json.dumps({"id": "e", "title": "also ok"}),
    ])
    r = client.post("/v1/catalog/products", content=body, headers={**shop.auth, "content-type": "application/x-ndjson"})
    out = r.json()
    assert out["stored"] == 2 and [x["index"] for x in out["rejected"]] == [1, 2, 3, 4]
    assert "not JSON" in out["rejected"][0]["reason"] and "$.price" in out["rejected"][1]["reason"]
    assert "$.image" in out["rejected"][2]["reason"] and "unknown_field" in out["rejected"][3]["reason"]
    assert count(app, "shop", "SELECT count(*) FROM products") == 2


def test_users_and_reviews(client, app, shop):
    users = [{"id": "u1", "gender": "여성", "birth_year": 1990, "interests": ["니트"]}, {"id": "u2", "age": 70}]
    assert client.post("/v1/catalog/users", json={"users": users}, headers=shop.auth).json()["stored"] == 2
    assert count(app, "shop", "SELECT count(*) FROM users WHERE id='u1' AND gender='f' AND age_band IS NOT NULL") == 1
    assert count(app, "shop", "SELECT count(*) FROM users WHERE id='u2' AND age_band='65+'") == 1
    reviews = [{"product": "p1", "user": "u1", "rating": 4.5, "text": "따뜻하고 좋아요"}]
    assert client.post("/v1/catalog/reviews", json=reviews, headers=shop.auth).json()["stored"] == 1
    client.post("/v1/catalog/reviews", json=reviews, headers=shop.auth)  # same review again: one row
    assert count(app, "shop", "SELECT count(*) FROM reviews") == 1


def test_key_scopes(client, app, shop, make_tenant):
    other = make_tenant("other")
    # a site key cannot use the secret API
    r = client.post("/v1/catalog/products", json=PRODUCTS, headers={"authorization": f"Bearer {shop.site_key}"})
    assert r.status_code == 403 and r.json()["error"] == "wrong_key_kind"
    assert client.post("/v1/catalog/products", json=PRODUCTS).status_code == 401
    assert client.post("/v1/catalog/products", json=PRODUCTS, headers={"authorization": "Bearer sk_nope"}).status_code == 401
    # B's secret key writes into B, never A, even when naming A's products
    client.post("/v1/catalog/products", json=PRODUCTS, headers=shop.auth)
    client.post("/v1/catalog/products", json=[{"id": "p1", "title": "B's p1"}], headers=other.auth)
    assert client.get("/v1/catalog/products/p1", headers=shop.auth).json()["product"]["title"] == "여성 니트 가디건"
    assert client.get("/v1/catalog/products/p2", headers=other.auth).status_code == 404
    client.request("DELETE", "/v1/catalog/products", json={"ids": ["p1", "p2"]}, headers=other.auth)
    assert count(app, "shop", "SELECT count(*) FROM products") == 2
    # event import needs the secret key
    r = client.post("/v1/events/import", json=[ev()], headers={"authorization": f"Bearer {shop.site_key}"})
    assert r.status_code == 403


def test_event_import_keeps_original_time_and_is_idempotent(client, app, shop):
    old = [ev("purchase", ts=1291196400000, order="536365", visitor="17850"), ev("page_view", ts=1291196300000)]
    r = client.post("/v1/events/import", json=old, headers=shop.auth)
    assert r.json()["accepted"] == 2
    assert client.post("/v1/events/import", json=old, headers=shop.auth).json()["duplicates"] == 2
    assert count(app, "shop", "SELECT max(ts) FROM events") == 1291196400000
    assert count(app, "shop", "SELECT count(*) FROM events WHERE source='import'") == 2
    assert client.get("/v1/catalog/stats", headers=shop.auth).json()["counts"]["clock_ms"] == 1291196400000


def test_privacy_export_and_erase(client, app, shop):
    mine = [ev(visitor="vA", user="uA"), ev("purchase", visitor="vA", user="uA"), ev(visitor="vA2", user="uA")]
    theirs = [ev(visitor="vB")]
    client.post("/v1/events", content=json.dumps({"site_key": shop.site_key, "events": mine + theirs}))
    client.post("/v1/catalog/users", json=[{"id": "uA", "gender": "f"}], headers=shop.auth)
    client.post("/v1/catalog/reviews", json=[{"product": "p1", "user": "uA", "text": "good"}], headers=shop.auth)
    # what was recommended to them is theirs too (rec_served holds their visitor and user ids)
    for visitor, user in (("vA", "uA"), ("vA2", None), ("vB", None)):
        body = {"site_key": shop.site_key, "visitor": visitor, "session": "s", "user": user, "slots": [{"id": "m"}]}
        assert client.post("/v1/recommend", content=json.dumps(body), headers={"content-type": "text/plain"}).status_code == 200
    for _ in range(100):   # (served rows are stored in the background, ~50 ms later)
        if count(app, "shop", "SELECT count(*) FROM rec_served") == 3:
            break
        time.sleep(0.02)
    out = client.get("/v1/privacy/users/uA", headers=shop.auth).json()
    assert len(out["events"]) == 3 and len(out["order_lines"]) == 1 and len(out["reviews"]) == 1
    assert {v["id"] for v in out["visitors"]} == {"vA", "vA2"} and out["profile"]["gender"] == "f"
    assert sorted(r["visitor"] for r in out["recommendations_served"]) == ["vA", "vA2"]
    assert isinstance(out["recommendations_served"][0]["products"], list)
    assert len(client.get("/v1/privacy/visitors/vA", headers=shop.auth).json()["events"]) == 2
    erased = client.delete("/v1/privacy/users/uA", headers=shop.auth).json()["erased"]
    assert erased == {"events": 3, "order_lines": 1, "reviews": 1, "rec_served": 2, "visitors": 2, "profile": 1}
    gone = client.get("/v1/privacy/users/uA", headers=shop.auth).json()
    assert gone["events"] == [] and gone["recommendations_served"] == []
    assert count(app, "shop") == 1  # the other visitor's event stays
    assert count(app, "shop", "SELECT visitor FROM rec_served") == "vB"   # and what was served to them


def cli(args):
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    return json.loads(r.output)


def test_cli_import_csv_ndjson_and_privacy(tmp_path):
    data = tmp_path / "d"
    cli(["tenant", "create", "shop", "--data-dir", str(data), "--json"])
    csv_path = tmp_path / "products.csv"
    csv_path.write_text(
        "id,title,category,price,in_stock,tags,attr.color\n"
        "p1,여성 니트 가디건,의류 > 니트,39000,true,겨울|니트,베이지\n"
        "p2,Mug,Home > Mugs,not-a-number,false,,\n"
        "p3,Plate,Home,3.5,0,,\n", encoding="utf-8")
    out = cli(["import", "products", str(csv_path), "--tenant", "shop", "--data-dir", str(data), "--json"])
    assert out["stored"] == 2 and out["rejected"] == 1 and out["errors"][0]["record"] == 2
    events = [ev("purchase", ts="2010-12-01T08:26:00", visitor="17850", order="536365"),
              ev("search", query="가디건", visitor="17850"), {"type": "page_view"}]
    nd = tmp_path / "events.ndjson.gz"
    with gzip.open(nd, "wt", encoding="utf-8") as f:
        f.write("\n".join(json.dumps(e, ensure_ascii=False) for e in events))
    out = cli(["import", "events", str(nd), "--tenant", "shop", "--data-dir", str(data), "--json"])
    assert out["stored"] == 2 and out["rejected"] == 1
    ecsv = tmp_path / "events.csv"
    ecsv.write_text("id,type,visitor,session,ts,product,quantity\n"
                    "c1,add_to_cart,17850,s9,2010-12-01 09:00:00,p1,2\n"
                    "c2,add_to_cart,17850,s9,1291194000000,p3,1\n", encoding="utf-8")
    out = cli(["import", "events", str(ecsv), "--tenant", "shop", "--data-dir", str(data), "--json"])
    assert out["stored"] == 2, out
    again = cli(["import", "events", str(ecsv), "--tenant", "shop", "--data-dir", str(data), "--json"])
    assert again["stored"] == 0 and again["duplicates"] == 2
    users = tmp_path / "users.csv"
    users.write_text("id,gender,birth_year,interests\nu1,F,1985,\"[\"\"knit\"\"]\"\n", encoding="utf-8")
    assert cli(["import", "users", str(users), "--tenant", "shop", "--data-dir", str(data), "--json"])["stored"] == 1
    reviews = tmp_path / "reviews.ndjson"
    reviews.write_text(json.dumps({"product": "p1", "user": "u1", "rating": 5, "text": "최고"}, ensure_ascii=False) + "\n",
                       encoding="utf-8")
    assert cli(["import", "reviews", str(reviews), "--tenant", "shop", "--data-dir", str(data), "--json"])["stored"] == 1

    r = CliRunner().invoke(main, ["privacy", "export", "--tenant", "shop", "--visitor", "17850", "--data-dir", str(data)])
    exported = json.loads(r.output)
    assert len(exported["events"]) == 4
    purchase = [e for e in exported["events"] if e["type"] == "purchase"][0]
    assert purchase["ts"] == 1291191960000  # the original time, read as UTC
    out = cli(["privacy", "erase", "--tenant", "shop", "--visitor", "17850", "--data-dir", str(data), "--json"])
    assert out["erased"]["events"] == 4
