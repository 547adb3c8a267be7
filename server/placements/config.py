"""Per-tenant strategy configuration: validated, versioned in the shard, cached per process.

The document a merchant PUTs (``/v1/strategies``, secret key)::

    {"placements": {
        "detail_similar": {"sources": [{"recommender": "viewed_together", "weight": 1},
                                       {"recommender": "content_based", "weight": 0.5}],
                           "fallbacks": ["category_top", "best_sellers"],
                           "rules": {"max_per_brand": 2}},
        "main": {"variants": [{"name": "A", "share": 50},                      # the default
                              {"name": "B", "share": 50, "strategy": "cf_only",
                               "sources": [{"recommender": "item_cf", "weight": 1}]}]}},
     "note": "why this change"}

Each placement's keys override the built-in default of that placement (``defaults.py``), so a
partial strategy is fine; ``variants`` split visitors deterministically (crc32 of visitor and
placement) by ``share`` for A/B tests, each variant overriding the same way. Every PUT stores
a new version (table ``strategy_configs``); GET shows the stored and the effective config;
``rollback`` stores an old version again as the newest. Workers re-read the newest version at
most every ``CACHE_S`` seconds, so all processes follow within that time.
"""
from __future__ import annotations

import functools
import json
import re
import sqlite3
import time
import zlib
from typing import Any

import msgspec

from .. import rules as R
from ..recommenders import registry
from .defaults import ALIASES, DEFAULT_STRATEGIES, PLACEMENTS

CACHE_S = 2.0
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,40}$")
VARIANT_RE = re.compile(r"^[A-Za-z0-9_-]{1,16}$")
_STRATEGY_KEYS = {"strategy", "sources", "fallbacks", "rules", "scope_to_category"}


def _validate_strategy(s: Any, where: str, known: set[str]) -> list[str]:
    if not isinstance(s, dict):
        return [f"{where} must be an object"]
    errs = []
    for k in s:
        if k not in _STRATEGY_KEYS and k not in ("name", "share"):
            errs.append(f"{where}.{k}: unknown key; known: {', '.join(sorted(_STRATEGY_KEYS))}")
    if "strategy" in s and not (isinstance(s["strategy"], str) and NAME_RE.match(s["strategy"])):
        errs.append(f"{where}.strategy must be a name of lowercase letters, digits and _")
    if "sources" in s:
        src = s["sources"]
        if not isinstance(src, list) or not 1 <= len(src) <= 20:
            errs.append(f"{where}.sources must be a list of 1 to 20 sources")
        else:
            for n, x in enumerate(src):
                p = f"{where}.sources[{n}]"
                if not isinstance(x, dict) or set(x) - {"recommender", "weight", "params"}:
                    errs.append(f"{p} must be {{\"recommender\": name, \"weight\": number, \"params\": {{}}}}")
                    continue
                if x.get("recommender") not in known:
                    errs.append(f"{p}.recommender {x.get('recommender')!r} is not a recommender; known: {', '.join(sorted(known))}")
                w = x.get("weight", 1.0)
                if isinstance(w, bool) or not isinstance(w, (int, float)) or not 0 <= w <= 100:
                    errs.append(f"{p}.weight must be a number from 0 to 100")
                if "params" in x and not isinstance(x["params"], dict):
                    errs.append(f"{p}.params must be an object")
    if "fallbacks" in s:
        fb = s["fallbacks"]
        if not isinstance(fb, list) or len(fb) > 20:
            errs.append(f"{where}.fallbacks must be a list of at most 20 recommender names")
        else:
            for n, name in enumerate(fb):
                if name not in known:
                    errs.append(f"{where}.fallbacks[{n}] {name!r} is not a recommender; known: {', '.join(sorted(known))}")
    if "rules" in s:
        errs += R.validate_rules(s["rules"], f"{where}.rules")
    if "scope_to_category" in s and not isinstance(s["scope_to_category"], bool):
        errs.append(f"{where}.scope_to_category must be true or false")
    return errs


