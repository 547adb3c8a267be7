"""Real-time with several worker processes: an event stored by one worker shapes the very next
recommendation, whichever worker answers it (state shared through the shard, nothing pinned;
the model is built once, by the builder process, and loaded by both workers)."""
from __future__ import annotations

import json
import os
import time
import uuid

import httpx
import pytest

from bench.common import ServerProcess, create_tenant, free_port, funnelrec_cmd

pytestmark = pytest.mark.server
ORIGIN = "https://shop.example"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
PAIRS = [("p1", "p2"), ("p3", "p4"), ("p5", "p6")]


def _ev(type_, visitor, session, ts, **kw):
    return {"id": uuid.uuid4().hex, "type": type_, "visitor": visitor, "session": session, "ts": ts, **kw}


def test_two_workers_react_to_the_previous_event(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "FUNNELREC_DATA_DIR": str(data), "FUNNELREC_RATE_LIMIT_RPS": "0",
           "FUNNELREC_LOG_LEVEL": "info", "OPENBLAS_NUM_THREADS": "1"}
    t = create_tenant(data, "multi", env=env)
    port = free_port()
    srv = ServerProcess(funnelrec_cmd("serve", "--port", str(port), "--workers", "2", "--data-dir", str(data)),
                        port, env=env, name="engine-w2")
    srv.start(timeout=60)
    base = f"http://127.0.0.1:{port}"
    secret = {"authorization": f"Bearer {t['secret_key']}"}
    try:
        with httpx.Client(base_url=base, timeout=30) as c:
            r = c.post("/v1/catalog/products", headers=secret, json=[
                {"id": f"p{i}", "title": f"Product {i}", "url": f"https://shop.example/p{i}", "price": 10 + i}
                for i in range(10)])
            assert r.status_code == 200, r.text
            now = int(time.time() * 1000) - 3_600_000
            hist = []
            for n in range(10):
                for a, b in PAIRS:
                    s = f"h{a}{n}"
                    hist += [_ev("page_view", s, s, now + n, page="detail", product=a),
                             _ev("page_view", s, s, now + n + 1, page="detail", product=b)]
            r = c.post("/v1/events/import", headers=secret, json=hist)
            assert r.status_code == 200 and r.json()["accepted"] == len(hist), r.text
        for i in range(24):
            a, b = PAIRS[i % 3]
            visitor = session = f"live{i}"
            # a fresh connection for each request, so the two workers share the rounds
            with httpx.Client(base_url=base, timeout=30, headers={"origin": ORIGIN, "user-agent": UA}) as c1:
                r = c1.post("/v1/events", json={"site_key": t["site_key"], "events": [
                    _ev("page_view", visitor, session, int(time.time() * 1000), page="detail", product=a)]})
                assert r.status_code == 200 and r.json()["accepted"] == 1
            with httpx.Client(base_url=base, timeout=30, headers={"origin": ORIGIN, "user-agent": UA}) as c2:
                r = c2.post("/v1/recommend", content=f'{{"site_key":"{t["site_key"]}","visitor":"{visitor}",'
                            f'"session":"{session}","page":{{"type":"main"}},'
                            f'"slots":[{{"id":"m","placement":"main","count":4}}]}}',
                            headers={"content-type": "text/plain"})
                assert r.status_code == 200, r.text
                slot = r.json()["slots"]["m"]
            assert slot["strategy"] == "personal"
            assert slot["items"][0]["id"] == b, (i, slot)
            assert slot["items"][0]["reason"] == f"because you viewed Product {a[1:]}"
            assert a not in [it["id"] for it in slot["items"]]  # not what was just seen
        # one build, by the builder process; both workers loaded it and answered requests
        log = srv.log()
        assert log.count('"msg": "model built"') == 1, log
        loaded = [json.loads(line) for line in log.splitlines() if '"msg": "model loaded"' in line]
        assert len({m["pid"] for m in loaded}) == 2, log
    except Exception:
        print(srv.log())
        raise
    finally:
        srv.stop()
