"""The demo tenant: ``setup_demo(settings, echo)`` (used by ``funnelrec demo``).

Creates the tenant ``demo`` (test mode, GBP, English, any origin) when it does not exist, and
imports the committed demo data (``demo_shop/data/products.ndjson.gz`` and ``events.ndjson.gz``,
derived from the UCI Online Retail data set; see demo_shop/data/README.md) through the same
importer as ``funnelrec import``. Safe to run again: products are upserted, events are stored
once per id, and when the shard already holds this exact data (a hash of the files is kept in
the shard's ``meta`` table) the import is skipped altogether.
"""
from __future__ import annotations

import functools
import hashlib
import time
from pathlib import Path
from typing import Callable

from .catalog.importer import import_file
from .config import Settings
from .shards import Shard
from .tenants import TenantRegistry

SLUG = "demo"
DEMO_DATA = Path(__file__).resolve().parent.parent / "demo_shop" / "data"
FILES = (("products", "products.ndjson.gz"), ("events", "events.ndjson.gz"))
META_KEY = "demo_data_sha256"


def _data_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for _, name in FILES:
        h.update(name.encode())
        h.update((folder / name).read_bytes())
    return h.hexdigest()


def _counts(shard: Shard) -> dict:
    conn = shard.connect_read()
    try:
        return {
            "products": conn.execute("SELECT count(*) FROM products").fetchone()[0],
            "events": conn.execute("SELECT count(*) FROM events").fetchone()[0],
            "order_lines": conn.execute("SELECT count(*) FROM order_lines").fetchone()[0],
            "visitors": conn.execute("SELECT count(*) FROM visitors").fetchone()[0],
        }
    finally:
        conn.close()


def _meta_get(shard: Shard, key: str) -> str | None:
    conn = shard.connect_read()
    try:
        row = conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None
    finally:
        conn.close()


def _meta_set(key: str, value: str):
    return functools.partial(_meta_write, key, value)


def _meta_write(key: str, value: str, conn) -> None:
    """The writer job of ``_meta_set`` (module level: it pickles to the writer process)."""
    conn.execute("INSERT INTO meta (key, value) VALUES (?,?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
                 (key, value))


def setup_demo(settings: Settings, echo: Callable[[str], None] = lambda m: None, data: Path | None = None) -> dict:
    """Create (if needed) and fill the demo tenant; returns what a user needs to know."""
    data = Path(data) if data else DEMO_DATA
    missing = [name for _, name in FILES if not (data / name).is_file()]
    if missing:
        raise FileNotFoundError(f"demo data missing in {data}: {', '.join(missing)} "
                                "(regenerate with `python demo_shop/make_data.py`, see demo_shop/data/README.md)")
    registry = TenantRegistry(settings.data_dir, settings.tenant_cache_s)
    info: dict = {"tenant": SLUG}
    try:
        tenant = registry.get(SLUG)
        if tenant is None:
            echo(f"creating tenant {SLUG!r} (test mode, GBP, any origin)")
            tenant, secret = registry.create(SLUG, (), name="Demo shop", test_mode=True, currency="GBP", locale="en")
            info.update(created=True, secret_key=secret,
                        secret_note="shown only now; rotate it with `funnelrec tenant rotate demo`")
        else:
            info.update(created=False, secret_note="the secret key was shown when the demo tenant was created; "
                                                   "make a new one with `funnelrec tenant rotate demo`")
        info["site_key"] = tenant.site_key
        shard_path = registry.shard_path(SLUG)
    finally:
        registry.close()

    shard = Shard.open(SLUG, shard_path, settings)
    try:
        digest = _data_hash(data)
        if _meta_get(shard, META_KEY) == digest:
            echo("demo data already imported")
            info["imported"] = "already"
        else:
            started = time.perf_counter()
            imported = {}
            for kind, name in FILES:
                echo(f"importing demo {kind} from {name} ...")
                report = import_file(shard, kind, data / name)
                if report.rejected:
                    echo(f"  {report.rejected} {kind} rejected, e.g. {report.errors[:3]}")
                imported[kind] = {"read": report.read, "stored": report.stored,
                                  "duplicates": report.duplicates, "rejected": report.rejected}
            shard.write_sync(_meta_set(META_KEY, digest))
            info["imported"] = imported
            echo(f"imported demo data in {time.perf_counter() - started:.1f} s")
        info.update(_counts(shard))
    finally:
        shard.close_sync()
    # mark the tenant active for the builder process (server/builder.py): its model is built as
    # soon as the service starts, so the demo's first visitors do not see the cold-start list
    from .builder import models_dir
    folder = models_dir(settings, SLUG)
    folder.mkdir(exist_ok=True)
    (folder / "active").touch()
    info["data_dir"] = str(Path(settings.data_dir).resolve())
    return info
