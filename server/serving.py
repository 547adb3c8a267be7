"""Recommendations: ``POST /v1/recommend`` (site key) and the strategy API (secret key).

request -> tenant (site key + origin) -> the tenant's model (built by the builder process,
server/builder.py, or a background thread) -> live context (server/live.py: this visitor's
latest events and purchases, kept in memory and brought up to date from the shard on every
request, so an event stored a moment ago by any worker process shapes this answer) -> result
cache (keyed by the visitor's live-state version) -> per slot: placement strategy (variant) ->
candidates -> blend -> ranker -> rules -> fallbacks -> items with reasons -> one ``rec_id`` per
slot, the served lists stored in ``rec_served`` through the shard's writer without waiting for
the commit (group commit batches them; the response does not wait for disk).

State shared between worker processes is the shard (and the model files the builder writes):
each process loads the model, brings its live state up to date from the shard, and re-reads
the strategy config from it (at most every 2 s). Nothing is pinned to a process.

Secret API (``Authorization: Bearer sk_...``):
  GET  /v1/strategies            stored and effective strategies, registered recommenders
  PUT  /v1/strategies            validate and store a new version (body: placements document)
  GET  /v1/strategies/versions   the version history
  POST /v1/strategies/rollback   {"version": n}: store version n again as the newest
  GET  /v1/engine/status         the tenant's model: sizes, build time, failing recommenders
  POST /v1/engine/rebuild        start a rebuild now
"""
from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import gc
import itertools
import logging
import os
import sqlite3
import time
import weakref
from collections import OrderedDict
from typing import Optional

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import msgspec  # noqa: E402
import numpy as np  # noqa: E402
from starlette.requests import Request  # noqa: E402
from starlette.responses import Response  # noqa: E402
from starlette.routing import Route  # noqa: E402

from .auth import client_ip, cors_for, public_caller, secret_tenant  # noqa: E402
from .errors import ApiError  # noqa: E402
from .ingest.handler import read_body  # noqa: E402
from .placements import config as strategies  # noqa: E402
from .placements.blend import run_slot  # noqa: E402
from .placements.ranker import get_ranker  # noqa: E402
from .recommenders import registry  # noqa: E402
from .recommenders.base import Context  # noqa: E402
from .builder import RemoteModelStore  # noqa: E402
from .writer_client import RemoteWriter  # noqa: E402
from .recommenders.model import ModelStore, set_cache_sizes  # noqa: E402
from . import jit, rules as R  # noqa: E402
from .live import LiveState, live_context  # noqa: E402,F401  (live_context: the SQL reference)

log = logging.getLogger("funnelrec.serving")

MAX_SLOTS = 10
MAX_COUNT = 50

# -- request body ----------------------------------------------------------------------
# ``gc=False``: a request's body is a tree (no cycles), so the cyclic GC need not track its structs


class Page(msgspec.Struct, omit_defaults=True, gc=False):
    type: str = "main"
    product: Optional[str] = None
    category: Optional[str] = None
    query: Optional[str] = None
    cart: list[str] = []
    order: list[str] = []


class Slot(msgspec.Struct, gc=False):
    id: str
    placement: str = "main"
    count: int = 8
    exclude: list[str] = []
    rules: Optional[dict] = None


class Body(msgspec.Struct, gc=False):
    slots: list[Slot]
    site_key: Optional[str] = None
    visitor: Optional[str] = None
    session: Optional[str] = None
    user: Optional[str] = None
    locale: Optional[str] = None
    page: Page = msgspec.field(default_factory=Page)


_decode = msgspec.json.Decoder(Body).decode
_encode = msgspec.json.Encoder().encode
_pack = msgspec.msgpack.Encoder().encode


