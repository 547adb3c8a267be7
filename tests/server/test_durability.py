"""Durability against a real ``funnelrec serve`` process.

1. Several concurrent clients send batches with unique event ids; the server is killed with
   SIGKILL while requests are in flight; after a restart on the same data dir every acknowledged
   event (a 200 reply counting it as accepted) is in the shard exactly once, a re-send of all of
   them adds no rows, and a re-send of the unacknowledged ones makes every sent event land once.
2. With ``--workers 2``, parallel clients (each batch sent twice, concurrently, by two clients)
   land every event exactly once, and the replies' ``accepted`` add up to the rows stored.
"""
from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.server, pytest.mark.timeout(90)]

UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
HEADERS = {"user-agent": UA, "origin": "https://shop.example", "content-type": "application/json"}


def make_events(prefix: str, n: int) -> list[dict]:
    """``n`` mixed events with ids ``<prefix>-<i>``; every fifth one a purchase with two lines."""
    now = int(time.time() * 1000)
    out = []
    for i in range(n):
        eid = f"{prefix}-{i}"
        base = {"id": eid, "visitor": f"v{prefix}", "session": f"s{prefix}", "ts": now - i}
        kind = i % 5
        if kind == 0:
            out.append({**base, "type": "page_view", "page": "detail", "product": f"p{i % 7}"})
        elif kind == 1:
            out.append({**base, "type": "engagement", "page": "detail", "product": f"p{i % 7}",
                        "engaged_ms": 5000 + i, "scroll_pct": 40})
        elif kind == 2:
            out.append({**base, "type": "add_to_cart", "product": f"p{i % 7}", "quantity": 1, "price": 3.5})
        elif kind == 3:
            out.append({**base, "type": "search", "query": "mug", "results": 4})
        else:
            out.append({**base, "type": "purchase", "order": f"o-{eid}", "currency": "GBP",
                        "lines": [{"product": "p1", "quantity": 2, "price": 3.5},
                                  {"product": "p2", "quantity": 1, "price": 9.0}]})
    return out


def body(site_key: str, events: list[dict]) -> bytes:
    return json.dumps({"site_key": site_key, "events": events}).encode()


def shard_ids(data_dir: Path, slug: str = "dur") -> list[str]:
    conn = sqlite3.connect(f"file:{data_dir / 'tenants' / f'{slug}.db'}?mode=ro", uri=True)
    try:
        return [r[0] for r in conn.execute("SELECT event_id FROM events")]
    finally:
        conn.close()


def shard_count(data_dir: Path, sql: str, slug: str = "dur") -> int:
    conn = sqlite3.connect(f"file:{data_dir / 'tenants' / f'{slug}.db'}?mode=ro", uri=True)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


async def post(client: httpx.AsyncClient, site_key: str, events: list[dict]) -> dict:
    r = await client.post("/v1/events", content=body(site_key, events))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize("synchronous,workers", [("FULL", 1), ("NORMAL", 1), ("FULL", 2)])
