"""The widget is served at its versioned URL, and so are earlier releases (old snippets keep working)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from starlette.testclient import TestClient

from server.app import create_app
from tests.helpers import make_settings

DIST = Path(__file__).resolve().parent.parent / "widget" / "dist"


def test_current_and_earlier_versions_are_served(tmp_path):
    dist = tmp_path / "dist"
    shutil.copytree(DIST, dist)
    (dist / "v" / "0.0.9-abcdef12.js").write_bytes(b"/* an earlier release */")
    current = json.loads((dist / "manifest.json").read_text())["version"]
    app = create_app(make_settings(tmp_path, widget_dir=dist))
    with TestClient(app) as c:
        r = c.get(f"/w/{current}/funnelrec.js")
        assert r.status_code == 200 and "immutable" in r.headers["cache-control"]
        assert r.content == (dist / "funnelrec.min.js").read_bytes()
        old = c.get("/w/0.0.9-abcdef12/funnelrec.js")
        assert old.status_code == 200 and old.content == b"/* an earlier release */"
        assert "immutable" in old.headers["cache-control"]
        for bad in ("0.0.1-nothere", "..%2F..%2Fmanifest", "..", "x" * 80):
            r = c.get(f"/w/{bad}/funnelrec.js")
            assert r.status_code == 404 and r.json()["error"] == "not_found"
        assert c.get("/w/funnelrec.js").headers["cache-control"] == "public, max-age=300"
