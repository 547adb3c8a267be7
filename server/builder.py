"""Model builds outside the serving processes: the builder sidecar and its client.

A model build (seconds of numpy and Python) and the learned ranker's training would hold the
serving process's GIL for seconds: every request waiting behind them. So under
``funnelrec serve`` one **builder process** (``python -m server.builder``, started by
``server/sidecars.py``) builds every active tenant's model, trains its ranker, and writes the
result to disk; the workers only load it (a pickle: ~40 ms for the full online-retail model).
One build per tenant serves every worker. ``FUNNELREC_BUILDER_MODE=thread`` keeps the older
in-process builder (``recommenders/model.py ModelStore``), which the in-process tests use.

Files, per tenant in ``tenants/<slug>.models/`` (removed with the tenant):
  ``model-<n>.pkl``   a built ``Model`` (pickle protocol 5); n grows; the newest two are kept
  ``current.json``    the newest model: ``{"n", "file", ...}`` plus the builder's status (model
                      summary, building, failures, last error, handled requests), written
                      atomically (write, fsync, rename)
  ``active``          touched by workers serving the tenant (at most every few seconds); the
                      builder watches tenants touched within ``shard_idle_close_s``
and one inbox for all tenants, ``tenants/.builder-inbox/``:
  ``<slug>--<id>``    a worker's note (``--`` never occurs in a slug): ``force`` or ``catalog``
                      (a build is asked for; the builder's status then lists ``<id>`` as
                      handled) or ``active`` (a worker's first request of the tenant: built at
                      once if the builder has no model of it); taken and deleted by the builder
The builder lists the inbox on every pass (every 0.2 s while idle): one directory listing
whatever the number of tenants. It looks at every tenant's folder (activity, deleted and idle
tenants) only every ``FULL_SCAN_S``.

When a tenant is rebuilt (checked every ``CHECK_S`` for active tenants, from the shard itself,
so events stored by any process count):
  - no model yet, or a worker asked (``POST /v1/engine/rebuild``);
  - ``engine_rebuild_after_events`` new events since the last build (``events.seq``);
  - ``engine_rebuild_interval_s`` passed and the shard has new events;
  - the catalog changed (a worker's catalog request, or the catalog's count / newest
    ``updated_at`` moved: imports by the CLI count too), at most every ``CATALOG_DELAY_S``.
After each build the model is published at once (the blend serves it, with the tenant's
previous ranker if one passed its guard), then the ranker is trained and the model published
again with it: both publications carry the build's id (``build`` in ``current.json``), so a
worker that serves the first takes only the ranker of the second (``RemoteModelStore``). A
failed build is logged and the last good model stays in service.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import contextlib
import gc
import json
import logging
import os
import pickle
import signal
import threading
import time
import uuid
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

log = logging.getLogger("funnelrec.builder")

CHECK_S = 1.0            # how often an active tenant's shard is checked for new events / catalog changes
QUERY_S = 60.0           # ... and queried at least this often even when its files look unchanged
CHECK_CONNS = 16         # read connections kept open for those queries (the busiest tenants: LRU)
CATALOG_DELAY_S = 5.0    # catalog changes rebuild at most this often (a sync sends many batches)
ACTIVE_TOUCH_S = 5.0     # workers touch ``active`` at most this often
FULL_SCAN_S = 5.0        # the builder looks at every tenant's folder this often (the inbox: every pass)
INBOX = ".builder-inbox"  # the workers' notes to the builder, in the shard directory
PUBLISHED = ".builder-published"  # rewritten after every publish: what workers poll (one file)
KEEP = 2                 # model files kept per tenant


def models_dir(settings, slug: str) -> Path:
    return Path(settings.shard_dir()) / f"{slug}.models"


def inbox_dir(settings) -> Path:
    return Path(settings.shard_dir()) / INBOX


def note(settings, slug: str, kind: str, sync: bool = True) -> str:
    """A note in the builder's inbox (see the module docstring): ``force`` asks for a build (the
    workers, ``funnelrec tenant set --timezone``), ``catalog``, ``active``; its id."""
    rid = uuid.uuid4().hex[:16]
    inbox = inbox_dir(settings)
    inbox.mkdir(exist_ok=True)
    _write_atomic(inbox / f"{slug}--{rid}", kind.encode(), sync=sync)
    return rid


def published_path(settings) -> Path:
    return Path(settings.shard_dir()) / PUBLISHED


def read_published(settings) -> bytes | None:
    try:
        return published_path(settings).read_bytes()
    except OSError:
        return None


def _write_atomic(path: Path, data: bytes, sync: bool = True) -> None:
    """Written under a temporary name starting with ``.`` (which readers skip), then renamed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        if sync:
            f.flush()
            os.fsync(f.fileno())
    os.replace(tmp, path)


