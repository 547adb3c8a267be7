"""Shared test helpers (fixtures are in conftest.py)."""
from __future__ import annotations

import time
import uuid

from server.config import Settings

ORIGIN = "https://shop.example"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def make_settings(tmp_path, **kw) -> Settings:
    kw.setdefault("rate_limit_rps", 0.0)
    kw.setdefault("ranker_enabled", False)  # the ranker hook is per process; its own tests cover it
    return Settings.from_env(env={}, data_dir=tmp_path / "data", **kw)


class TenantKeys:
    def __init__(self, tenant, secret):
        self.tenant = tenant
        self.slug = tenant.slug
        self.site_key = tenant.site_key
        self.secret_key = secret
        self.auth = {"authorization": f"Bearer {secret}"}


def ev(type_="page_view", **fields) -> dict:
    """A valid event of ``type_`` with fresh ids; fields override."""
    base = {"id": uuid.uuid4().hex, "type": type_, "visitor": "v1", "session": "s1", "ts": int(time.time() * 1000)}
    defaults = {
        "page_view": {"page": "main"},
        "engagement": {"page": "detail", "product": "p1", "engaged_ms": 12000, "scroll_pct": 60},
        "search": {"query": "mug", "results": 3},
        "add_to_cart": {"product": "p1", "quantity": 1, "price": 9.5, "currency": "GBP"},
        "remove_from_cart": {"product": "p1"},
        "purchase": {"order": "o-" + uuid.uuid4().hex[:8], "lines": [{"product": "p1", "quantity": 2, "price": 9.5}]},
        "rec_impression": {"rec_id": "r_1", "product": "p1"},
        "rec_click": {"rec_id": "r_1", "product": "p1"},
        "review": {"product": "p1", "rating": 5, "text": "좋아요"},
        "visit_start": {},
        "visit_end": {"duration_ms": 60000},
        "checkout": {"lines": [{"product": "p1"}]},
    }
    base.update(defaults.get(type_, {}))
    base.update(fields)
    return base


def count(app, slug, sql="SELECT count(*) FROM events", args=()):
    t = app.state.registry.get(slug)
    conn = app.state.shards.get(t).connect_read()
    try:
        return conn.execute(sql, args).fetchone()[0]
    finally:
        conn.close()
