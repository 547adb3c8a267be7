"""POST /v1/events: idempotency, partial rejection, every 4xx path, bots, privacy."""
from __future__ import annotations

import json
import time

from starlette.testclient import TestClient

from server.app import create_app

from tests.helpers import BROWSER_UA, ORIGIN, count, ev, make_settings


def post(client, key, events, **kw):
    return client.post("/v1/events", content=json.dumps({"site_key": key, "events": events}),
                       headers={"content-type": "text/plain;charset=UTF-8", **kw.pop("headers", {})}, **kw)


def test_batch_is_stored_and_acknowledged(client, app, shop):
    r = post(client, shop.site_key, [ev(), ev("engagement"), ev("add_to_cart")])
    assert r.status_code == 200, r.text
    assert r.json() == {"ok": True, "accepted": 3, "duplicates": 0, "dropped": 0, "rejected": []}
    assert r.headers["access-control-allow-origin"] == ORIGIN
    assert count(app, "shop") == 3


def test_repeated_event_ids_are_stored_once(client, app, shop):
    batch = [ev(), ev("search"), ev("purchase")]
    assert post(client, shop.site_key, batch).json()["accepted"] == 3
    r = post(client, shop.site_key, batch)  # a retry
    assert r.json()["accepted"] == 0 and r.json()["duplicates"] == 3
    same = ev()
    r = post(client, shop.site_key, [same, dict(same)])  # the same id twice in one batch
    assert r.json()["accepted"] == 1 and r.json()["duplicates"] == 1
    assert count(app, "shop") == 4
    assert count(app, "shop", "SELECT count(*) FROM order_lines") == 1


def test_resent_order_with_new_event_id_keeps_one_order(client, app, shop):
    purchase = ev("purchase", order="o-42")
    post(client, shop.site_key, [purchase])
    post(client, shop.site_key, [{**purchase, "id": "another-id"}])
    assert count(app, "shop", "SELECT count(*) FROM order_lines WHERE order_id='o-42'") == 1


def test_invalid_events_are_rejected_with_index_and_reason_and_the_rest_kept(client, app, shop):
    events = [
        ev(),
        ev("page_view", page="nowhere"),
        ev("no_such_type"),
        {"type": "page_view", "page": "main"},
        ev(),
        ev("purchase", lines=[]),
        ev(ts=int(time.time() * 1000) + 10 * 86400 * 1000),
        "not an object",
        ev("engagement", scroll_pct=250),
        ev(id="bad id with spaces"),
        ev("add_to_cart"),
    ]
    r = post(client, shop.site_key, events)
    assert r.status_code == 200
    body = r.json()
    assert body["accepted"] == 3
    rejected = {x["index"]: x["reason"] for x in body["rejected"]}
    assert sorted(rejected) == [1, 2, 3, 5, 6, 7, 8, 9]
    assert "$.page" in rejected[1]
    assert "expected one of" in rejected[2] and "page_view" in rejected[2]
    assert "missing required field" in rejected[3]
    assert "future" in rejected[6]
    assert "object" in rejected[7]
    assert "$.scroll_pct" in rejected[8]
    assert count(app, "shop") == 3


def test_error_shape_for_each_4xx(client, app, shop, make_tenant):
    def check(r, status, code):
        assert r.status_code == status, r.text
        body = r.json()
        assert body["ok"] is False and body["status"] == status and body["error"] == code
        assert isinstance(body["message"], str) and body["message"]
        return r

    check(client.post("/v1/events", content=b"{not json"), 400, "invalid_body")
    check(client.post("/v1/events", content=b'{"events": 5}'), 400, "invalid_body")
    check(post(client, None, [ev()]), 401, "missing_key")
    check(post(client, "pk_unknown", [ev()]), 401, "unknown_key")
    check(post(client, shop.secret_key, [ev()]), 401, "wrong_key_kind")
    check(post(client, shop.site_key, [ev()], headers={"origin": "https://evil.example"}), 403, "origin_not_allowed")
    check(client.post("/v1/events", content=b"x" * (app.state.settings.max_body_bytes + 1)), 413, "body_too_large")
    too_many = [ev() for _ in range(app.state.settings.max_events_per_batch + 1)]
    check(post(client, shop.site_key, too_many), 413, "too_many_events")
    check(client.get("/v1/nothing-here"), 404, "not_found")
    check(client.get("/v1/events"), 405, "method_not_allowed")
    assert count(app, "shop") == 0


def test_rate_limit_answers_429_with_retry_after(tmp_path):
    app = create_app(make_settings(tmp_path, rate_limit_rps=1.0, rate_limit_burst=2))
    t, _ = app.state.registry.create("shop", [ORIGIN])
    with TestClient(app, headers={"user-agent": BROWSER_UA, "origin": ORIGIN}) as client:
        codes = [post(client, t.site_key, [ev()]).status_code for _ in range(3)]
        assert codes[:2] == [200, 200]
        r = post(client, t.site_key, [ev()])
        assert r.status_code == 429
        assert int(r.headers["retry-after"]) >= 1
        assert r.json()["error"] == "rate_limited"
        assert r.headers["access-control-allow-origin"] == ORIGIN  # the widget can read it