def _signature(path: Path) -> tuple | None:
    """(inode, mtime, size) of a shard's database and (mtime, size) of its WAL file: any commit
    changes the WAL (or, after a checkpoint, the database); the inode tells a shard made anew
    (the tenant deleted and created again). None when the database cannot be read."""
    try:
        db = os.stat(path)
    except OSError:
        return None
    try:
        wal = os.stat(f"{path}-wal")
        return db.st_ino, db.st_mtime_ns, db.st_size, wal.st_mtime_ns, wal.st_size
    except OSError:
        return db.st_ino, db.st_mtime_ns, db.st_size


def read_current(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "current.json").read_bytes())
    except (OSError, ValueError):
        return None


# -- the builder process -------------------------------------------------------------------
class _Tenant:
    def __init__(self, slug: str, path: Path, folder: Path):
        self.slug, self.path, self.folder = slug, path, folder
        cur = read_current(folder) or {}
        self.n = int(cur.get("n", 0))
        # identifies this folder's model series: a tenant deleted and created again (same slug)
        # starts a new one, so a worker does not wait for the new series to pass the old ``n``
        self.epoch = cur.get("epoch") or uuid.uuid4().hex[:12]
        self.built = False                # a model was built by this process
        self.ranker = None                # the last ranker that passed its guard (not the model: memory)
        self.seq = -1                     # events.seq the served model was built from
        self.catalog = None               # (count, max updated_at) at the last build
        self.last_build = 0.0             # monotonic
        self.last_check = 0.0
        self.last_query = 0.0             # monotonic: the shard last queried for seq and catalog
        self.sig = None                   # the shard files' (mtime, size) then (``_signature``)
        self.seen_seq, self.seen_catalog = 0, None   # what that query read
        self.force = False
        self.catalog_dirty = False
        self.requests: list[str] = []     # ids handled by the next build
        self.done: list[str] = list(cur.get("done", []))[-50:]
        self.failures = 0
        self.last_error: str | None = None
        self.building = False
        self.build_id: str | None = None  # the last build's (unique): its two publications share it


