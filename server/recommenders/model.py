"""A tenant's model (dataset + every recommender's fitted state) and the background builder.

``build_model(conn)``: read the ``Dataset``, then ``fit`` every registered recommender, each in a
try/except: one failing recommender is recorded in ``Model.errors`` and skipped at request time;
then the derivations every request reads (the catalog net's order) are built with the model.

``ModelStore`` (one per process): tenant slug -> last good ``Model``. Builds run in ONE
background thread per process (a 2-core box serves requests on the other), never in a request:
  - on first use of a tenant (``get_or_schedule``; a request meanwhile gets ``None`` and the
    placement serves its catalog-only fallback, or waits briefly for a small tenant);
  - after ``rebuild_after_events`` new events (counted by the app's event listener);
  - every ``rebuild_interval_s`` when the shard has new events (``events.seq`` moved: events
    stored by other processes count too);
  - after a catalog change (stock, prices, new products), at most every ``catalog_delay_s``
    (5 s; the periodic tick picks up a change that came sooner);
A failed build is logged and the previous model stays in service.

Several worker processes each build their own model from the shared shard; the real-time part
of serving (the session's latest events) is read from the shard per request, so any worker
answers correctly right after another stored an event.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import gc
import logging
import os
import threading
import time
import tracemalloc
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from . import registry
from .dataset import Dataset, build_dataset

log = logging.getLogger("funnelrec.model")


# bounded memory: full, both caches hold ~10-15 MB per tenant and process on online-retail (an
# answer keeps its reason state once asked; 4x these sizes measured ~30 MB); the hot keys (shop-wide
# lists, popular products, categories, queries) stay in them
# sizes per model: settings engine_answer_cache_size / engine_pool_cache_size (set by the engine)
CACHE_SIZES = {"answers": 1024, "pools": 512}


def set_cache_sizes(answers: int, pools: int) -> None:
    CACHE_SIZES.update(answers=max(0, int(answers)), pools=max(0, int(pools)))


_ABSENT = object()


class LRU:
    """A bounded map that forgets the least recently used entry (an ``OrderedDict``: a hit moves
    to the end, the first entry is the oldest and goes in O(1); a plain dict's "first entry"
    is found by skipping every deleted slot before it, which grew to ~4% of a request's time).
    Safe enough across threads under the GIL: a race can only lose an entry, never corrupt one.

    Admission on the second sighting: ``put`` keeps a key only when it was offered before
    (among the last ``4 x size`` keys offered, remembered by hash: plain ints, which the cyclic
    GC never scans). Most keys of fresh personalised requests (a session's seeds, a person)
    come once; keeping each of them made every request's answers (closures, reason state)
    live on into the GC's older generations and pushed out the keys that do come back (a
    product's neighbours, a category, the shop-wide lists). Measured on the bench tenant:
    GC time per 8,000 fresh requests ~245 -> ~50 ms, gen-1 pauses ~7 -> ~1 ms."""
    __slots__ = ("size", "_d", "_seen", "hits", "misses")

    def __init__(self, size: int):
        self.size = size
        self._d: OrderedDict = OrderedDict()
        self._seen: OrderedDict = OrderedDict()   # hashes of keys offered once, oldest first
        self.hits = self.misses = 0

    def get(self, key, default=None):
        d = self._d
        value = d.get(key, _ABSENT)   # (most gets of fresh requests miss: no KeyError raised for them)
        if value is _ABSENT:
            self.misses += 1
            return default
        try:
            d.move_to_end(key)
        except KeyError:   # evicted by another thread meanwhile: still the value asked for
            pass
        self.hits += 1
        return value

    def put(self, key, value) -> None:
        d = self._d
        if key in d:
            d[key] = value
            d.move_to_end(key)
        else:   # (``offer``'s test inline: a key seen first hashed twice instead of three
                # times, one kept three times instead of six; a source's key hashes by a
                # Python call, ``SourceKey.__hash__``, in a tuple)
            h = hash(key)
            seen = self._seen
            if h not in seen:   # the first time: remembered, not kept
                seen[h] = None
                if len(seen) > 4 * self.size:
                    seen.popitem(last=False)
                return
            seen.pop(h, None)
            d[key] = value   # (a new key: the newest entry, at the end)
        while len(d) > self.size:
            try:
                d.popitem(last=False)
            except KeyError:
                break

    def offer(self, key) -> bool:
        """Whether ``put`` would keep ``key`` now (kept, or offered once before); if not, this
        sighting is remembered as ``put``'s is (a caller that computes the value only to keep it)."""
        if key in self._d:
            return True
        h = hash(key)
        seen = self._seen
        if h in seen:
            return True
        seen[h] = None
        if len(seen) > 4 * self.size:
            seen.popitem(last=False)
        return False

    def __len__(self) -> int:
        return len(self._d)

    def __contains__(self, key) -> bool:
        return key in self._d


@dataclass
class Model:
    ds: Dataset
    fitted: dict[str, Any]
    recommenders: dict[str, Any]         # name -> Recommender instance
    errors: dict[str, str] = field(default_factory=dict)
    fit_seconds: dict[str, float] = field(default_factory=dict)
    build_seconds: float = 0.0
    built_at: float = 0.0
    catalog_version: int = 0

    def has(self, name: str) -> bool:
        return name in self.fitted

    # -- request-time caches: live with this model object, so a rebuild (a new Model) drops
    # them; never pickled (the builder process publishes models without them)
    def _cache(self, name: str) -> "LRU":
        c = self.__dict__.get("_" + name)
        if c is None:
            c = self.__dict__.setdefault("_" + name, LRU(CACHE_SIZES[name]))
        return c

    @property
    def answers(self) -> "LRU":
        """Source answers: (recommender, k, params, its ``cache_key``) -> ``Candidates``."""
        c = self.__dict__.get("_answers")   # (read here: asked for several times a slot)
        return c if c is not None else self._cache("answers")

    @property
    def pools(self) -> "LRU":
        """Blended candidate pools of strategies whose sources are all cacheable (blend.py)."""
        c = self.__dict__.get("_pools")
        return c if c is not None else self._cache("pools")

    def clear_caches(self) -> None:
        self.__dict__.pop("_answers", None)
        self.__dict__.pop("_pools", None)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_answers", None)
        state.pop("_pools", None)
        return state

    def summary(self) -> dict:
        return {"built_at": self.built_at, "build_seconds": round(self.build_seconds, 3),
                "dataset": self.ds.summary(), "recommenders": sorted(self.fitted),
                "errors": self.errors, "fit_seconds": {k: round(v, 4) for k, v in self.fit_seconds.items()}}


def build_model(conn, only: list[str] | None = None, tz_offset_min: int = 0, max_events: int | None = None,
                signals=None, timezone: str | None = None) -> Model:
    """``signals``: a ``server.signals.SignalConfig`` to build with (experiments); default weights otherwise.
    ``timezone``: the tenant's (``server/localtime.py``; a name that is not one builds in UTC)."""
    t0 = time.perf_counter()
    kw = {"cfg": signals} if signals is not None else {}
    ds = build_dataset(conn, tz_offset_min=tz_offset_min, max_events=max_events, timezone=timezone, **kw)
    fitted: dict[str, Any] = {}
    instances: dict[str, Any] = {}
    errors: dict[str, str] = {}
    timings: dict[str, float] = {"_dataset": ds.read_seconds}
    for name, cls in sorted(registry.all_recommenders().items()):
        if only is not None and name not in only:
            continue
        t1 = time.perf_counter()
        try:
            rec = cls()
            fitted[name] = rec.fit(ds)
            instances[name] = rec
        except Exception as exc:
            log.exception("recommender fit failed", extra={"recommender": name, "error": repr(exc)})
            errors[name] = repr(exc)
        timings[name] = time.perf_counter() - t1
    _warm_request_path(ds)
    return Model(ds=ds, fitted=fitted, recommenders=instances, errors=errors, fit_seconds=timings,
                 build_seconds=time.perf_counter() - t0, built_at=time.time())


def _warm_request_path(ds: Dataset) -> None:
    """Derivations every model's requests read, built with the model (in the builder process,
    they travel with it) so that no request pays for them: the slot pipeline's catalog net
    (``placements.blend.catalog_order``, ~30 ms on the bench tenant)."""
    from ..placements.blend import catalog_order   # (placements import the recommenders)
    try:
        catalog_order(ds)
    except Exception:   # the first request that needs it builds it (and reports the error)
        log.exception("catalog order failed at build time")


class _TenantState:
    __slots__ = ("model", "future", "new_events", "dirty", "last_build", "failures", "last_error", "seq", "last_check")

    def __init__(self) -> None:
        self.model: Model | None = None
        self.future: concurrent.futures.Future | None = None
        self.new_events = 0
        self.dirty = False
        self.last_build = 0.0
        self.failures = 0
        self.last_error: str | None = None
        self.seq = -1
        self.last_check = 0.0


def warm(hook, slug: str, model) -> None:
    """``hook(slug, model)`` (the serving engine's per-process derivations, e.g. the reply's
    product heads) before the model serves its first request, off the event loop; a failure is
    logged and the request that needs them builds them."""
    try:
        hook(slug, model)
    except Exception:
        log.exception("warming a model for requests failed", extra={"tenant": slug})


class ModelStore:
    def __init__(self, rebuild_after_events: int = 1000, rebuild_interval_s: float = 300.0,
                 max_events: int | None = None):
        self.rebuild_after_events = rebuild_after_events
        self.rebuild_interval_s = rebuild_interval_s
        self.max_events = max_events
        self.seq_check_s = 30.0  # how often an idle tenant's shard is asked whether it moved
        self.catalog_delay_s = 5.0  # catalog changes rebuild at most this often (a sync sends many batches)
        self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-build")
        self.timezone_of = lambda slug: None   # slug -> the tenant's time zone (set by the serving engine)
        self.on_loaded = lambda slug, model: None   # before a model serves, in the build thread (see ``warm``)
        self._state: dict[str, _TenantState] = {}
        self._lock = threading.Lock()

    def _st(self, slug: str) -> _TenantState:
        st = self._state.get(slug)
        if st is None:
            with self._lock:
                st = self._state.setdefault(slug, _TenantState())
        return st

    def get(self, slug: str) -> Model | None:
        st = self._state.get(slug)
        return st.model if st else None

    def status(self, slug: str) -> dict:
        st = self._st(slug)
        return {"model": st.model.summary() if st.model else None, "building": bool(st.future and not st.future.done()),
                "new_events": st.new_events, "failures": st.failures, "last_error": st.last_error}

    def schedule(self, shard, force: bool = False) -> concurrent.futures.Future | None:
        """Start a background build of ``shard``'s tenant unless one is running."""
        st = self._st(shard.slug)
        with self._lock:
            if st.future is not None and not st.future.done():
                return st.future
            if not force and st.model is not None and not st.dirty and st.new_events == 0:
                return None
            st.new_events = 0
            st.dirty = False
            st.future = self._executor.submit(self._build, shard, st)
            return st.future

    def _build(self, shard, st: _TenantState) -> Model | None:
        conn = shard.connect_read()
        try:
            model = build_model(conn, max_events=self.max_events, timezone=self.timezone_of(shard.slug))
            warm(self.on_loaded, shard.slug, model)
            st.model = model
            gc.freeze()  # the model's objects live until the next build: out of the cyclic GC's scans
            st.failures = 0
            st.last_error = None
            st.seq = model.ds.last_seq
            log.info("model built", extra={"tenant": shard.slug, "seconds": round(model.build_seconds, 3),
                                           **model.ds.summary()})
            return model
        except Exception as exc:  # keep the last good model
            st.failures += 1
            st.last_error = repr(exc)
            log.exception("model build failed; keeping the last good model", extra={"tenant": shard.slug})
            return None
        finally:
            st.last_build = time.monotonic()
            conn.close()

    async def ensure(self, shard, wait_s: float) -> Model | None:
        """The tenant's model; on first use schedule a build and wait up to ``wait_s``."""
        st = self._st(shard.slug)
        if st.model is not None:
            return st.model
        fut = self.schedule(shard, force=True)
        if fut is not None and wait_s > 0:
            try:
                await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)), wait_s)
            except (asyncio.TimeoutError, Exception):
                pass
        return st.model

    # -- triggers ----------------------------------------------------------------------
    def on_events(self, tenant, shard, accepted: int) -> None:
        if accepted <= 0:
            return
        st = self._st(shard.slug)
        st.new_events += accepted
        if st.model is not None and st.new_events >= self.rebuild_after_events:
            self.schedule(shard)

    def on_catalog(self, tenant, shard) -> None:
        st = self._st(shard.slug)
        st.dirty = True
        if st.model is not None and time.monotonic() - st.last_build > self.catalog_delay_s:
            self.schedule(shard)

    def tick(self, shards) -> None:
        """Periodic: rebuild tenants whose model is older than the interval and whose shard
        changed (events from other processes count too: ``events.seq`` moved); forget the
        model of a tenant whose shard is no longer open (closed after ``shard_idle_close_s``),
        so memory follows the active tenants."""
        now = time.monotonic()
        shards = list(shards)
        open_slugs = {sh.slug for sh in shards}
        for slug in list(self._state):  # bounded memory: an idle tenant's shard was closed, so is its model
            st = self._state[slug]
            if slug not in open_slugs and not (st.future is not None and not st.future.done()):
                del self._state[slug]
        for shard in shards:
            st = self._state.get(shard.slug)
            if st is None or st.model is None:
                continue
            if st.dirty and now - st.last_build >= self.catalog_delay_s:  # catalog changed: soon
                self.schedule(shard)
                continue
            if now - st.last_build < self.rebuild_interval_s:
                continue
            if st.new_events:
                self.schedule(shard)
                continue
            if now - st.last_check < self.seq_check_s:
                continue
            st.last_check = now
            try:
                conn = shard.connect_read()
                try:
                    seq = conn.execute("SELECT max(seq) FROM events").fetchone()[0] or 0
                finally:
                    conn.close()
            except Exception:
                continue
            if seq != st.seq:
                st.dirty = True
                self.schedule(shard)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def peak_memory_build(conn, **kw) -> tuple[Model, int]:
    """Build with tracemalloc on: (model, peak bytes allocated by Python and numpy)."""
    tracemalloc.start()
    try:
        model = build_model(conn, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return model, peak


os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
