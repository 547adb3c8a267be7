"""The control database: tenants, their keys and allowed origins.

One small SQLite file (``<data_dir>/control.db``) lists the tenants. A tenant has
- a public *site key* (``pk_...``) that goes into the merchant's snippet; it may only send
  events and read recommendations, and only from the tenant's allowed origins;
- a *secret key* (``sk_...``) for the server-to-server API and the admin; only its SHA-256
  is stored (the key is random and long, so a slow hash adds nothing) and it is shown once.

Slugs are validated (``^[a-z0-9][a-z0-9-]{1,40}$``) so that no name can leave the data
directory. Every worker keeps an in-memory copy of the tenant list and re-reads it when the
control database's ``data_version`` says another connection changed it.
"""
from __future__ import annotations

import hashlib
import json
import re
import secrets
import shutil
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable
from urllib.parse import urlsplit

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{1,40}$")
RESERVED_SLUGS = {"control", "con", "nul", "prn", "aux"}


class TenantError(ValueError):
    pass


@dataclass(frozen=True)
class Tenant:
    slug: str
    name: str
    site_key: str
    secret_hash: str
    origins: tuple[str, ...]
    test_mode: bool
    honor_dnt: bool
    currency: str
    locale: str
    created_at: int
    settings: dict = field(default_factory=dict, compare=False, hash=False)

    def origin_allowed(self, origin: str | None) -> bool:
        """An empty origin list allows any origin (development); otherwise exact match."""
        if not self.origins:
            return True
        if not origin:
            return False
        # browsers send origins already normalised: the exact test almost always decides
        return origin in self.origins or normalize_origin(origin, strict=False) in self.origins

    @property
    def timezone(self) -> str:
        """The shop's time zone (IANA name) for visit-time context: ``server/localtime.py``."""
        return self.settings.get("timezone") or "UTC"

    def public(self) -> dict:
        return {
            "slug": self.slug,
            "name": self.name,
            "site_key": self.site_key,
            "origins": list(self.origins),
            "test_mode": self.test_mode,
            "honor_dnt": self.honor_dnt,
            "currency": self.currency,
            "locale": self.locale,
            "timezone": self.timezone,
            "created_at": self.created_at,
        }


def validate_slug(slug: str) -> str:
    if not isinstance(slug, str) or not SLUG_RE.match(slug) or slug in RESERVED_SLUGS or "--" in slug:
        raise TenantError(
            f"invalid tenant slug {slug!r}: use 2-41 lowercase letters, digits and single hyphens, starting with a letter or digit"
        )
    return slug


def _valid_timezone(name: str) -> str:
    from .localtime import LocalTimeError, zone
    try:
        zone(name)
    except LocalTimeError as exc:
        raise TenantError(str(exc)) from None
    return name