def test_bots_are_counted_and_dropped_unless_test_mode(client, app, shop, make_tenant):
    r = post(client, shop.site_key, [ev(), ev()], headers={"user-agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
    assert r.json()["dropped"] == 2 and r.json()["drop_reason"] == "bot_user_agent"
    body = json.dumps({"site_key": shop.site_key, "ctx": {"webdriver": True}, "events": [ev()]})
    r = client.post("/v1/events", content=body)
    assert r.json()["dropped"] == 1 and r.json()["drop_reason"] == "bot_webdriver"
    assert count(app, "shop") == 0
    assert count(app, "shop", "SELECT sum(count) FROM drops") == 3
    assert count(app, "shop", "SELECT count(*) FROM visitors") == 0
    test = make_tenant("qa", test_mode=True)
    r = client.post("/v1/events", content=json.dumps({"site_key": test.site_key, "ctx": {"webdriver": True}, "events": [ev()]}),
                    headers={"user-agent": "HeadlessChrome"})
    assert r.json()["accepted"] == 1


def test_do_not_track_is_honoured_by_default(client, app, shop, make_tenant):
    body = {"site_key": shop.site_key, "ctx": {"dnt": True}, "events": [ev()]}
    assert client.post("/v1/events", content=json.dumps(body)).json()["drop_reason"] == "do_not_track"
    other = make_tenant("nodnt", honor_dnt=False)
    body["site_key"] = other.site_key
    assert client.post("/v1/events", content=json.dumps(body)).json()["accepted"] == 1


def test_any_origin_when_tenant_has_none(client, app, make_tenant):
    dev = make_tenant("dev", origins=())
    assert post(client, dev.site_key, [ev()], headers={"origin": "http://localhost:3000"}).json()["accepted"] == 1


def test_preflight(client):
    r = client.options("/v1/events", headers={"origin": ORIGIN, "access-control-request-method": "POST"})
    assert r.status_code == 204 and r.headers["access-control-allow-origin"] == ORIGIN


def test_stored_columns_and_korean_text(client, app, shop):
    e = ev("search", query="여성 니트 가디건", user="u-7", results=0)
    p = ev("purchase", order="o1", currency="KRW", lines=[{"product": "상품-1", "quantity": 1, "price": 39000},
                                                         {"product": "상품-1", "quantity": 2, "price": 39000}])
    post(client, shop.site_key, [e, p])
    t = app.state.registry.get("shop")
    conn = app.state.shards.get(t).connect_read()
    row = conn.execute("SELECT type, visitor, session, user_id, data, source FROM events WHERE event_id=?", (e["id"],)).fetchone()
    assert row[:4] == ("search", "v1", "s1", "u-7")
    assert json.loads(row[4]) == {k: v for k, v in e.items()}  # the whole validated event
    assert row[5] == "web"
    line = conn.execute("SELECT product, quantity, price, currency FROM order_lines WHERE order_id='o1'").fetchone()
    assert line == ("상품-1", 3.0, 39000.0, "KRW")
    v = conn.execute("SELECT user_id, first_seen, last_seen FROM visitors WHERE id='v1'").fetchone()
    assert v == ("u-7", min(e["ts"], p["ts"]), max(e["ts"], p["ts"]))
    conn.close()


def test_tenants_are_isolated(client, app, make_tenant):
    a = make_tenant("tenant-a")
    b = make_tenant("tenant-b")
    post(client, a.site_key, [ev(visitor="shared-visitor")])
    post(client, b.site_key, [ev(visitor="shared-visitor"), ev(visitor="shared-visitor")])
    assert count(app, "tenant-a") == 1 and count(app, "tenant-b") == 2
    # A's secret key sees only A's data, whatever ids the request names
    r = client.get("/v1/privacy/visitors/shared-visitor", headers=a.auth)
    assert len(r.json()["events"]) == 1
    assert client.get("/v1/catalog/stats", headers=a.auth).json()["counts"]["events"] == 1


def test_writer_isolates_a_failing_job_and_group_commits(app, shop):
    """A job that raises loses only itself; the others of the same group commit are stored."""
    import sqlite3

    from server.ingest.schema import event_from_obj
    from server.ingest.store import store_events_job

    shard = app.state.shards.get(app.state.registry.get("shop"))
    good = [store_events_job([event_from_obj(ev())], 1, "web") for _ in range(20)]

    def bad(conn: sqlite3.Connection):
        conn.execute("INSERT INTO events (event_id) VALUES ('half-done')")  # NOT NULL violation

    import time as _time

    commits_before = shard.writer.commits
    blocker = shard.writer.submit(lambda conn: _time.sleep(0.3))  # the next jobs queue up meanwhile
    futures = [shard.writer.submit(j) for j in good[:10]] + [shard.writer.submit(bad)] + \
        [shard.writer.submit(j) for j in good[10:]]
    blocker.result()
    outcomes = []
    for f in futures:
        try:
            outcomes.append(f.result(timeout=10).accepted)
        except sqlite3.IntegrityError:
            outcomes.append("failed")
    assert outcomes == [1] * 10 + ["failed"] + [1] * 10
    assert count(app, "shop") == 20
    assert shard.writer.commits - commits_before <= 3  # grouped: not one commit per job


def test_visitor_rows_follow_events_and_erasure(client, app, shop):
    """The writer skips visitor upserts it already made (memo), yet the row stays exact:
    a new user id, an earlier time, an erased visitor coming back."""
    t0 = int(time.time() * 1000) - 3_600_000
    post(client, shop.site_key, [ev(visitor="vm", ts=t0)])
    post(client, shop.site_key, [ev(visitor="vm", ts=t0 + 1000)])  # within the minute: no upsert needed
    post(client, shop.site_key, [ev(visitor="vm", ts=t0 + 1000, user="u-9")])  # logs in
    post(client, shop.site_key, [ev(visitor="vm", ts=t0 - 5000)])  # an older event arrives late
    post(client, shop.site_key, [ev(visitor="vm", ts=t0 + 120_000)])
    row = ("SELECT user_id || ',' || first_seen || ',' || last_seen FROM visitors WHERE id='vm'")
    assert count(app, "shop", row) == f"u-9,{t0 - 5000},{t0 + 120_000}"
    client.delete("/v1/privacy/visitors/vm", headers=shop.auth)
    assert count(app, "shop", "SELECT count(*) FROM visitors WHERE id='vm'") == 0
    post(client, shop.site_key, [ev(visitor="vm", ts=t0 + 121_000)])
    assert count(app, "shop", "SELECT count(*) FROM visitors WHERE id='vm'") == 1


def test_checkpoint_thread_copies_the_wal_and_keeps_it_bounded(tmp_path):
    """With the checkpoint thread, passive checkpoints run beside the writer (pages copied by the
    thread, not only by the writer's commits), every committed row is readable, and the WAL stays
    near its bound (``wal_autocheckpoint`` pages) under sustained writes. Without the thread,
    nothing is copied by it (the control)."""
    import os

    from server.ingest.schema import event_from_obj
    from server.ingest.store import store_events_job
    from server.shards import ShardWriter, create_shard_file

    def run(interval_ms: float):
        path = tmp_path / f"t{int(interval_ms)}.db"
        create_shard_file(path)
        writer = ShardWriter(path, "FULL", 10_000, wal_autocheckpoint=300, checkpoint_interval_ms=interval_ms)
        writer.start_and_wait()
        wal_max = 0
        n = 0
        for round_ in range(40):
            futs = [writer.submit(store_events_job([event_from_obj(ev()) for _ in range(50)], 1, "web"))
                    for _ in range(8)]
            n += sum(f.result(timeout=30).accepted for f in futs)
            wal_max = max(wal_max, os.path.getsize(f"{path}-wal"))
            time.sleep(0.01)
        copied = writer.checkpointer.pages if writer.checkpointer else 0
        writer.stop()
        import sqlite3

        conn = sqlite3.connect(path)
        stored = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        conn.close()
        return n, stored, copied, wal_max

    n, stored, copied, wal_max = run(20)
    assert n == stored == 40 * 8 * 50
    assert copied > 0
    page = 4096 + 24  # a WAL frame
    assert wal_max < 3 * 300 * page, wal_max  # bounded: the writer's bound plus one commit's frames
    n0, stored0, copied0, _ = run(0)
    assert n0 == stored0 and copied0 == 0


def test_store_job_with_more_rows_than_one_statement(app, shop):
    """A job of 150 events goes in 64-row statements (64+64+22); every row is stored once with
    its columns in place, and a re-run of the same job stores nothing new."""
    import pickle

    from server.ingest.schema import event_from_obj
    from server.ingest.store import store_events_job

    shard = app.state.shards.get(app.state.registry.get("shop"))
    events = [event_from_obj(ev()) for _ in range(150)]
    job = pickle.loads(pickle.dumps(store_events_job(events, 7, "import")))  # as the writer process gets it
    first = shard.writer.submit(job).result(timeout=30)
    again = shard.writer.submit(job).result(timeout=30)
    assert (first.accepted, first.duplicates) == (150, 0)
    assert (again.accepted, again.duplicates) == (0, 150)
    conn = shard.connect_read()
    try:
        rows = conn.execute("SELECT event_id, visitor, received, source FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    assert rows == [(e.id, e.visitor, 7, "import") for e in events]