def _check(body: Body) -> None:
    if not body.slots:
        raise ApiError(400, "invalid_body", "`slots` must name at least one slot")
    if len(body.slots) > MAX_SLOTS:
        raise ApiError(400, "invalid_body", f"at most {MAX_SLOTS} slots per request")
    if max(len(body.visitor or ""), len(body.session or ""), len(body.user or ""), len(body.locale or "")) > 128:
        for name in ("visitor", "session", "user", "locale"):   # which one
            v = getattr(body, name)
            if v is not None and len(v) > 128:
                raise ApiError(400, "invalid_body", f"`{name}` is longer than 128 characters")
    p = body.page
    if len(p.cart) > 200 or len(p.order) > 500:
        raise ApiError(400, "invalid_body", "`page.cart` takes at most 200 and `page.order` 500 products")
    if len(body.slots) > 1 and len({s.id for s in body.slots}) != len(body.slots):
        raise ApiError(400, "invalid_body", "slot ids must be unique within a request")
    for s in body.slots:
        if not s.id or len(s.id) > 64:
            raise ApiError(400, "invalid_body", "every slot needs an `id` of 1-64 characters")
        if not 1 <= s.count <= MAX_COUNT:
            raise ApiError(400, "invalid_body", f"slot {s.id!r}: `count` must be 1 to {MAX_COUNT}")
        if len(s.exclude) > 1000:
            raise ApiError(400, "invalid_body", f"slot {s.id!r}: `exclude` takes at most 1000 products")
        if s.rules is not None:
            errs = R.validate_rules(s.rules, f"slots[{s.id}].rules")
            if errs:
                raise ApiError(400, "invalid_rules", "; ".join(errs[:10]))


# -- engine state (one per app) --------------------------------------------------------
class Engine:
    def __init__(self, settings):
        self.settings = settings
        self.shards = self.limiter = None  # the app's (``install``): one attribute look-up a request, not three
        self.first_wait_s = settings.engine_first_build_wait_s
        self.tick_s = settings.engine_tick_s
        if settings.sidecar("builder"):  # models built by the builder process (server/builder.py)
            self.models = RemoteModelStore(settings)
        else:
            self.models = ModelStore(rebuild_after_events=settings.engine_rebuild_after_events,
                                     rebuild_interval_s=settings.engine_rebuild_interval_s,
                                     max_events=settings.engine_max_events or None)
        set_cache_sizes(settings.engine_answer_cache_size, settings.engine_pool_cache_size)
        self.configs = strategies.ConfigCache()
        size = settings.engine_result_cache_size
        self.cache = ResultCache(size) if size > 0 else None
        self._shards: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()  # shard -> _ShardServing
        self._tick_task: asyncio.Task | None = None
        self.served = ServedLog()
        self.live_visitors = settings.live_visitors
        self.live_preload_events = settings.live_preload_events
        self.preloads: set = set()

    def shard_state(self, shard) -> "_ShardServing":
        """What this process keeps per open shard for its requests (one look-up a request): a
        read-only connection for the few indexed look-ups of a request (tens of microseconds
        each: cheaper inline than a thread hop) and the live state."""
        st = self._shards.get(shard)
        if st is None:
            st = self._shards[shard] = _ShardServing(shard.connect_read())
        return st


class _ShardServing:
    """Per open shard and process: the requests' read connection and, once a model serves,
    the live state (``_live``) and what requests read of the model (``_ModelServing``)."""
    __slots__ = ("conn", "live", "model", "__weakref__")

    def __init__(self, conn: sqlite3.Connection):
        self.conn, self.live, self.model = conn, None, None

    def serving(self, model, currency: str) -> "_ModelServing":
        """The ``_ModelServing`` of ``model`` in ``currency``: made anew when either changed."""
        m = self.model
        if m is None or m.model() is not model or m.currency != currency:
            m = self.model = _ModelServing(model, currency)
        return m


class _ModelServing:
    """What a request reads of one model in the tenant's currency, looked up once rather than
    per request: the slot encoder (``_ReplyParts.slot``) and the visit-time context of the
    current minute (``at``). The model itself is held weakly: a shard's requests may stop
    (an idle tenant) while a newer model replaces it."""
    __slots__ = ("model", "currency", "encode", "local", "minute", "hour_weekday")

    def __init__(self, model, currency: str):
        self.model, self.currency = weakref.ref(model), currency
        self.encode = _reply_parts(model.ds, currency).slot
        self.local = model.ds.local
        self.minute, self.hour_weekday = None, None

    def at(self, now_ms: int) -> tuple[int, int]:
        """``ds.local.at(now_ms)``, kept for the UTC minute when it is the same at both of its
        ends: a minute lies within one quarter of an hour, over which the offset is constant
        (``localtime``), so the local time grows with ``now_ms`` and the hour and weekday, steps
        of it, are the same throughout."""
        minute = now_ms // 60_000
        if minute != self.minute:
            first = self.local.at(minute * 60_000)
            if first != self.local.at(minute * 60_000 + 59_999):   # an hour ends within it
                return self.local.at(now_ms)
            self.minute, self.hour_weekday = minute, first
        return self.hour_weekday