def validate(doc: Any) -> list[str]:
    """Problems of a strategy document (empty list: valid)."""
    if not isinstance(doc, dict):
        return ["the body must be a JSON object {\"placements\": {...}}"]
    errs = [f"{k}: unknown key; use placements and note" for k in doc if k not in ("placements", "note")]
    if "note" in doc and (not isinstance(doc["note"], str) or len(doc["note"]) > 500):
        errs.append("note must be a string of at most 500 characters")
    pl = doc.get("placements", {})
    if not isinstance(pl, dict) or len(pl) > 50:
        return errs + ["placements must be an object of at most 50 placements"]
    known = set(registry.names())
    for name, s in pl.items():
        where = f"placements.{name}"
        if not (isinstance(name, str) and NAME_RE.match(name)):
            errs.append(f"{where}: a placement name is lowercase letters, digits and _")
            continue
        if isinstance(s, dict) and "variants" in s:
            if set(s) != {"variants"}:
                errs.append(f"{where}: with variants, put every other key inside the variants")
            vs = s["variants"]
            if not isinstance(vs, list) or not 1 <= len(vs) <= 10:
                errs.append(f"{where}.variants must be a list of 1 to 10 variants")
                continue
            names = set()
            for n, v in enumerate(vs):
                p = f"{where}.variants[{n}]"
                if not isinstance(v, dict):
                    errs.append(f"{p} must be an object")
                    continue
                if not (isinstance(v.get("name"), str) and VARIANT_RE.match(v["name"])):
                    errs.append(f"{p}.name must be 1-16 letters, digits, _ or -")
                elif v["name"] in names:
                    errs.append(f"{p}.name {v['name']!r} is used twice")
                names.add(v.get("name"))
                share = v.get("share")
                if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 100:
                    errs.append(f"{p}.share must be a number from 0 to 100")
                errs += _validate_strategy(v, p, known)
            if not errs and sum(v["share"] for v in vs) <= 0:
                errs.append(f"{where}.variants: the shares add up to 0")
        else:
            if isinstance(s, dict) and ("name" in s or "share" in s):
                errs.append(f"{where}: name and share belong inside variants")
            errs += _validate_strategy(s, where, known)
    return errs


def effective(doc: dict | None) -> dict[str, list[dict]]:
    """placement -> list of variants (each a full strategy with name and share)."""
    out: dict[str, list[dict]] = {}
    tenant = (doc or {}).get("placements", {})
    for name in set(PLACEMENTS) | set(tenant):
        base = DEFAULT_STRATEGIES.get(name) or DEFAULT_STRATEGIES["main"]
        t = tenant.get(name)
        if t is None:
            out[name] = [{"name": "A", "share": 100, **base}]
        elif "variants" in t:
            out[name] = [{**base, **v} for v in t["variants"]]
        else:
            out[name] = [{"name": "A", "share": 100, **base, **t}]
        for v in out[name]:
            v.setdefault("strategy", name)
    return out


def choose_variant(variants: list[dict], who: str, placement: str) -> dict:
    return variants[_variant(variants, who, placement)]


def _variant(variants: list[dict], who: str, placement: str) -> int:
    """The index of ``who``'s variant: by crc32 of visitor and placement, split by ``share``."""
    if len(variants) == 1:
        return 0
    total = sum(v["share"] for v in variants)
    bucket = (zlib.crc32(f"{who}|{placement}".encode()) % 10_000) / 10_000 * total
    acc = 0.0
    for n, v in enumerate(variants):
        acc += v["share"]
        if bucket < acc:
            return n
    return len(variants) - 1


def resolve(cfg: dict[str, list[dict]], placement: str) -> tuple[str, list[dict]]:
    name = placement if placement in cfg else ALIASES.get(placement, placement)
    return name, cfg.get(name) or cfg["main"]


# -- storage ---------------------------------------------------------------------------
def current(conn: sqlite3.Connection) -> tuple[int, dict | None]:
    row = conn.execute("SELECT version, config FROM strategy_configs ORDER BY version DESC LIMIT 1").fetchone()
    return (row[0], json.loads(row[1])) if row else (0, None)


def versions(conn: sqlite3.Connection, limit: int = 100) -> list[dict]:
    return [{"version": v, "created_at": t, "note": n} for v, t, n in conn.execute(
        "SELECT version, created_at, note FROM strategy_configs ORDER BY version DESC LIMIT ?", (limit,))]


def store_job(doc: dict):
    """Writer job storing ``doc`` as the next version (a partial: it pickles to the writer process)."""
    return functools.partial(store_config, doc)


