"""The builder sidecar under a real ``funnelrec serve``: models are built by it (not by the
worker), a killed builder is restarted by the watchdog and builds again, and the builder dies
with the server (no orphan left behind after ``kill -9``)."""
from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx


def _pids(pattern: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if pattern in cmd:
            out.append(int(d.name))
    return out


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.split(") ", 1)[1][0] != "Z"


def _wait(pred, timeout: float = 20.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def _catalog(base: str, secret: dict) -> None:
    r = httpx.post(f"{base}/v1/catalog/products", headers=secret, timeout=30,
                   json=[{"id": f"p{i}", "title": f"Product {i}", "price": 10 + i} for i in range(5)])
    assert r.status_code == 200, r.text


def test_builder_builds_restarts_and_dies_with_the_server(start_server, tenant, data_dir):
    srv = start_server()
    base = f"http://127.0.0.1:{srv.port}"
    secret = {"authorization": f"Bearer {tenant['secret_key']}"}
    _catalog(base, secret)
    pattern = f"server.builder --data-dir {data_dir}"
    builders = _pids(pattern)
    assert len(builders) == 1, builders

    r = httpx.post(f"{base}/v1/engine/rebuild?wait=1", headers=secret, timeout=60)
    assert r.status_code == 200, r.text
    st = r.json()
    assert st["builder"] == "process" and st["model"]["dataset"]["items"] == 5 and st["loaded"] >= 1

    os.kill(builders[0], signal.SIGKILL)
    assert _wait(lambda: [p for p in _pids(pattern) if p != builders[0] and _alive(p)]), srv.log()
    r = httpx.post(f"{base}/v1/engine/rebuild?wait=1", headers=secret, timeout=60)
    assert r.status_code == 200 and r.json()["model"] is not None, r.text
    assert "sidecar died; restarting it" in srv.log()

    new = [p for p in _pids(pattern) if _alive(p)]
    os.kill(srv.pid, signal.SIGKILL)
    assert _wait(lambda: not any(_alive(p) for p in new)), "the builder outlived a kill -9 of its server"