def _engine(request: Request) -> Engine:
    return request.app.state.engine


# -- live context: server/live.py ----------------------------------------------------------
def _live(eng: "Engine", shard) -> LiveState:
    """The shard's live state in this process, made (and its warm start begun) on first use;
    a request then ``sync``s it."""
    held = eng.shard_state(shard)
    st = held.live
    if st is None:
        st = held.live = LiveState(eng.live_visitors)
        if eng.live_preload_events > 0:
            task = asyncio.get_running_loop().create_task(_preload(st, shard, eng.live_preload_events))
            eng.preloads.add(task)
            task.add_done_callback(eng.preloads.discard)
    return st


async def _preload(st: LiveState, shard, events: int) -> None:
    conn = shard.connect_read()  # its own connection: the requests' one stays free
    try:
        n = await st.preload(conn, events)
        log.info("live state preloaded", extra={"tenant": shard.slug, "visitors": n})
    except Exception as exc:  # a warm start is an optimisation: requests read visitors themselves
        log.warning("live state preload failed", extra={"tenant": shard.slug, "error": repr(exc)})
    finally:
        conn.close()


def _profile(conn: sqlite3.Connection, user: str | None) -> dict | None:
    if not user:
        return None
    row = conn.execute("SELECT gender, birth_year, age_band, interests, segment, attrs FROM users WHERE id=?", (user,)).fetchone()
    if row is None:
        return None
    import json
    return {"gender": row[0], "birth_year": row[1], "age_band": row[2], "interests": json.loads(row[3] or "[]"),
            "segment": row[4], "attrs": json.loads(row[5] or "{}")}


# -- result cache ------------------------------------------------------------------------
class ResultCache:
    """A small LRU of computed slot lists, per process. The key holds everything a result
    depends on: the model build, the config version, the page, the slots with their rules and
    chosen variants, the person, the visitor's live state (``LiveState.visit``) and session, and
    the hour. So a cached answer is what would be computed again within that hour; a new event
    of the visitor changes the live state and misses."""

    def __init__(self, size: int):
        self.size = size
        self._d: "OrderedDict[tuple, list]" = OrderedDict()
        self.hits = self.misses = 0

    def get(self, key):
        v = self._d.get(key)
        if v is None:
            self.misses += 1
            return None
        self._d.move_to_end(key)
        self.hits += 1
        return v

    def put(self, key, value) -> None:
        self._d[key] = value
        if len(self._d) > self.size:
            self._d.popitem(last=False)


def _ranker_token(model):
    """The version of the learned ranker serving this model, if one does (a new version must
    not be answered from results the blend or an older ranker ordered)."""
    token = getattr(get_ranker(), "cache_token", None)
    return token(model) if token else None


def _cache_key(slug, model, version, body: Body, picks: list, person: int, live_key: tuple, hour) -> bytes:
    """``picks``: the slots' variants (``config.Pick``); ``person``: ``model.ds.person(user, visitor)``; ``live_key``: the visitor's live state
    (``LiveState.visit``: new after each of its events; empty for a visitor without history, so
    new visitors share answers) with the session, which decides what counts as "in this session".
    One MessagePack string of it all (lengths and types spelled out, so two keys are equal only
    when every part is): bytes are no object of the cyclic GC's, where a tuple of tuples was ~6
    a fresh request kept as long as its entry (each counted and scanned by the young collections),
    and keep their hash for the ``put`` after the ``get``."""
    page = body.page
    token = getattr(get_ranker(), "cache_token", None)   # (``_ranker_token``, inline)
    return _pack((
        slug, id(model), model.built_at, version, token(model) if token else None, page.type, page.product, page.category,
        page.query, page.cart, page.order,
        [(s.id, p.name, p.strategy.get("name"), s.count, s.exclude, _encode(s.rules) if s.rules else None)
         for s, p in zip(body.slots, picks)],
        person, body.user, live_key, body.session if live_key else None, hour,
    ))  # ``hour``: the absolute hour (time windows, decay, move on) and the local one (visit-time context)


# -- recommendation ids -------------------------------------------------------------------
_REC_PREFIX = os.urandom(5).hex()  # per process: with the time and a counter, unique across processes
_rec_counter = itertools.count()


def new_rec_id(now_ms: int) -> str:
    """``r_`` + time (ms, hex) + this process's random prefix + a counter: unique without a
    system call per id (``uuid4`` reads the kernel's random source each time)."""
    return f"{_rec_head(now_ms)}{next(_rec_counter):x}"


