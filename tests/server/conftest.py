"""Real-server tests: ``python -m server serve`` in its own process on a free port.

Fixtures:
  data_dir      a fresh data folder with one test-mode tenant ``dur`` (no origins: any origin)
  tenant        that tenant's ``tenant create --json`` output (site_key, secret_key, ...)
  start_server  ``start_server(workers=1, port=None)`` starts ``funnelrec serve`` on ``data_dir``
                with rate limiting off, waits for /healthz (and fails with the server's log if it
                does not come up); every server started is stopped at the end of the test.

The process helper is ``bench/common.py``'s ``ServerProcess`` (also used by ``bench/ingest.py``).
"""
from __future__ import annotations

import os

import pytest

from bench.common import ServerProcess, create_tenant, free_port, funnelrec_cmd


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/server/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.server)


@pytest.fixture
def server_env(tmp_path):
    data = tmp_path / "data"
    env = {**os.environ, "FUNNELREC_DATA_DIR": str(data), "FUNNELREC_RATE_LIMIT_RPS": "0",
           "FUNNELREC_LOG_LEVEL": "warning", "OPENBLAS_NUM_THREADS": "1"}
    return env


@pytest.fixture
def data_dir(tmp_path, server_env):
    return tmp_path / "data"


@pytest.fixture
def tenant(data_dir, server_env):
    return create_tenant(data_dir, "dur", env=server_env)


@pytest.fixture
def start_server(data_dir, server_env, tenant):
    started: list[ServerProcess] = []

    def start(workers: int = 1, port: int | None = None) -> ServerProcess:
        port = port or free_port()
        cmd = funnelrec_cmd("serve", "--port", str(port), "--workers", str(workers), "--data-dir", str(data_dir))
        srv = ServerProcess(cmd, port, env=server_env, name=f"serve-w{workers}")
        started.append(srv)
        return srv.start(timeout=30)

    yield start
    for srv in started:
        srv.stop()