def store_config(doc: dict, conn: sqlite3.Connection) -> int:
    v = (conn.execute("SELECT max(version) FROM strategy_configs").fetchone()[0] or 0) + 1
    conn.execute("INSERT INTO strategy_configs (version, config, created_at, note) VALUES (?,?,?,?)",
                 (v, json.dumps(doc, ensure_ascii=False), int(time.time() * 1000), doc.get("note")))
    return v


def rollback_job(version: int):
    """Writer job re-storing ``version`` as the newest; raises LookupError when there is none."""
    return functools.partial(rollback_config, version)


def rollback_config(version: int, conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT config FROM strategy_configs WHERE version=?", (version,)).fetchone()
    if row is None:
        raise LookupError(version)
    doc = json.loads(row[0])
    doc["note"] = f"rollback to version {version}"
    return store_config(doc, conn)


_encode = msgspec.json.encode


class Pick:
    """One variant of one placement as requests use it, made once per config version
    (``Strategies.placement``): the resolved placement ``name``, the variant's ``strategy``
    dict, its ``rules`` merged over the defaults (``rules.merge(strategy["rules"])``, read-only),
    the ``label`` and ``variant`` that replies and served rows name, and ``reply``: the reply's
    JSON of the slot after its ``rec_id`` up to its items (``,"placement":...,"items":``)."""
    __slots__ = ("name", "strategy", "rules", "label", "variant", "reply")

    def __init__(self, placement: str, name: str, strategy: dict, rules: dict) -> None:
        self.name, self.strategy, self.rules = name, strategy, rules
        self.label, self.variant = strategy.get("strategy", name), strategy.get("name", "A")
        self.reply = b',"placement":%s,"strategy":%s,"variant":%s,"items":' % (
            _encode(placement), _encode(self.label), _encode(self.variant))


class Strategies:
    """A tenant's effective config (``effective``) at one version, with what requests derive
    of it per placement made once (``placement``): a request then only picks its variant."""
    __slots__ = ("version", "config", "_placements")
    PLACEMENTS_KEPT = 256   # (requests name any placement: unknown ones resolve to main)

    def __init__(self, version: int, config: dict[str, list[dict]]):
        self.version, self.config = version, config
        self._placements: dict[str, tuple] = {}

    def placement(self, placement: str) -> tuple[str, list[dict], list[Pick]]:
        """``resolve``'s name and variants of ``placement``, and each variant's ``Pick``."""
        hit = self._placements.get(placement)
        if hit is None:
            name, variants = resolve(self.config, placement)
            hit = (name, variants, [Pick(placement, name, v, R.merge(v.get("rules"))) for v in variants])
            if len(self._placements) >= self.PLACEMENTS_KEPT:
                self._placements.clear()
            self._placements[placement] = hit
        return hit

    def choose(self, placement: str, who: str) -> Pick:
        """``who``'s variant of ``placement`` (``choose_variant``) as its ``Pick`` (a placement
        already made read here: one call less per slot)."""
        name, variants, picks = self._placements.get(placement) or self.placement(placement)
        return picks[_variant(variants, who, name)] if len(picks) > 1 else picks[0]


class ConfigCache:
    """Per process: tenant -> its ``Strategies`` (version, effective config), re-read at most every CACHE_S."""

    def __init__(self, ttl: float = CACHE_S):
        self.ttl = ttl
        self._c: dict[str, tuple[float, Strategies]] = {}

    def get(self, slug: str, conn: sqlite3.Connection) -> tuple[int, dict]:
        st = self.strategies(slug, conn)
        return st.version, st.config

    def strategies(self, slug: str, conn: sqlite3.Connection) -> Strategies:
        hit = self._c.get(slug)
        now = time.monotonic()
        if hit is not None and now - hit[0] < self.ttl:
            return hit[1]
        try:
            version, doc = current(conn)
        except sqlite3.OperationalError:  # shard not migrated yet by this version
            version, doc = 0, None
        if hit is not None and hit[1].version == version:
            self._c[slug] = (now, hit[1])
            return hit[1]
        st = Strategies(version, effective(doc))
        self._c[slug] = (now, st)
        return st

    def invalidate(self, slug: str) -> None:
        self._c.pop(slug, None)