def _rec_head(now_ms: int) -> str:
    """A request's recommendation ids up to the counter (``new_rec_id``): made once a request."""
    return f"r_{now_ms:x}{_REC_PREFIX}"


# -- cold start before the first model --------------------------------------------------
def _catalog_only(conn: sqlite3.Connection, count: int, exclude: set[str]) -> list[tuple]:
    rows = conn.execute("SELECT id, title, url, image, price, currency FROM products WHERE in_stock=1"
                        " ORDER BY created_at DESC, id LIMIT ?", (count + len(exclude) + 10,)).fetchall()
    return [r for r in rows if r[0] not in exclude][:count]


# -- the reply ---------------------------------------------------------------------------
def _build_heads(ds, currency: str) -> list[bytes]:
    """Every product's reply object encoded up to its reason (``{"id":...,"currency":...,"reason":``),
    in product order: a slot's items are then these bytes and the encoded reasons, the same bytes
    as encoding the item dicts without building them. Made for the whole catalog at once (~0.6 µs
    a product: ~2 ms for online-retail's 3,700) when the process builds or loads the model
    (``_warm_model``), so no request pays a product's first encode (~3 µs each)."""
    prices = [None if p != p else p for p in ds.price.tolist()]  # float64 -> float: the same number
    return [_encode({"id": i, "title": t, "url": u, "image": im, "price": p, "currency": c or currency,
                     "reason": ""})[:-3]  # up to the reason's value: drop ``""}``
            for i, t, u, im, p, c in zip(ds.item_ids, ds.title, ds.url, ds.image, prices, ds.currency)]


def _item_heads(ds, currency: str) -> list[bytes]:
    """Per dataset and tenant currency (``_build_heads``): dropped with the model at its next build."""
    return ds.derived("_serving_item_heads." + currency, lambda ds: _build_heads(ds, currency))


def _product_ids(ds) -> list[str]:
    """Per dataset: every product's id as a JSON string, in product order (a slot's product ids
    are then these joined: the same text as encoding the list of ids)."""
    return ds.derived("_serving_product_ids", lambda ds: [_encode(i).decode() for i in ds.item_ids])


def _warm_model(model, tenant) -> None:
    """What this process's requests read of a new model, made before it serves (in the thread
    that built or loaded it): the reply's product heads in the tenant's currency (a request
    with another currency, after a change, makes its own)."""
    if tenant is not None and model is not None:
        _reply_parts(model.ds, tenant.currency)


class _Tails(dict):
    """Per dataset: reason text -> its JSON string, the item's closing brace and the comma after
    it. Reasons repeat ("popular in the shop", "because you viewed X" for the products of the
    catalog): a look-up costs a fifth of an encode. A miss encodes (``__missing__``: so the
    slot's look-ups are one ``map`` in C). Bounded: emptied when it reaches REASONS_KEPT entries."""

    def __missing__(self, reason: str) -> bytes:
        if len(self) >= REASONS_KEPT:
            self.clear()
        tail = self[reason] = _encode(reason) + b"},"
        return tail


class _Sources(dict):
    """Per dataset: a slot's source names (a tuple) -> their JSON list (``rec_served.sources``).
    A strategy's slots name the same few sources in few orders: a look-up (the tuple's hash of
    its names' kept hashes, compared name by name, mostly the same objects) costs less than
    encoding and decoding. Bounded as ``_Tails``."""

    def __missing__(self, sources: tuple) -> str:
        if len(self) >= REASONS_KEPT:
            self.clear()
        text = self[sources] = _encode(sources).decode()
        return text


REASONS_KEPT = 20_000
_pairs = itertools.chain.from_iterable


class _ReplyParts:
    """What a slot's reply pieces are made of, per dataset and currency (``_reply_parts``): the
    products' heads (``_build_heads``), the reasons' tails (``_Tails``), the product ids as
    JSON strings (``_product_ids``) and the sources' lists (``_Sources``)."""
    __slots__ = ("head", "tail", "product_id", "sources")

    def __init__(self, ds, currency: str) -> None:
        self.head = _item_heads(ds, currency).__getitem__
        self.tail = ds.derived("_serving_reason_json", lambda ds: _Tails()).__getitem__
        self.product_id = _product_ids(ds).__getitem__
        self.sources = ds.derived("_serving_sources_json", lambda ds: _Sources()).__getitem__

    def slot(self, chosen: list) -> tuple:
        """A slot's (items as JSON, its product ids as a JSON list, its sources as one): the
        items the same bytes as encoding their dicts; each piece one pass in C over the slot.
        The items are the heads and tails joined in turn (no object per item: each tail ends
        with the comma after its item), the last comma dropped."""
        if not chosen:
            return _EMPTY_SLOT
        items, reasons, sources = zip(*chosen)   # chosen: (item, reason, source) each
        return (b"[%s]" % b"".join(_pairs(zip(map(self.head, items), map(self.tail, reasons))))[:-1],
                "[" + ",".join(map(self.product_id, items)) + "]", self.sources(sources))