def test_kill9_mid_stream_loses_no_acknowledged_event(start_server, server_env, tenant, data_dir, synchronous, workers):
    """SIGKILL is a process crash: both FULL and NORMAL must keep every acknowledged event, with
    one worker or two sharing the writer process."""
    server_env["FUNNELREC_SQLITE_SYNCHRONOUS"] = synchronous
    site_key = tenant["site_key"]
    srv = start_server(workers=workers)
    base = f"http://127.0.0.1:{srv.port}"
    acked: list[list[dict]] = []     # batches whose 200 reply counted every event as accepted
    unacked: list[list[dict]] = []   # batches in flight (or refused) when the server died
    errors: list[str] = []
    clients, batch = 8, 5

    async def client_loop(k: int, stop: asyncio.Event):
        async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=15) as c:
            n = 0
            while not stop.is_set():
                events = make_events(f"c{k}-{n}", batch)
                n += 1
                try:
                    r = await c.post("/v1/events", content=body(site_key, events))
                except httpx.HTTPError:
                    unacked.append(events)
                    return
                if r.status_code != 200:
                    errors.append(f"{r.status_code} {r.text[:200]}")
                    unacked.append(events)
                    return
                reply = r.json()
                if reply["accepted"] != batch or reply["duplicates"] or reply["rejected"]:
                    errors.append(f"unexpected reply {reply}")
                acked.append(events)

    async def run_and_kill():
        stop = asyncio.Event()
        tasks = [asyncio.create_task(client_loop(k, stop)) for k in range(clients)]
        deadline = time.monotonic() + 15
        while len(acked) < 60 and time.monotonic() < deadline and not all(t.done() for t in tasks):
            await asyncio.sleep(0.01)
        srv.kill9()  # mid-stream: every client has a request in flight or about to be sent
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=30)
        stop.set()

    asyncio.run(run_and_kill())
    assert not errors, errors[:5]
    assert len(acked) >= 60, f"only {len(acked)} batches acknowledged before the kill"
    assert unacked, "the kill did not interrupt any client"

    srv2 = start_server(workers=workers)  # the same data dir
    ids = shard_ids(data_dir)
    stored = set(ids)
    assert len(ids) == len(stored), "an event id is stored twice"
    acked_ids = {e["id"] for b in acked for e in b}
    sent_ids = acked_ids | {e["id"] for b in unacked for e in b}
    missing = acked_ids - stored
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:5]}"
    assert stored <= sent_ids
    orders_before = shard_count(data_dir, "SELECT count(*) FROM order_lines")

    async def resend():
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{srv2.port}", headers=HEADERS, timeout=15) as c:
            again = await asyncio.gather(*(post(c, site_key, b) for b in acked))
            assert sum(r["accepted"] for r in again) == 0, "re-sending acknowledged events added rows"
            assert sum(r["duplicates"] for r in again) == len(acked_ids)
            assert shard_count(data_dir, "SELECT count(*) FROM events") == len(stored)
            assert shard_count(data_dir, "SELECT count(*) FROM order_lines") == orders_before
            # the client's retry of what was never acknowledged: each event lands once
            retry = await asyncio.gather(*(post(c, site_key, b) for b in unacked))
            n_unacked = sum(len(b) for b in unacked)
            assert sum(r["accepted"] + r["duplicates"] for r in retry) == n_unacked
            assert sum(r["accepted"] for r in retry) == len(sent_ids - stored)

    asyncio.run(resend())
    final = shard_ids(data_dir)
    assert len(final) == len(set(final)) == len(sent_ids)
    assert set(final) == sent_ids
    purchases = sum(1 for i in sent_ids if int(i.rsplit("-", 1)[1]) % 5 == 4)
    assert shard_count(data_dir, "SELECT count(*) FROM order_lines") == 2 * purchases


def test_two_workers_parallel_clients_land_exactly_once(start_server, tenant, data_dir):
    site_key = tenant["site_key"]
    srv = start_server(workers=2)
    children = Path(f"/proc/{srv.pid}/task/{srv.pid}/children")
    if children.exists():
        assert len(children.read_text().split()) >= 2, "uvicorn did not start 2 workers"
    base = f"http://127.0.0.1:{srv.port}"
    streams, batches, batch = 6, 25, 8

    async def client(k: int):
        # two clients per stream send the same batches at the same time: each id twice, concurrently
        replies = []
        async with httpx.AsyncClient(base_url=base, headers=HEADERS, timeout=30) as c:
            for n in range(batches):
                replies.append(await post(c, site_key, make_events(f"w{k % streams}-{n}", batch)))
        return replies

    async def run():
        return await asyncio.gather(*(client(k) for k in range(2 * streams)))

    replies = [r for rs in asyncio.run(run()) for r in rs]
    unique = streams * batches * batch
    assert sum(r["accepted"] + r["duplicates"] for r in replies) == 2 * unique
    assert sum(r["accepted"] for r in replies) == unique
    assert all(not r["rejected"] for r in replies)
    ids = shard_ids(data_dir)
    assert len(ids) == len(set(ids)) == unique
    purchases = streams * batches * sum(1 for i in range(batch) if i % 5 == 4)
    assert shard_count(data_dir, "SELECT count(*) FROM order_lines") == 2 * purchases
