"""``setup_demo``: creates the demo tenant and imports the committed demo data, idempotently."""
from __future__ import annotations

import gzip
import json
import sqlite3

from server.config import Settings
from server.demo import DEMO_DATA, META_KEY, setup_demo
from server.tenants import TenantRegistry


def _lines(path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _settings(tmp_path) -> Settings:
    return Settings.from_env(env={}, data_dir=tmp_path / "data", sqlite_synchronous="NORMAL")


def test_setup_demo_imports_committed_data_once(tmp_path):
    products = _lines(DEMO_DATA / "products.ndjson.gz")
    events = _lines(DEMO_DATA / "events.ndjson.gz")
    assert 3000 <= len(products) <= 4500
    assert all(p["currency"] == "GBP" and p["title"] and p["category"] for p in products)
    assert all(e["type"] == "purchase" and e["lines"] for e in events)
    n_lines = sum(len({l["product"] for l in e["lines"]}) for e in events)

    messages: list[str] = []
    s = _settings(tmp_path)
    first = setup_demo(s, messages.append)
    assert first["created"] is True
    assert first["secret_key"].startswith("sk_") and first["site_key"].startswith("pk_")
    assert first["imported"]["products"] == {"read": len(products), "stored": len(products), "duplicates": 0, "rejected": 0}
    assert first["imported"]["events"] == {"read": len(events), "stored": len(events), "duplicates": 0, "rejected": 0}
    assert (first["products"], first["events"], first["order_lines"]) == (len(products), len(events), n_lines)
    from server.builder import models_dir
    assert (models_dir(s, "demo") / "active").exists()  # the builder process builds it at start

    second = setup_demo(s, messages.append)
    assert second["created"] is False
    assert "secret_key" not in second and "tenant rotate demo" in second["secret_note"]
    assert second["site_key"] == first["site_key"]
    assert second["imported"] == "already"
    assert (second["products"], second["events"], second["order_lines"]) == (len(products), len(events), n_lines)

    reg = TenantRegistry(s.data_dir)
    t = reg.require("demo")
    assert (t.test_mode, t.currency, t.locale, t.origins) == (True, "GBP", "en", ())
    assert len(reg.all()) == 1
    reg.close()


def test_setup_demo_reimport_is_idempotent(tmp_path):
    """With the marker gone (e.g. changed data files), a re-import adds nothing twice."""
    data = tmp_path / "demo_data"
    data.mkdir()
    for name, n in (("products.ndjson.gz", 40), ("events.ndjson.gz", 25)):
        rows = _lines(DEMO_DATA / name)[:n]
        with gzip.open(data / name, "wt", encoding="utf-8") as f:
            f.writelines(json.dumps(r) + "\n" for r in rows)
    s = _settings(tmp_path)
    first = setup_demo(s, data=data)
    assert (first["products"], first["events"]) == (40, 25)
    shard = s.data_dir / "tenants" / "demo.db"
    with sqlite3.connect(shard) as conn:
        conn.execute("DELETE FROM meta WHERE key=?", (META_KEY,))
    again = setup_demo(s, data=data)
    assert again["imported"]["events"]["stored"] == 0
    assert again["imported"]["events"]["duplicates"] == 25
    assert (again["products"], again["events"], again["order_lines"]) == (40, 25, first["order_lines"])
    assert again["visitors"] == first["visitors"]