_EMPTY_SLOT = (b"[]", "[]", "[]")


def _reply_parts(ds, currency: str) -> _ReplyParts:
    return ds.derived("_serving_reply." + currency, lambda ds: _ReplyParts(ds, currency))


def _encode_items(ds, chosen: list, currency: str) -> bytes:
    """A slot's items as the reply's JSON list (``_ReplyParts.slot``)."""
    return _reply_parts(ds, currency).slot(chosen)[0]


_raw_cors: dict = {}  # origin -> its raw CORS headers: a few origins per tenant


class _Reply(Response):
    """A 200 JSON reply with its raw headers made directly (the same headers, in the same order,
    as ``Response(body, media_type="application/json", headers=cors_for(origin))``)."""

    def __init__(self, body: bytes, origin: str | None) -> None:
        self.status_code = 200
        self.background = None
        self.body = body
        raw = _raw_cors.get(origin)
        if raw is None:
            if len(_raw_cors) >= 1024:  # any origin is allowed (a tenant without origins): bounded
                _raw_cors.clear()
            raw = _raw_cors[origin] = tuple([(k.lower().encode("latin-1"), v.encode("latin-1"))
                                             for k, v in cors_for(origin).items()])
        self.raw_headers = [*raw, (b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]


# -- the endpoint ----------------------------------------------------------------------
_NO_ITEMS = np.zeros(0, np.int32)
_NO_ITEMS.flags.writeable = False  # shared by the requests without a cart (or order)


# A request's ``Context`` is made with its fields in order (``_context``): a call with ~25
# keywords costs ~0.9 µs more than a positional one (each keyword matched to its parameter).
# Should the dataclass's fields be others (added, moved), the same positional call goes
# through their names instead: slower, never misassigned.
_CONTEXT_FIELDS = ("tenant", "visitor", "session", "user", "locale", "page_type", "placement", "product", "item",
                   "category", "query", "cart", "cart_items", "order", "order_items", "recent", "bought", "person",
                   "profile", "now_ms", "clock_ms", "hour", "weekday", "params", "answers")


def _context_by_name(*values) -> Context:
    """``Context`` of the values in ``_CONTEXT_FIELDS``' order, by keyword."""
    return Context(**dict(zip(_CONTEXT_FIELDS, values)))


_context = Context if tuple(f.name for f in dataclasses.fields(Context)) == _CONTEXT_FIELDS else _context_by_name


def _items(item, products: list[str]) -> np.ndarray:
    """The dataset indices of ``products`` known to the model, in order (int32)."""
    if not products:
        return _NO_ITEMS
    return np.array([i for i in map(item, products) if i >= 0], np.int32)


async def recommend(request: Request) -> Response:
    eng = request.app.state.engine
    settings = eng.settings
    raw = await read_body(request, settings.max_body_bytes)
    try:
        body = _decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ApiError(400, "invalid_body", f"expected {{site_key, visitor, session, page, slots: [...]}}: {exc}")
    tenant, origin = public_caller(request, body.site_key)
    try:
        _check(body)
    except ApiError as exc:
        exc.headers.update(cors_for(origin))
        raise
    limiter = eng.limiter
    wait = limiter.check(tenant.slug, client_ip(request, settings.trust_forwarded_for)) if limiter.rate > 0 else 0.0
    if wait:
        retry = limiter.retry_after_header(wait)
        raise ApiError(429, "rate_limited", f"too many requests; retry after {retry} s",
                       headers={**cors_for(origin), "Retry-After": retry}, retry_after=int(retry))
    shard = eng.shards.get(tenant)
    model = eng.models.get(tenant.slug)
    if model is None:
        model = await eng.models.ensure(shard, eng.first_wait_s)
    served_by = eng.shard_state(shard)
    conn = served_by.conn
    now_ms = int(time.time() * 1000)
    strats = eng.configs.strategies(tenant.slug, conn)
    version = strats.version
    page = body.page
    currency = tenant.currency
    locale = body.locale or tenant.locale
    if model is None:  # first build still running: catalog only, newest first
        return _cold_start(eng, shard, conn, body, version, now_ms, currency, locale, origin)
    ds = model.ds
    live = served_by.live or _live(eng, shard)
    live.sync(conn)
    visitor = body.visitor
    live_key = live.visit(conn, visitor)
    who = visitor or body.session or ""
    choose = strats.choose
    slots = body.slots
    picks = [choose(slot.placement, who) for slot in slots]   # each slot's variant (config.Pick)
    serving = served_by.serving(model, currency)
    hour, weekday = serving.at(now_ms)   # visit-time context, in the tenant's time zone
    person = ds.person(body.user, visitor)
    key = hit = None
    if eng.cache is not None:
        key = _cache_key(tenant.slug, model, version, body, picks, person, live_key, (now_ms // 3_600_000, hour))
        hit = eng.cache.get(key)
    if hit is None:
        recent, bought, newest = live.context(conn, ds, visitor, body.session)
        item = ds.item
        ctx = _context(   # (in ``_CONTEXT_FIELDS``' order)
            tenant.slug, visitor, body.session, body.user, body.locale, page.type, "", page.product,
            item(page.product), page.category, page.query, page.cart, _items(item, page.cart),
            page.order, _items(item, page.order), recent, bought, person, _profile(conn, body.user), now_ms,
            max(ds.clock_ms, newest), hour, weekday, {}, {} if len(slots) > 1 else None,
        )
        page_seen: set[int] = set()
        hit = []   # each slot's (items, products, sources) in a row: one tuple a request to keep
        encode = serving.encode
        for slot, pick in zip(slots, picks):
            ctx.placement = pick.name
            if slot.rules or slot.exclude:
                rules = R.merge(pick.strategy.get("rules"), slot.rules, {"exclude": slot.exclude} if slot.exclude else None)
            else:   # the variant's own (``R.merge(strat.get("rules"))``, made once per config
                rules = pick.rules   # version), not a copy: run_slot never changes its rules (tested)
            # encoded once: the cached value is then bytes, which the cyclic GC never scans
            hit += encode(run_slot(model, ctx, pick.strategy, slot.count, rules, page_seen))
        hit = tuple(hit)  # a tuple of bytes and strings: the cyclic GC stops scanning it
        if key is not None:
            eng.cache.put(key, hit)
    # the reply's JSON made of its parts (each slot's from its pick's, ``Pick.reply``, and its
    # items): the bytes of encoding ``{"ok":..., "slots": {id: {"rec_id":..., ...}}}``
    rec_head = _rec_head(now_ms)
    served: list[tuple] = []
    out = [b'{"ok":true,"currency":%s,"locale":%s,"slots":{' % (_encode(currency), _encode(locale))]
    parts = iter(hit)
    for slot, pick, items, products, sources in zip(slots, picks, parts, parts, parts):
        rec_id = f"{rec_head}{next(_rec_counter):x}"
        out += (b'%s:{"rec_id":"%s"%s' % (_encode(slot.id), rec_id.encode(), pick.reply), items, b"},")
        served.append((rec_id, now_ms, visitor, body.session, body.user, page.type, slot.id, slot.placement,
                       pick.label, pick.variant, version, products, sources))
    out[-1] = b"}}}"   # (the last slot's closing brace, then the slots' and the reply's)
    eng.served.add(shard, served)
    return _Reply(b"".join(out), origin)   # (one copy of each slot's items)


def _cold_start(eng: Engine, shard, conn, body: Body, version: int, now_ms: int, currency, locale, origin) -> Response:
    """Before the tenant's first model: each slot the newest products in stock."""
    page = body.page
    out: dict[str, dict] = {}
    served: list[tuple] = []
    seen: set[str] = set(page.cart) | ({page.product} if page.product else set())
    for slot in body.slots:
        rows = _catalog_only(conn, slot.count, seen | set(slot.exclude))
        seen.update(r[0] for r in rows)
        rec_id = new_rec_id(now_ms)
        out[slot.id] = {"rec_id": rec_id, "placement": slot.placement, "strategy": "cold_start", "variant": "A",
                        "items": [{"id": r[0], "title": r[1], "url": r[2], "image": r[3], "price": r[4],
                                   "currency": r[5] or currency, "reason": "new arrival"} for r in rows]}
        served.append((rec_id, now_ms, body.visitor, body.session, body.user, page.type, slot.id, slot.placement,
                       "cold_start", "A", version, _encode([r[0] for r in rows]).decode(),
                       _encode(["cold_start"] * len(rows)).decode()))
    eng.served.add(shard, served)
    return _Reply(_encode({"ok": True, "currency": currency, "locale": locale, "slots": out}), origin)


_INSERT_SERVED = ("INSERT OR IGNORE INTO rec_served (rec_id, ts, visitor, session, user_id, page, slot, placement,"
                  " strategy, variant, config_version, products, sources) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")


class ServedLog:
    """Rows of ``rec_served`` gathered for ``FLUSH_S`` and written as one writer job: the
    response never waits for them, and the writer thread (and the GIL) sees ~20 jobs a second
    instead of one per request. Flushed at shutdown; a crash loses at most the last 50 ms."""
    FLUSH_S = 0.05

    def __init__(self) -> None:
        self.pending: dict = {}
        self.handle = None

    def add(self, shard, rows: list[tuple]) -> None:
        if not rows:
            return
        self.pending.setdefault(shard, []).extend(rows)
        if self.handle is None:
            self.handle = asyncio.get_running_loop().call_later(self.FLUSH_S, self.flush)

    def flush(self) -> None:
        self.handle = None
        pending, self.pending = self.pending, {}
        for shard, rows in pending.items():
            _store_served(shard, rows)


def insert_served(rows: list[tuple], conn: sqlite3.Connection) -> None:
    """The writer job storing served lists (module level: jobs may run in the writer process)."""
    conn.executemany(_INSERT_SERVED, rows)


def insert_packed_served(packed: bytes, conn: sqlite3.Connection) -> None:
    """``insert_served`` of rows sent to the writer process as one MessagePack array (``_pack_rows``):
    the rows' strings, ints and ``None``s come back as they were (each row a list)."""
    conn.executemany(_INSERT_SERVED, _unpack_rows(packed))


_pack_rows = _pack
_unpack_rows = msgspec.msgpack.Decoder(list[list]).decode


def _store_served(shard, rows: list[tuple]) -> None:
    """Submit to the shard's writer without awaiting: it joins the next group commit. To the
    writer process the rows go as one MessagePack blob: pickled as tuples they cost the worker
    ~1.0 µs a row and the writer ~0.9 to unpickle, packed ~0.4 and ~0.25 (a thread writer
    takes the list itself)."""
    if not rows:
        return
    try:
        writer = shard.writer
        if isinstance(writer, RemoteWriter):
            fut = writer.submit(functools.partial(insert_packed_served, _pack_rows(rows)))
        else:
            fut = writer.submit(functools.partial(insert_served, rows))
    except Exception as exc:
        log.error("storing served recommendations failed", extra={"error": repr(exc)})
        return
    fut.add_done_callback(_log_failed)


def _log_failed(fut) -> None:
    exc = fut.exception()
    if exc is not None:
        log.error("storing served recommendations failed", extra={"error": repr(exc)})


# -- secret API --------------------------------------------------------------------------
def _json(data, status: int = 200) -> Response:
    return Response(_encode(data), status_code=status, media_type="application/json")


async def get_strategies(request: Request) -> Response:
    tenant = secret_tenant(request)
    shard = request.app.state.shards.get(tenant)
    async with shard.read() as conn:
        cur = await conn.execute("SELECT version, config FROM strategy_configs ORDER BY version DESC LIMIT 1")
        row = await cur.fetchone()
    import json
    version, doc = (row[0], json.loads(row[1])) if row else (0, None)
    return _json({"ok": True, "version": version, "config": doc or {"placements": {}},
                  "effective": strategies.effective(doc), "recommenders": registry.names()})


async def put_strategies(request: Request) -> Response:
    tenant = secret_tenant(request)
    raw = await read_body(request, request.app.state.settings.max_body_bytes)
    try:
        doc = msgspec.json.decode(raw) if raw.strip() else None
    except msgspec.DecodeError as exc:
        raise ApiError(400, "invalid_body", f"not JSON: {exc}")
    errs = strategies.validate(doc)
    if errs:
        raise ApiError(400, "invalid_strategy", "; ".join(errs[:20]), problems=errs[:100])
    shard = request.app.state.shards.get(tenant)
    version = await shard.write(strategies.store_job(doc))
    _engine(request).configs.invalidate(tenant.slug)
    return _json({"ok": True, "version": version})


async def strategy_versions(request: Request) -> Response:
    tenant = secret_tenant(request)
    shard = request.app.state.shards.get(tenant)
    conn = shard.connect_read()
    try:
        return _json({"ok": True, "versions": strategies.versions(conn)})
    finally:
        conn.close()


async def rollback(request: Request) -> Response:
    tenant = secret_tenant(request)
    raw = await read_body(request, 4096)
    try:
        version = msgspec.json.decode(raw).get("version")
    except (msgspec.DecodeError, AttributeError):
        version = None
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ApiError(400, "invalid_body", "send {\"version\": n}")
    shard = request.app.state.shards.get(tenant)
    try:
        new = await shard.write(strategies.rollback_job(version))
    except LookupError:
        raise ApiError(404, "not_found", f"no strategy version {version}")
    _engine(request).configs.invalidate(tenant.slug)
    return _json({"ok": True, "version": new, "restored": version})


async def engine_status(request: Request) -> Response:
    tenant = secret_tenant(request)
    eng = _engine(request)
    return _json({"ok": True, **eng.models.status(tenant.slug), "registered": registry.names(),
                  "import_errors": registry.import_errors()})


async def engine_rebuild(request: Request) -> Response:
    tenant = secret_tenant(request)
    eng = _engine(request)
    fut = eng.models.schedule(request.app.state.shards.get(tenant), force=True)
    wait = request.query_params.get("wait") in ("1", "true")
    if wait and fut is not None:
        await asyncio.wrap_future(fut)
    return _json({"ok": True, "scheduled": fut is not None, **eng.models.status(tenant.slug)}, 202 if not wait else 200)


routes = [
    Route("/v1/recommend", recommend, methods=["POST"]),
    Route("/v1/strategies", get_strategies, methods=["GET"]),
    Route("/v1/strategies", put_strategies, methods=["PUT", "POST"]),
    Route("/v1/strategies/versions", strategy_versions, methods=["GET"]),
    Route("/v1/strategies/rollback", rollback, methods=["POST"]),
    Route("/v1/engine/status", engine_status, methods=["GET"]),
    Route("/v1/engine/rebuild", engine_rebuild, methods=["POST"]),
]


# Full (gen-2) collections: the loaded model is frozen out of them (``gc.freeze``), so what
# they scan is the caches and the live state (~15 ms a pass on the bench tenant); at CPython's
# default (every 10th gen-1 pass) they came every few seconds under fresh load, each a pause
# in the p99. Every 100th: cyclic garbage among long-lived objects waits longer (there is
# little: the caches and live state hold tuples, bytes and arrays).
GC_THRESHOLD = (700, 10, 100)


def install(app) -> None:
    gc.set_threshold(*GC_THRESHOLD)
    eng = Engine(app.state.settings)
    eng.shards, eng.limiter = app.state.shards, app.state.limiter
    app.state.engine = eng
    registry.load_all()
    tenants = app.state.registry
    if hasattr(eng.models, "timezone_of"):   # in-process builds: the tenant's time zone from the registry
        eng.models.timezone_of = lambda slug: t.timezone if (t := tenants.get(slug)) is not None else None
    eng.models.on_loaded = lambda slug, model: _warm_model(model, tenants.get(slug))
    app.state.event_listeners.append(eng.models.on_events)
    app.state.catalog_listeners.append(eng.models.on_catalog)

    async def start(app) -> None:
        # the request path's compiled kernels, compiled (or loaded from numba's disk cache) before
        # the first request rather than during it
        took = await asyncio.to_thread(jit.warm_serving)
        if took > 1.0:
            log.info("compiled kernels", extra={"kernels": len(jit.kernels()), "seconds": round(took, 2)})

        async def tick():
            while True:
                await asyncio.sleep(eng.tick_s)
                with contextlib.suppress(Exception):
                    eng.models.tick(app.state.shards.open_shards())
        eng._tick_task = asyncio.create_task(tick())

    async def stop(app) -> None:
        if eng._tick_task:
            eng._tick_task.cancel()
        for task in list(eng.preloads):
            task.cancel()
        eng.served.flush()
        eng.models.shutdown()
        for held in list(eng._shards.values()):
            with contextlib.suppress(Exception):
                held.conn.close()

    app.state.startup_hooks.append(start)
    app.state.shutdown_hooks.append(stop)