def normalize_origin(origin: str, strict: bool = True) -> str:
    """``https://Shop.example:443/path`` -> ``https://shop.example``."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        if strict:
            raise TenantError(f"invalid origin {origin!r}: expected http(s)://host[:port]")
        return ""
    host = parts.hostname.lower()
    port = parts.port
    default = {"http": 80, "https": 443}[parts.scheme]
    if port and port != default:
        return f"{parts.scheme}://{host}:{port}"
    return f"{parts.scheme}://{host}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_site_key() -> str:
    return "pk_" + secrets.token_urlsafe(18)


def new_secret_key() -> str:
    return "sk_" + secrets.token_urlsafe(32)


SCHEMA = """
CREATE TABLE IF NOT EXISTS tenants (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    site_key TEXT NOT NULL UNIQUE,
    secret_hash TEXT NOT NULL UNIQUE,
    origins TEXT NOT NULL DEFAULT '[]',
    test_mode INTEGER NOT NULL DEFAULT 0,
    honor_dnt INTEGER NOT NULL DEFAULT 1,
    currency TEXT NOT NULL DEFAULT 'USD',
    locale TEXT NOT NULL DEFAULT 'en',
    settings TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL
);
"""


class TenantRegistry:
    """Reads and writes the control database. Safe to share between threads."""

    def __init__(self, data_dir: Path | str, cache_s: float = 2.0):
        self.data_dir = Path(data_dir)
        self.shard_dir = self.data_dir / "tenants"
        self.path = self.data_dir / "control.db"
        self.cache_s = cache_s
        self._lock = threading.Lock()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.shard_dir.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=10)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)
        self._by_slug: dict[str, Tenant] = {}
        self._by_site: dict[str, Tenant] = {}
        self._by_secret: dict[str, Tenant] = {}
        self._version: int | None = None
        self._checked = 0.0
        self._reload()

    # -- reading -------------------------------------------------------------------------
    def _reload(self) -> None:
        rows = self._conn.execute(
            "SELECT slug, name, site_key, secret_hash, origins, test_mode, honor_dnt, currency, locale, created_at, settings FROM tenants"
        ).fetchall()
        by_slug = {}
        for r in rows:
            t = Tenant(
                slug=r[0], name=r[1], site_key=r[2], secret_hash=r[3], origins=tuple(json.loads(r[4])),
                test_mode=bool(r[5]), honor_dnt=bool(r[6]), currency=r[7], locale=r[8], created_at=r[9],
                settings=json.loads(r[10] or "{}"),
            )
            by_slug[t.slug] = t
        self._by_slug = by_slug
        self._by_site = {t.site_key: t for t in by_slug.values()}
        self._by_secret = {t.secret_hash: t for t in by_slug.values()}
        self._version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        self._checked = time.monotonic()

    def _fresh(self) -> None:
        if time.monotonic() - self._checked < self.cache_s:
            return
        with self._lock:
            v = self._conn.execute("PRAGMA data_version").fetchone()[0]
            if v != self._version:
                self._reload()
            else:
                self._checked = time.monotonic()

    def by_site_key(self, key: str) -> Tenant | None:
        self._fresh()
        return self._by_site.get(key)

    def by_secret_key(self, key: str) -> Tenant | None:
        self._fresh()
        return self._by_secret.get(hash_secret(key))

    def get(self, slug: str) -> Tenant | None:
        self._fresh()
        return self._by_slug.get(slug)

    def require(self, slug: str) -> Tenant:
        validate_slug(slug)
        with self._lock:
            self._reload()
        t = self._by_slug.get(slug)
        if t is None:
            raise TenantError(f"no tenant {slug!r}")
        return t

    def all(self) -> list[Tenant]:
        with self._lock:
            self._reload()
        return sorted(self._by_slug.values(), key=lambda t: t.slug)

    def shard_path(self, slug: str) -> Path:
        validate_slug(slug)
        path = (self.shard_dir / f"{slug}.db").resolve()
        if path.parent != self.shard_dir.resolve():  # belt and braces on top of the slug pattern
            raise TenantError(f"invalid tenant slug {slug!r}")
        return path

    # -- writing -------------------------------------------------------------------------
    def create(
        self,
        slug: str,
        origins: Iterable[str] = (),
        name: str | None = None,
        test_mode: bool = False,
        honor_dnt: bool = True,
        currency: str = "USD",
        locale: str = "en",
        timezone: str | None = None,
    ) -> tuple[Tenant, str]:
        """Create a tenant; returns it and its secret key (the only time the key is known)."""
        validate_slug(slug)
        settings = {"timezone": _valid_timezone(timezone)} if timezone else {}
        normalized = sorted({normalize_origin(o) for o in origins})
        secret = new_secret_key()
        with self._lock:
            try:
                self._conn.execute(
                    "INSERT INTO tenants (slug, name, site_key, secret_hash, origins, test_mode, honor_dnt, currency, locale,"
                    " created_at, settings) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (slug, name or slug, new_site_key(), hash_secret(secret), json.dumps(normalized), int(test_mode),
                     int(honor_dnt), currency.upper(), locale, int(time.time()), json.dumps(settings)),
                )
            except sqlite3.IntegrityError:
                raise TenantError(f"tenant {slug!r} already exists") from None
            from .shards import create_shard_file

            create_shard_file(self.shard_path(slug))
            self._reload()
        return self._by_slug[slug], secret

    def rotate(self, slug: str, site: bool = True, secret: bool = True) -> tuple[Tenant, str | None]:
        self.require(slug)
        new_secret = new_secret_key() if secret else None
        with self._lock:
            if site:
                self._conn.execute("UPDATE tenants SET site_key=? WHERE slug=?", (new_site_key(), slug))
            if new_secret:
                self._conn.execute("UPDATE tenants SET secret_hash=? WHERE slug=?", (hash_secret(new_secret), slug))
            self._reload()
        return self._by_slug[slug], new_secret

    def update(self, slug: str, **changes) -> Tenant:
        t = self.require(slug)
        cols = []
        vals = []
        if changes.get("timezone") is not None:   # kept in the tenant's settings
            changes["settings"] = {**(changes.get("settings") or t.settings), "timezone": _valid_timezone(changes["timezone"])}
        changes.pop("timezone", None)
        for k, v in changes.items():
            if v is None:
                continue
            if k == "origins":
                v = json.dumps(sorted({normalize_origin(o) for o in v}))
            elif k in ("test_mode", "honor_dnt"):
                v = int(bool(v))
            elif k == "settings":
                v = json.dumps(v)
            elif k not in ("name", "currency", "locale"):
                raise TenantError(f"unknown tenant field {k!r}")
            cols.append(f"{k}=?")
            vals.append(v)
        if cols:
            with self._lock:
                self._conn.execute(f"UPDATE tenants SET {', '.join(cols)} WHERE slug=?", (*vals, slug))
                self._reload()
        return self._by_slug[slug]

    def delete(self, slug: str) -> None:
        """Remove the tenant and all of its data (the shard and its WAL files)."""
        self.require(slug)
        with self._lock:
            self._conn.execute("DELETE FROM tenants WHERE slug=?", (slug,))
            self._reload()
        base = self.shard_path(slug)
        for suffix in ("", "-wal", "-shm", "-journal"):
            p = Path(str(base) + suffix)
            if p.exists():
                p.unlink()
        models = self.shard_dir / f"{slug}.models"
        if models.is_dir():
            shutil.rmtree(models)

    def close(self) -> None:
        self._conn.close()