class Builder:
    """The builder process's loop: one build at a time, tenants in order of need."""

    def __init__(self, settings):
        from .tenants import TenantRegistry

        self.settings = settings
        self.registry = TenantRegistry(settings.data_dir, settings.tenant_cache_s)
        self.tenants: dict[str, _Tenant] = {}
        self.stop = threading.Event()
        self.inbox = inbox_dir(settings)
        self.inbox.mkdir(parents=True, exist_ok=True)
        self.published = 0
        self._check_conns: collections.OrderedDict = collections.OrderedDict()  # slug -> (inode, connection)

    def _timezone(self, slug: str) -> str | None:
        tenant = self.registry.get(slug)
        return tenant.timezone if tenant is not None else None

    def _conn(self, t: _Tenant):
        from .shards import open_connection
        return open_connection(t.path, busy_timeout_ms=self.settings.sqlite_busy_timeout_ms, readonly=True)

    def forget(self, slug: str) -> None:
        """Drop a tenant (deleted or idle): its memory and its kept connection go."""
        self.tenants.pop(slug, None)
        self._close_check(slug)

    def _close_check(self, slug: str) -> None:
        kept = self._check_conns.pop(slug, None)
        if kept is not None:
            with contextlib.suppress(Exception):
                kept[1].close()

    def _check_query(self, t: _Tenant, inode: int) -> None:
        """``seen_seq`` and ``seen_catalog`` read from the shard, on a read connection kept
        between checks (opening one, its pragmas and the schema read, was ~1.1 ms of a check's
        ~1.5 ms; under load every check queries: each commit changes the WAL). At most
        ``CHECK_CONNS`` are kept (file descriptors: 3 a shard), the least recently used closed;
        a new inode (the shard made anew) gets a new connection."""
        kept = self._check_conns.get(t.slug)
        if kept is not None and kept[0] != inode:
            self._close_check(t.slug)
            kept = None
        if kept is None:
            kept = self._check_conns[t.slug] = (inode, self._conn(t))
            kept[1].execute("PRAGMA cache_size=-256")  # a few pages: the queries read the OS's cache
            while len(self._check_conns) > CHECK_CONNS:
                self._close_check(next(iter(self._check_conns)))
        self._check_conns.move_to_end(t.slug)
        conn = kept[1]
        try:  # fetchall: each statement runs to its end, so no read transaction stays open (the WAL could not restart)
            t.seen_seq = conn.execute("SELECT max(seq) FROM events").fetchall()[0][0] or 0
            t.seen_catalog = tuple(conn.execute("SELECT count(*), max(updated_at) FROM products").fetchall()[0])
        except Exception:
            self._close_check(t.slug)  # e.g. the file went: the next check opens anew
            raise

    def scan(self, full: bool = True) -> None:
        """Take the workers' notes from the inbox; with ``full``, also look at every tenant's
        folder: tenants deleted, active (touched ``active``), idle (forgotten: their memory goes)."""
        live = {t.slug for t in self.registry.all()} if full else None
        if live is not None:
            for slug in list(self.tenants):
                if slug not in live:
                    self.forget(slug)
        noted = self._take_inbox(live)
        if not full:
            return
        now = time.time()
        idle = max(self.settings.shard_idle_close_s, 60)
        for slug in live:
            folder = models_dir(self.settings, slug)
            try:
                active = now - (folder / "active").stat().st_mtime < idle
            except OSError:  # no folder: no worker ever served the tenant
                active = False
            t = self.tenants.get(slug)
            if t is None:
                if not active:
                    continue
                t = self.tenants[slug] = _Tenant(slug, self.registry.shard_path(slug), folder)
            if not (active or slug in noted or t.force or t.catalog_dirty or not t.built):
                self.forget(slug)  # idle: its memory goes

    def _take_inbox(self, live: set[str] | None) -> set[str]:
        """The workers' notes (see the module docstring), each taken once; the slugs noted."""
        try:
            names = os.listdir(self.inbox)
        except OSError:
            return set()
        noted = set()
        for name in names:
            slug, sep, rid = name.partition("--")
            if not sep or name.startswith("."):  # a note being written, or not a note
                continue
            path = self.inbox / name
            try:
                kind = path.read_text().strip() or "force"
                path.unlink()
            except OSError:
                continue
            if (slug not in live) if live is not None else self.registry.get(slug) is None:
                continue  # a deleted tenant's note
            noted.add(slug)
            t = self.tenants.get(slug)
            if t is None:
                t = self.tenants[slug] = _Tenant(slug, self.registry.shard_path(slug), models_dir(self.settings, slug))
            if kind == "active":
                continue  # tracked now: built at once if this builder has no model of it
            t.requests.append(rid)
            if kind == "catalog":
                t.catalog_dirty = True
            else:
                t.force = True
        return noted

    def due(self, t: _Tenant) -> bool:
        s = self.settings
        now = time.monotonic()
        if t.failures and now - t.last_build < min(60.0, 2.0 ** t.failures):
            return False  # a failing build is retried with a growing pause, not in a tight loop
        if t.force or not t.built:
            return True
        if t.catalog_dirty and now - t.last_build >= CATALOG_DELAY_S:
            return True
        if now - t.last_check < CHECK_S:
            return False
        t.last_check = now
        # the shard is queried only when its files changed (or once every QUERY_S): an idle
        # builder's checks cost two stat calls per active tenant, not a connection and two queries
        sig = _signature(t.path)   # taken before the queries: a commit during them changes it again
        if sig is None or sig != t.sig or now - t.last_query >= QUERY_S:
            try:
                self._check_query(t, sig[0] if sig else -1)
            except Exception:
                return False
            t.sig, t.last_query = sig, now
        seq, catalog = t.seen_seq, t.seen_catalog
        if catalog != t.catalog:
            t.catalog_dirty = True
            return now - t.last_build >= CATALOG_DELAY_S
        if seq - t.seq >= s.engine_rebuild_after_events:
            return True
        return seq != t.seq and now - t.last_build >= s.engine_rebuild_interval_s

    def build(self, t: _Tenant) -> None:
        from .recommenders.model import build_model

        s = self.settings
        t.force = t.catalog_dirty = False
        handled, t.requests = t.requests, []
        t.building = True
        t.build_id = uuid.uuid4().hex[:12]
        self.publish(t, None, handled=[])
        conn = None
        try:
            conn = self._conn(t)
            catalog = tuple(conn.execute("SELECT count(*), max(updated_at) FROM products").fetchone())
            model = build_model(conn, max_events=s.engine_max_events or None, timezone=self._timezone(t.slug))
            if t.ranker is not None:
                model.learned_ranker = t.ranker  # the last ranker serves until the new one is trained
            t.built, t.seq, t.catalog = True, model.ds.last_seq, catalog
            t.failures, t.last_error = 0, None
            log.info("model built", extra={"tenant": t.slug, "seconds": round(model.build_seconds, 3), **model.ds.summary()})
            t.building = False
            self.publish(t, model, handled)
            if s.ranker_enabled and model.ds.n_feedback >= 200 and not self.stop.is_set():
                self.train(t, model, conn)
        except Exception as exc:
            t.failures += 1
            t.last_error = repr(exc)
            t.building = False
            log.exception("model build failed; keeping the last good model", extra={"tenant": t.slug})
            self.publish(t, None, handled)
        finally:
            t.building = False
            t.last_build = time.monotonic()
            if conn is not None:
                conn.close()

    def train(self, t: _Tenant, model, conn) -> None:
        from .ranking.train import train_ranker

        try:
            state = train_ranker(model, conn=conn, tenant=t.slug)
        except Exception as exc:
            log.warning("ranker training failed; the blend serves", extra={"tenant": t.slug, "error": repr(exc)})
            return
        model.learned_ranker = state
        t.ranker = state
        log.info("ranker trained", extra={"tenant": t.slug, "version": state.version, "serving": state.serving,
                                          "seconds": state.info.get("seconds")})
        self.publish(t, model, [])

    def publish(self, t: _Tenant, model, handled: list[str]) -> None:
        """Write the model (if any) and the status; the workers pick them up."""
        t.done = (t.done + handled)[-50:]
        cur = read_current(t.folder) or {}
        if model is not None:
            t.n += 1
            name = f"model-{t.n}.pkl"
            _write_atomic(t.folder / name, pickle.dumps(model, protocol=5))
            cur.update(n=t.n, epoch=t.epoch, file=name, build=t.build_id, model=model.summary(),
                       ranker=_ranker_info(model))
            for old in t.folder.glob("model-*.pkl"):
                with contextlib.suppress(ValueError, OSError):
                    if int(old.stem.split("-")[1]) <= t.n - KEEP:
                        old.unlink()
        cur.update(building=t.building, failures=t.failures, last_error=t.last_error, done=t.done,
                   pid=os.getpid(), at=time.time())
        _write_atomic(t.folder / "current.json", json.dumps(cur).encode())
        self.published += 1   # (content unique per publish: workers compare it, not timestamps)
        _write_atomic(published_path(self.settings), f"{os.getpid()} {self.published} {t.slug}".encode(), sync=False)

    def next_due(self) -> _Tenant | None:
        waiting = [t for t in self.tenants.values() if self.due(t)]
        if not waiting:
            return None
        # a tenant without any model first, then asked-for builds, then the longest waiting
        return min(waiting, key=lambda t: (t.built and t.n > 0, not t.force, t.last_build))

    def run(self) -> None:
        last_full = -FULL_SCAN_S
        while not self.stop.is_set():
            try:
                full = time.monotonic() - last_full >= FULL_SCAN_S
                if full:
                    last_full = time.monotonic()
                self.scan(full)
                t = self.next_due()
            except Exception:
                log.exception("builder scan failed")
                t = None
            if t is None:
                self.stop.wait(0.2)
                continue
            self.build(t)
        for slug in list(self.tenants):
            self.forget(slug)


