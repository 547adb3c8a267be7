"""Settings documented, the one error shape, health, metrics, logs without secrets."""
from __future__ import annotations

import os
import json
import logging
from dataclasses import fields
from pathlib import Path

import pytest

from server.config import Settings, settings_markdown
from tests.helpers import ev

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_documented_with_its_default():
    doc = (ROOT / "docs" / "settings.md").read_text(encoding="utf-8")
    assert doc == settings_markdown(), "docs/settings.md is stale: python -m server.config > docs/settings.md"
    for f in fields(Settings):
        assert f.metadata.get("help"), f"setting {f.name} has no help text"
        assert f"FUNNELREC_{f.name.upper()}" in doc


def test_settings_from_env_cast_and_fail_loudly(tmp_path):
    s = Settings.from_env(env={"FUNNELREC_PORT": "9000", "FUNNELREC_DEBUG": "yes", "FUNNELREC_DATA_DIR": str(tmp_path)})
    assert s.port == 9000 and s.debug is True and s.data_dir == tmp_path
    with pytest.raises(SystemExit, match="FUNNELREC_PORT"):
        Settings.from_env(env={"FUNNELREC_PORT": "eighty"})
    assert Settings().host == "127.0.0.1"  # loopback by default


def metric(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_health_and_metrics(client, shop):
    assert client.get("/healthz").json() == {"ok": True, "status": "healthy", "tenants": 1, "pid": os.getpid()}
    names = ['funnelrec_events_accepted_total{tenant="shop"}',
             'funnelrec_events_rejected_total{reason="invalid",tenant="shop"}',
             'funnelrec_events_dropped_total{reason="bot_user_agent",tenant="shop"}']
    before = client.get("/metrics").text  # counters are per process: compare deltas
    client.post("/v1/events", content=json.dumps({"site_key": shop.site_key, "events": [ev(), {"type": "x"}]}))
    client.post("/v1/events", content=json.dumps({"site_key": shop.site_key, "events": [ev()]}),
                headers={"user-agent": "curl/8.0"})
    text = client.get("/metrics").text
    assert [metric(text, n) - metric(before, n) for n in names] == [1.0, 1.0, 1.0]
    assert "funnelrec_request_seconds_bucket" in text and "funnelrec_writer_queue_depth" in text


def test_unhandled_errors_use_the_error_shape_without_traceback(app, shop):
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def boom(request):
        raise RuntimeError("secret internals")

    app.router.routes.append(Route("/boom", boom))
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/boom")
    assert r.status_code == 500
    assert r.json() == {"ok": False, "status": 500, "error": "internal_error", "message": "internal server error"}


def test_logs_never_carry_keys(client, shop, caplog):
    from server.logs import JsonFormatter

    with caplog.at_level(logging.INFO, logger="funnelrec"):
        client.post("/v1/events", content=json.dumps({"site_key": shop.site_key, "events": [ev()]}),
                    headers={"origin": "https://evil.example"})
        client.get("/v1/catalog/stats", headers={"authorization": "Bearer " + shop.secret_key + "x"})
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert any('"status": 403' in line for line in lines)
    assert not any(shop.site_key in line or shop.secret_key in line for line in lines)


def test_hot_paths_keep_the_error_shape_cors_and_metrics(client, shop, monkeypatch):
    """/v1/events and /v1/recommend skip the router (server/app.py HotPaths): an unexpected
    error is still the one JSON error shape (500) with CORS, and the latency metric counts them."""
    from server import metrics
    from server.ingest import handler

    def boom(*a, **kw):
        raise RuntimeError("boom")
    monkeypatch.setattr(handler, "validate", boom)
    def count():
        return sum(m.value for f in metrics.REGISTRY.collect() if f.name == "funnelrec_request_seconds"
                   for m in f.samples if m.name.endswith("_count") and m.labels.get("route") == "/v1/events")
    before = count()
    r = client.post("/v1/events", json={"site_key": shop.site_key, "events": [{"id": "x"}]})
    assert r.status_code == 500 and r.json()["error"] == "internal_error" and "boom" not in r.text
    assert r.headers["access-control-allow-origin"] == "https://shop.example"
    r = client.post("/v1/recommend", json={"site_key": "nope", "slots": [{"id": "a"}]})
    assert r.status_code == 401 and r.json()["error"] == "unknown_key"
    assert count() == before + 1
