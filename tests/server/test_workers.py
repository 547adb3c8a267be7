"""``funnelrec serve --workers 2`` (server/workers.py): one SO_REUSEPORT socket per worker, so
new connections spread over both; a worker that dies is restarted; a kill -9 of the server
takes its workers with it."""
from __future__ import annotations

import http.client
import os
import signal
import time
from pathlib import Path


def _pids_over_new_connections(port: int, n: int = 24) -> list[int]:
    out = []
    for _ in range(n):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request("GET", "/healthz")
            r = c.getresponse()
            assert r.status == 200
            import json
            out.append(json.loads(r.read())["pid"])
        finally:
            c.close()
    return out


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def test_connections_spread_workers_restart_and_die_with_the_server(start_server):
    srv = start_server(workers=2)
    deadline = time.time() + 20
    pids: set = set()
    while len(pids) < 2 and time.time() < deadline:  # the second worker may still be starting
        pids |= set(_pids_over_new_connections(srv.port))
    assert len(pids) == 2, (pids, srv.log())  # 2^-23 to see one worker by chance when both listen

    victim = sorted(pids)[0]
    os.kill(victim, signal.SIGKILL)
    deadline = time.time() + 30
    new: set = set()
    while time.time() < deadline and not (new - pids):
        time.sleep(0.3)
        try:
            new = set(_pids_over_new_connections(srv.port, 12))
        except (OSError, AssertionError):
            new = set()
    assert new - pids and victim not in new, (new, srv.log())
    assert "worker exited; restarting it" in srv.log()

    workers = (pids | new) - {victim}
    os.kill(srv.pid, signal.SIGKILL)
    deadline = time.time() + 15
    while time.time() < deadline and any(_alive(p) for p in workers):
        time.sleep(0.1)
    assert not any(_alive(p) for p in workers), "a worker outlived a kill -9 of its server"
