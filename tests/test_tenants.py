"""Tenants: slugs that cannot escape the data dir, keys, origins, rotation, deletion (CLI + registry)."""
from __future__ import annotations

import json
import os

import pytest
from click.testing import CliRunner

from server.cli import main
from server.tenants import TenantError, TenantRegistry, hash_secret, normalize_origin

BAD_SLUGS = ["../evil", "..", "a/b", "a\\b", "/etc/passwd", "tenant.db", "UPPER", "-lead", "x", "a" * 42, "con",
             "shop\x00", "shop%2f..", "sh op", "한글", "a--b", ""]


@pytest.mark.parametrize("slug", BAD_SLUGS)
def test_slug_traversal_is_refused(tmp_path, slug):
    reg = TenantRegistry(tmp_path)
    with pytest.raises(TenantError):
        reg.create(slug)
    with pytest.raises(TenantError):
        reg.shard_path(slug)
    assert sorted(os.listdir(tmp_path)) == ["control.db", "control.db-shm", "control.db-wal", "tenants"]
    assert os.listdir(tmp_path / "tenants") == []


def test_keys_and_origins(tmp_path):
    reg = TenantRegistry(tmp_path)
    t, secret = reg.create("shop-1", ["https://Shop.Example:443/some/path", "http://localhost:8080"])
    assert t.origins == ("http://localhost:8080", "https://shop.example")
    assert t.site_key.startswith("pk_") and secret.startswith("sk_")
    assert secret not in (tmp_path / "control.db").read_bytes().decode("latin-1")
    assert reg.by_secret_key(secret).slug == "shop-1"
    assert reg.by_site_key(t.site_key).slug == "shop-1"
    assert t.origin_allowed("https://shop.example") and not t.origin_allowed("https://shop.example.evil.com")
    assert not t.origin_allowed(None)
    with pytest.raises(TenantError):
        reg.create("shop-1")
    with pytest.raises(TenantError):
        normalize_origin("javascript:alert(1)")


def test_rotation_invalidates_old_keys(tmp_path):
    reg = TenantRegistry(tmp_path)
    t, secret = reg.create("shop")
    t2, secret2 = reg.rotate("shop")
    assert reg.by_secret_key(secret) is None and reg.by_site_key(t.site_key) is None
    assert reg.by_secret_key(secret2).slug == "shop" and reg.by_site_key(t2.site_key).slug == "shop"
    t3, none = reg.rotate("shop", secret=False)
    assert none is None and reg.by_secret_key(secret2).slug == "shop" and t3.site_key != t2.site_key


def test_other_process_changes_are_seen(tmp_path):
    a = TenantRegistry(tmp_path, cache_s=0)
    b = TenantRegistry(tmp_path, cache_s=0)
    t, secret = a.create("shop")
    assert b.by_site_key(t.site_key).slug == "shop"
    a.delete("shop")
    assert b.by_site_key(t.site_key) is None


def run(args, data_dir):
    r = CliRunner().invoke(main, [*args, "--data-dir", str(data_dir), "--json"])
    return r.exit_code, json.loads(r.output) if r.output.strip().startswith("{") else r.output


def test_cli_tenant_lifecycle(tmp_path):
    code, created = run(["tenant", "create", "shop", "--origin", "https://shop.example", "--currency", "krw", "--locale", "ko"], tmp_path)
    assert code == 0 and created["secret_key"].startswith("sk_") and created["currency"] == "KRW"
    code, listed = run(["tenant", "list"], tmp_path)
    assert [t["slug"] for t in listed["tenants"]] == ["shop"] and "secret_key" not in listed["tenants"][0]
    code, rotated = run(["tenant", "rotate", "shop"], tmp_path)
    assert rotated["site_key"] != created["site_key"] and rotated["secret_key"] != created["secret_key"]
    code, origins = run(["tenant", "origins", "shop", "https://a.example", "https://b.example"], tmp_path)
    assert origins["origins"] == ["https://a.example", "https://b.example"]
    code, out = run(["tenant", "set", "shop", "--test-mode"], tmp_path)
    assert out["test_mode"] is True
    code, bad = run(["tenant", "create", "../../etc"], tmp_path)
    assert code == 1 and bad["ok"] is False and "invalid tenant slug" in bad["error"]
    code, refused = run(["tenant", "delete", "shop"], tmp_path)
    assert code == 2 and "--yes" in refused["error"]


def test_delete_removes_all_data(tmp_path, app, client, make_tenant):
    """Deleted by another process (the CLI) while the server runs: its data goes, and the server,
    even before its tenant cache expires, does not re-create the shard."""
    from tests.helpers import ev
    import json as _json
    t = make_tenant("gone")
    client.post("/v1/events", content=_json.dumps({"site_key": t.site_key, "events": [ev()]}))
    data = app.state.settings.data_dir
    assert (data / "tenants" / "gone.db").exists()
    code, out = run(["tenant", "delete", "gone", "--yes"], data)
    assert code == 0 and out["deleted"] == "gone"
    assert not any(p.name.startswith("gone.") for p in (data / "tenants").iterdir())
    r = client.post("/v1/events", content=_json.dumps({"site_key": t.site_key, "events": [ev()]}))
    assert r.status_code == 401 and r.json()["error"] == "unknown_key"
    assert not (data / "tenants" / "gone.db").exists()