def _ranker_info(model) -> dict | None:
    st = getattr(model, "learned_ranker", None)
    if st is None or type(st).__name__ != "RankerState":
        return None
    return {"version": st.version, "serving": st.serving, "trained_at": st.trained_at, "guard": st.guard,
            "seconds": st.info.get("seconds")}


def main(argv=None) -> int:
    from .config import Settings
    from .logs import setup_logging
    from .sidecars import serve_ready

    ap = argparse.ArgumentParser(description="funnelrec's model builder process (started by `funnelrec serve`)")
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--ready-fd", type=int, default=None)
    a = ap.parse_args(argv)
    settings = Settings.from_env(data_dir=Path(a.data_dir))
    setup_logging(settings.log_level)
    from .recommenders import registry
    registry.load_all()
    b = Builder(settings)
    signal.signal(signal.SIGTERM, lambda *_: b.stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C reaches the whole group: the server stops us
    serve_ready(a.ready_fd)
    log.info("builder started", extra={"pid": os.getpid()})
    b.run()
    return 0


# -- the workers' side -----------------------------------------------------------------------
class _Loaded:
    __slots__ = ("model", "n", "epoch", "build", "touched", "mtime", "loading")

    def __init__(self) -> None:
        self.loading = False
        self.model = None
        self.n = 0
        self.epoch = None
        self.build = None   # the served model's build id (``current.json``'s ``build``)
        self.touched = 0.0
        self.mtime = 0.0


class RemoteModelStore:
    """``ModelStore``'s interface for a worker whose models come from the builder process.

    ``get`` never touches the disk; a poll (``POLL_S``, on the event loop, started by the first
    request of a tenant) reads the builder's one ``.builder-published`` file and, when it
    changed (or every ``FULL_POLL_S``), looks at each tenant's ``current.json`` and loads a
    newer model file in a thread. So a poll costs one small read whatever the number of tenants
    this worker serves; a pass over them all (their ``active`` touched too) runs only after a
    publish or every few seconds."""
    POLL_S = 0.25
    FULL_POLL_S = ACTIVE_TOUCH_S

    def __init__(self, settings):
        self.settings = settings
        self._loaded: dict[str, _Loaded] = {}
        self._waiters: dict[str, list[tuple[str, concurrent.futures.Future]]] = {}
        self._task: asyncio.Task | None = None
        self._lock = threading.Lock()
        self._published: bytes | None = None   # the builder's publish marker at the last full pass
        self._full_at = 0.0                    # monotonic: the last full pass
        self.on_loaded = lambda slug, model: None   # before a model serves, in the loading thread

    def _load(self, slug: str, path: Path, warm_it: bool = True):
        """A published model read from ``path`` and warmed for requests (``model.warm``; not
        when only its ranker is to be taken: ``_load_if_newer``)."""
        from .recommenders.model import warm   # (the worker has it imported already)
        model = _load(path)
        if warm_it:
            warm(self.on_loaded, slug, model)
        return model

    def _folder(self, slug: str) -> Path:
        return models_dir(self.settings, slug)

    def get(self, slug: str):
        st = self._loaded.get(slug)
        return st.model if st else None

    def _track(self, slug: str) -> _Loaded:
        st = self._loaded.get(slug)
        if st is None:
            st = self._loaded[slug] = _Loaded()
            self._touch(slug, st, force=True)
        return st

    def _touch(self, slug: str, st: _Loaded, force: bool = False) -> None:
        now = time.time()
        if force or now - st.touched > ACTIVE_TOUCH_S:
            st.touched = now
            folder = self._folder(slug)
            if not folder.with_suffix("").with_name(f"{slug}.db").exists():
                return  # the tenant was deleted: leave nothing behind
            with contextlib.suppress(OSError):
                folder.mkdir(exist_ok=True)
                (folder / "active").touch()
                if force:  # this process's first request of the tenant: the builder hears at once
                    self._note(slug, "active", sync=False)

    def _request(self, slug: str, kind: str) -> str:
        self._folder(slug).mkdir(exist_ok=True)   # where the builder publishes
        return self._note(slug, kind)

    def _note(self, slug: str, kind: str, sync: bool = True) -> str:
        return note(self.settings, slug, kind, sync)

    def status(self, slug: str) -> dict:
        cur = read_current(self._folder(slug)) or {}
        st = self._loaded.get(slug)
        return {"model": cur.get("model"), "building": bool(cur.get("building")), "new_events": None,
                "failures": cur.get("failures", 0), "last_error": cur.get("last_error"),
                "builder": "process", "model_file": cur.get("file"), "loaded": st.n if st else 0,
                "ranker": cur.get("ranker")}

    def schedule(self, shard, force: bool = False) -> concurrent.futures.Future:
        """Ask the builder for a build; the future resolves once it is handled and loaded."""
        self._track(shard.slug)
        rid = self._request(shard.slug, "force")
        fut: concurrent.futures.Future = concurrent.futures.Future()
        with self._lock:
            self._waiters.setdefault(shard.slug, []).append((rid, fut))
        self._ensure_poller()
        return fut

    async def ensure(self, shard, wait_s: float):
        st = self._track(shard.slug)
        self._ensure_poller()
        if st.model is None:
            await self._load_if_newer(shard.slug, st)
        deadline = time.monotonic() + wait_s
        while st.model is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            await self._load_if_newer(shard.slug, st)
        return st.model

    def on_events(self, tenant, shard, accepted: int) -> None:
        """The builder counts new events in the shard itself (every process's events count)."""

    def on_catalog(self, tenant, shard) -> None:
        self._track(shard.slug)
        with contextlib.suppress(OSError):
            self._request(shard.slug, "catalog")

    def tick(self, shards) -> None:
        open_slugs = {sh.slug for sh in shards}
        for slug in list(self._loaded):
            if slug not in open_slugs:
                del self._loaded[slug]  # the shard was closed as idle: so is its model
            else:
                self._touch(slug, self._loaded[slug])

    def shutdown(self) -> None:
        if self._task is not None:
            self._task.cancel()

    # -- polling -------------------------------------------------------------------------
    def _ensure_poller(self) -> None:
        if self._task is None or self._task.done():
            with contextlib.suppress(RuntimeError):
                self._task = asyncio.get_running_loop().create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            with contextlib.suppress(Exception):
                await self.poll_once()
            await asyncio.sleep(self.POLL_S)

    async def poll_once(self) -> bool:
        """One poll (see the class docstring); whether it passed over every tenant."""
        marker = read_published(self.settings)   # read before the pass: a publish during it shows next time
        if marker == self._published and time.monotonic() - self._full_at < self.FULL_POLL_S:
            return False
        self._published, self._full_at = marker, time.monotonic()
        for k, (slug, st) in enumerate(list(self._loaded.items())):
            with contextlib.suppress(Exception):
                await self._load_if_newer(slug, st)
                self._touch(slug, st)
            if k % 100 == 99:
                await asyncio.sleep(0)   # requests between every 100 tenants (~1.5 ms), not behind them all
        return True

    async def _load_if_newer(self, slug: str, st: _Loaded) -> None:
        folder = self._folder(slug)
        try:
            mtime = (folder / "current.json").stat().st_mtime
        except OSError:
            return
        if mtime == st.mtime:
            return
        cur = read_current(folder)
        if cur is None:
            return
        if cur.get("file") and (int(cur.get("n", 0)) > st.n or cur.get("epoch") != st.epoch):
            if st.loading:  # another task of this process is loading it
                return
            path = folder / cur["file"]
            # the served model's build published again with its newly trained ranker: only the
            # ranker is taken. The served model object stays, and with it what this process made
            # of it: the live state's visitors bound to its dataset (each would bind again on
            # its next request: ~10-20 µs and young objects for the GC each), the reply heads,
            # masks and plans, the answer and pool caches (the ranker orders after them; the
            # result cache's keys hold the ranker's token, so no answer it ordered is reused)
            same_build = (st.model is not None and cur.get("build") is not None and cur.get("build") == st.build
                          and cur.get("epoch") == st.epoch)
            st.loading = True
            try:
                model = await asyncio.get_running_loop().run_in_executor(None, self._load, slug, path, not same_build)
            except FileNotFoundError:
                return  # replaced meanwhile: the next poll takes the newer one
            except Exception as exc:  # e.g. a damaged file: keep serving the last model until the next one
                log.error("loading a model failed", extra={"tenant": slug, "file": str(path), "error": repr(exc)})
                st.mtime = mtime  # not again every poll
                return
            finally:
                st.loading = False
            if same_build:
                st.model.learned_ranker = getattr(model, "learned_ranker", None)
                st.n = int(cur["n"])
                log.info("ranker loaded", extra={"tenant": slug, "n": st.n, "pid": os.getpid()})
            else:
                st.model, st.n, st.epoch, st.build = model, int(cur["n"]), cur.get("epoch"), cur.get("build")
                # the model's ~100k Python objects live until the next build: keep them out of the
                # cyclic GC's scans (a full collection over them paused requests for ~50 ms); they
                # are still freed by reference counting when the next model replaces this one
                gc.freeze()
                log.info("model loaded", extra={"tenant": slug, "n": st.n, "pid": os.getpid()})
        st.mtime = mtime
        done = set(cur.get("done", ()))
        with self._lock:
            waiting = self._waiters.get(slug, [])
            keep = []
            for rid, fut in waiting:
                if rid in done and not cur.get("building"):
                    if not fut.done():
                        fut.set_result(st.model)
                else:
                    keep.append((rid, fut))
            self._waiters[slug] = keep


def _load(path: Path):
    with open(path, "rb") as f:
        return pickle.load(f)


if __name__ == "__main__":
    raise SystemExit(main())
