"""The writer process (server/writer_service.py) and its client (server/writer_client.py).

- a job's result and its exception cross the process with their types;
- a deleted tenant's shard is never re-created through the writer process;
- a second ``funnelrec serve`` on the same data dir fails with a clear message;
- the writer process killed: requests get a 503 at once (no hang), then succeed again after the
  watchdog restarts it, and every acknowledged event is stored exactly once.
"""
from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from bench.common import ROOT, free_port, funnelrec_cmd
from server.config import Settings
from server.ingest.schema import event_from_obj
from server.ingest.store import StoreResult, store_events_job
from server.placements import config as strategies
from server.shards import ShardGone
from server.tenants import TenantRegistry
from server.writer_client import WriterClient, socket_path

from .test_durability import HEADERS, body, make_events, shard_ids

pytestmark = [pytest.mark.server, pytest.mark.timeout(90)]


def _fail_with(exc: Exception, conn) -> None:
    raise exc


@pytest.fixture
def writer_process(tmp_path, server_env):
    """``python -m server.writer_service`` on a fresh data dir; yields (settings, registry, client)."""
    data = tmp_path / "data"
    registry = TenantRegistry(data)
    settings = Settings.from_env(env={}, data_dir=data)
    r, w = os.pipe()
    proc = subprocess.Popen([sys.executable, "-m", "server.writer_service", "--data-dir", str(data), "--ready-fd", str(w)],
                            cwd=ROOT, env=server_env, pass_fds=(w,))
    os.close(w)
    with os.fdopen(r, "rb") as ready:
        assert ready.readline() == b"ready\n", "the writer process did not report ready"
    assert oct(os.stat(socket_path(settings)).st_mode & 0o777) == "0o600"
    yield settings, registry, WriterClient(socket_path(settings))
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 0
    registry.close()


def test_results_and_exception_types_cross_the_process(writer_process):
    settings, registry, client = writer_process
    t, _ = registry.create("shop", ["https://shop.example"])
    w = client.writer(t.slug, t.created_at)
    ev = event_from_obj({"id": "e1", "type": "page_view", "page": "main", "visitor": "v1", "session": "s1",
                         "ts": int(time.time() * 1000)})
    result = w.submit(store_events_job([ev], int(time.time() * 1000), "web")).result(10)
    assert isinstance(result, StoreResult) and result == (1, 0)
    with pytest.raises(LookupError):  # the strategies API turns this into a 404
        w.submit(strategies.rollback_job(99)).result(10)
    with pytest.raises(KeyError, match="nope"):
        w.submit(functools.partial(_fail_with, KeyError("nope"))).result(10)
    with pytest.raises(TypeError, match="picklable"):  # a closure cannot cross: a clear error, not a hang
        w.submit(lambda conn: None).result(10)
    # the failing jobs rolled back alone: the event is there once
    assert w.submit(store_events_job([ev], int(time.time() * 1000), "web")).result(10) == (0, 1)


def test_deleted_tenant_is_not_recreated_by_the_writer_process(writer_process):
    settings, registry, client = writer_process
    t, _ = registry.create("gone", [])
    path = registry.shard_path("gone")
    w = client.writer(t.slug, t.created_at)
    ev = event_from_obj({"id": "e1", "type": "page_view", "page": "main", "visitor": "v1", "session": "s1",
                         "ts": int(time.time() * 1000)})
    assert w.submit(store_events_job([ev], int(time.time() * 1000), "web")).result(10).accepted == 1  # shard open
    registry.delete("gone")
    assert not path.exists()
    with pytest.raises(ShardGone):
        w.submit(store_events_job([ev], int(time.time() * 1000), "web")).result(10)
    never = client.writer("never-made", 1)
    with pytest.raises(ShardGone):
        never.submit(store_events_job([ev], int(time.time() * 1000), "web")).result(10)
    assert not path.exists() and not registry.shard_path("never-made").exists()
    assert not any(p.name.startswith(("gone", "never-made")) for p in path.parent.iterdir())


def test_second_serve_on_the_same_data_dir_fails_clearly(start_server, server_env, data_dir):
    srv = start_server(workers=1)
    out = subprocess.run(funnelrec_cmd("serve", "--port", str(free_port()), "--data-dir", str(data_dir)),
                         cwd=ROOT, env=server_env, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "already runs on the data dir" in out.stderr, out.stderr
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.port}") as c:  # the first server is unharmed
        assert c.get("/healthz").status_code == 200


def _writer_pid(server_pid: int) -> int:
    for task in Path(f"/proc/{server_pid}/task").iterdir():  # the watchdog thread starts restarted ones
        for c in (task / "children").read_text().split():
            if b"server.writer_service" in Path(f"/proc/{c}/cmdline").read_bytes():
                return int(c)
    raise AssertionError("no writer process among the server's children")


def test_writer_killed_503_then_recovers_and_keeps_acknowledged_events(start_server, tenant, data_dir):
    srv = start_server(workers=1)
    site_key = tenant["site_key"]
    acked: set[str] = set()
    with httpx.Client(base_url=f"http://127.0.0.1:{srv.port}", headers=HEADERS, timeout=10) as c:
        for n in range(5):
            events = make_events(f"before{n}", 5)
            r = c.post("/v1/events", content=body(site_key, events))
            assert r.status_code == 200 and r.json()["accepted"] == 5, r.text
            acked |= {e["id"] for e in events}
        old = _writer_pid(srv.pid)
        os.kill(old, signal.SIGKILL)
        time.sleep(0.1)
        statuses = []
        deadline = time.monotonic() + 30
        n = 0
        while time.monotonic() < deadline:
            events = make_events(f"during{n}", 3)
            n += 1
            t0 = time.monotonic()
            r = c.post("/v1/events", content=body(site_key, events))
            assert time.monotonic() - t0 < 5, "a request hung while the writer was gone"
            statuses.append(r.status_code)
            if r.status_code == 200:
                acked |= {e["id"] for e in events}
                break
            assert r.status_code == 503, r.text
            err = r.json()
            assert err["ok"] is False and err["error"] == "writer_unavailable" and r.headers["retry-after"] == "1"
            time.sleep(0.05)
        assert statuses[0] == 503, statuses
        assert statuses[-1] == 200, f"no recovery after the writer was killed: {statuses[-5:]}\n{srv.log()}"
        assert _writer_pid(srv.pid) != old  # the watchdog started a new one
        for n in range(5):
            events = make_events(f"after{n}", 5)
            r = c.post("/v1/events", content=body(site_key, events))
            assert r.status_code == 200 and r.json()["accepted"] == 5, r.text
            acked |= {e["id"] for e in events}
    ids = shard_ids(data_dir)
    assert len(ids) == len(set(ids))
    assert acked <= set(ids)
