"""One SQLite file per tenant: open, migrate, the single writer, the read connections.

Every write to a shard goes through that shard's one writer thread (``ShardWriter``): callers
submit a *job* (a function taking a ``sqlite3.Connection``) and get a future. The writer takes
every job waiting in its queue, runs them in one transaction, commits once, and only then
resolves the futures. So a request is answered only after its data is committed, and many
concurrent requests share one commit (group commit). When the previous commit was shared by
several jobs (concurrent load), the writer first waits ``write_group_wait_ms`` for more jobs to
join: a millisecond of latency for fewer, larger commits. If a job raises, the transaction is
rolled back and the batch re-run with each job in its own SAVEPOINT, so one failing job does
not undo the others.

WAL checkpoints run beside the writer, not inside its commits (``Checkpointer``, one thread
per writer with its own connection): SQLite's auto-checkpoint copies the WAL back into the
database file and fsyncs it inside the COMMIT that crosses ``wal_autocheckpoint`` pages, which
stalls every job of that commit. The checkpoint thread runs ``PRAGMA wal_checkpoint(PASSIVE)``
every ``checkpoint_interval_ms`` while the writer commits (on the other core, never blocking the
writer or the readers). A passive checkpoint racing a busy writer never reaches the end of the
WAL, and SQLite only starts the WAL over once everything in it is copied; so the writer keeps
its own auto-checkpoint as the bound: when the WAL holds ``wal_autocheckpoint`` pages, the commit
checkpoints what the thread has not copied yet (little: one interval's worth), the WAL starts
over, and it never grows much past that bound (unless a reader keeps an old snapshot open, as
before).

Reads never go through the writer: they use their own connections (``Shard.read`` for async
code via aiosqlite, ``Shard.connect_read`` for threads), which WAL lets run beside the writer.

Under ``funnelrec serve`` the writers run in their own process (``server/writer_service.py``),
one per shard for all uvicorn workers, and ``Shard.writer`` is a ``RemoteWriter``
(``server/writer_client.py``) with the same interface; ``Settings.writer_mode`` chooses. Other
processes that write (CLI imports) have their own writer thread; SQLite's file lock (with
``busy_timeout``) serialises them, so a shard still sees one write transaction at a time.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import queue
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, AsyncIterator, Callable

import aiosqlite

from .migrations import MIGRATIONS

log = logging.getLogger("funnelrec.shards")

Job = Callable[[sqlite3.Connection], Any]


def open_connection(path: Path | str, synchronous: str = "FULL", busy_timeout_ms: int = 10_000, readonly: bool = False,
                    cache_mb: int = 0, wal_autocheckpoint: int = 0, factory=sqlite3.Connection,
                    create: bool = True) -> sqlite3.Connection:
    """A shard connection with our pragmas; ``create=False`` fails instead of making a missing file."""
    if readonly:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False, isolation_level=None)
    elif not create:
        conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, check_same_thread=False, isolation_level=None,
                               factory=factory)
    else:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, factory=factory)
    conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
    if not readonly:
        conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={synchronous if synchronous in ('FULL', 'NORMAL', 'EXTRA') else 'FULL'}")
    conn.execute("PRAGMA foreign_keys=ON")
    if cache_mb:
        conn.execute(f"PRAGMA cache_size=-{int(cache_mb) * 1024}")
    if wal_autocheckpoint and not readonly:
        conn.execute(f"PRAGMA wal_autocheckpoint={int(wal_autocheckpoint)}")
    return conn


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the migrations this shard lacks, each in its own transaction. Returns the version."""
    while True:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            pending = [m for m in MIGRATIONS if m[0] > version]
            if not pending:
                conn.execute("COMMIT")
                return version
            number, sql = pending[0]
            for statement in _split_sql(sql):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version={number}")
            conn.execute("COMMIT")
            log.info("migrated shard", extra={"version": number})
        except BaseException:
            conn.execute("ROLLBACK")
            raise


def _split_sql(sql: str) -> list[str]:
    out, buf = [], []
    for line in sql.splitlines(keepends=True):
        buf.append(line)
        if sqlite3.complete_statement("".join(buf)):
            stmt = "".join(buf).strip()
            if stmt:
                out.append(stmt)
            buf = []
    rest = "".join(buf).strip()
    if rest:
        out.append(rest)
    return out


class Checkpointer(threading.Thread):
    """Passive WAL checkpoints of one shard, beside its writer (see the module docstring).

    ``poke()`` (the writer, after each commit) says there is new WAL; at most one checkpoint per
    ``interval_s``. A checkpoint that fails (busy, locked) is only logged at debug level: the
    writer's own auto-checkpoint still bounds the WAL."""

    def __init__(self, path: Path, busy_timeout_ms: int, interval_s: float):
        super().__init__(name=f"checkpoint-{path.stem}", daemon=True)
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.interval_s = interval_s
        self._wake = threading.Event()
        self._stopping = False
        self.checkpoints = 0
        self.pages = 0  # WAL frames copied into the database file

    def poke(self) -> None:
        if not self._wake.is_set():
            self._wake.set()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self.join(timeout=30)

    def run(self) -> None:
        try:
            conn = open_connection(self.path, "FULL", self.busy_timeout_ms, create=False)
            conn.execute("PRAGMA wal_autocheckpoint=0")
        except Exception as exc:
            log.error("checkpoint thread could not open its shard", extra={"shard": self.path.stem, "error": repr(exc)})
            return
        try:
            while True:
                self._wake.wait()
                if self._stopping:
                    break
                self._wake.clear()
                started = time.monotonic()
                try:
                    busy, _, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    self.checkpoints += 1
                    self.pages += max(copied, 0)
                except sqlite3.Error as exc:
                    log.debug("passive checkpoint failed", extra={"shard": self.path.stem, "error": repr(exc)})
                rest = self.interval_s - (time.monotonic() - started)
                if rest > 0 and not self._stopping:
                    time.sleep(rest)
        finally:
            conn.close()


class ShardWriter(threading.Thread):
    """The one writer of one shard, with group commit.

    Callers get their answer three ways: ``submit`` (a concurrent future, for threads),
    ``submit_async`` (an asyncio future; one loop wake-up per commit) and ``submit_to(job,
    target, token)``: after the commit, ``target.deliver([(token, (ok, value)), ...])`` is called
    once per commit with all of that target's jobs (the writer process answers each client
    connection with one frame per commit this way). ``create=False``: never make a missing file."""

    def __init__(self, path: Path, synchronous: str, busy_timeout_ms: int, batch_max: int = 2000,
                 cache_mb: int = 64, wal_autocheckpoint: int = 10_000, group_wait_ms: float = 1.0,
                 create: bool = True, checkpoint_interval_ms: float = 0):
        """``checkpoint_interval_ms`` > 0: a ``Checkpointer`` thread beside this writer."""
        super().__init__(name=f"writer-{path.stem}", daemon=True)
        self.checkpoint_interval_s = checkpoint_interval_ms / 1000
        self.checkpointer: Checkpointer | None = None
        self.create = create
        self.cache_mb = cache_mb
        self.wal_autocheckpoint = wal_autocheckpoint
        self.path = path
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.batch_max = batch_max
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self.group_wait_s = group_wait_ms / 1000
        self.commits = 0
        self.jobs = 0

    def depth(self) -> int:
        return self._queue.qsize()

    def start_and_wait(self) -> None:
        self.start()
        self._ready.wait()
        if self._error:
            raise self._error

    def submit(self, job: Job) -> concurrent.futures.Future:
        """For threads: a future resolved after the commit that holds ``job``."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        if not self.is_alive():
            fut.set_exception(RuntimeError("shard writer is stopped"))
            return fut
        self._queue.put((job, fut))
        return fut

    def submit_async(self, job: Job) -> asyncio.Future:
        """For the event loop: an asyncio future; all of one commit's futures of one loop are
        resolved in one ``call_soon_threadsafe`` (one loop wake-up per commit, not per job)."""
        loop = asyncio.get_running_loop()
        fut = loop.create_future()
        if not self.is_alive():
            fut.set_exception(RuntimeError("shard writer is stopped"))
            return fut
        self._queue.put((job, (loop, fut)))
        return fut

    def submit_to(self, job: Job, target, token) -> bool:
        """Queue ``job``; after its commit ``target.deliver([(token, (ok, value)), ...])`` is
        called (once per commit and target). False (nothing queued) when the writer is stopped."""
        if not self.is_alive():
            return False
        self._queue.put((job, (target, token)))
        return True

    def stop(self) -> None:
        self._queue.put(None)
        self.join(timeout=30)

    def run(self) -> None:
        try:
            conn = open_connection(self.path, self.synchronous, self.busy_timeout_ms, cache_mb=self.cache_mb,
                                   wal_autocheckpoint=self.wal_autocheckpoint, factory=WriterConnection,
                                   create=self.create)
            migrate(conn)
            if self.checkpoint_interval_s > 0:
                self.checkpointer = Checkpointer(self.path, self.busy_timeout_ms, self.checkpoint_interval_s)
                self.checkpointer.start()
        except BaseException as exc:  # surfaced by start_and_wait
            self._error = exc
            self._ready.set()
            return
        self._ready.set()
        stopping = False
        last_group = 1
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            batch = [item]
            stopping = self._drain(batch)
            if not stopping and last_group > 1 and len(batch) < last_group and self.group_wait_s > 0:
                # under concurrent load (the last commit was shared) a short wait lets more jobs
                # join this commit: fewer, larger commits cost less CPU and disk per job
                time.sleep(self.group_wait_s)
                stopping = self._drain(batch)
            last_group = len(batch)
            self._run_batch(conn, batch)
            if self.checkpointer is not None:
                self.checkpointer.poke()
        if self.checkpointer is not None:
            self.checkpointer.stop()
        conn.close()

    def _drain(self, batch: list) -> bool:
        """Take waiting jobs into ``batch``; True when a stop was asked for."""
        while len(batch) < self.batch_max:
            try:
                nxt = self._queue.get_nowait()
            except queue.Empty:
                return False
            if nxt is None:
                return True
            batch.append(nxt)
        return False

    def _run_batch(self, conn: sqlite3.Connection, batch: list) -> None:
        try:
            results = self._transaction(conn, batch, isolate=False)
        except _JobFailed:
            # one job raised: undo everything and run the batch again, each job in its own
            # SAVEPOINT, so the failing job alone is lost (jobs are pure functions of conn)
            results = self._transaction(conn, batch, isolate=True)
        except Exception as exc:
            results = [(False, exc)] * len(batch)
        if any(not ok for ok, _ in results):
            conn.memo.clear()  # what jobs remembered may not have been committed
        by_target: dict = {}  # an event loop or a submit_to target -> [(future or token, result)]
        for (_, fut), result in zip(batch, results):
            if isinstance(fut, tuple):
                by_target.setdefault(fut[0], []).append((fut[1], result))
            elif fut.set_running_or_notify_cancel():
                if result[0]:
                    fut.set_result(result[1])
                else:
                    fut.set_exception(result[1])
        for target, items in by_target.items():
            if isinstance(target, asyncio.AbstractEventLoop):
                with contextlib.suppress(RuntimeError):  # the loop was closed meanwhile
                    target.call_soon_threadsafe(_resolve, items)
            else:
                try:
                    target.deliver(items)
                except Exception as exc:
                    log.error("delivering results failed", extra={"shard": self.path.stem, "error": repr(exc)})

    def _transaction(self, conn: sqlite3.Connection, batch: list, isolate: bool) -> list[tuple[bool, Any]]:
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, _ in batch:
                if not isolate:
                    try:
                        results.append((True, job(conn)))
                    except Exception as exc:
                        raise _JobFailed() from exc
                    continue
                conn.execute("SAVEPOINT job")
                try:
                    results.append((True, job(conn)))
                    conn.execute("RELEASE job")
                except Exception as exc:
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    results.append((False, exc))
            conn.execute("COMMIT")
        except BaseException as exc:
            with contextlib.suppress(Exception):
                conn.execute("ROLLBACK")
            if not isinstance(exc, _JobFailed):
                # the commit itself failed (disk full, lock timeout): nothing of this batch is stored
                log.error("shard commit failed", extra={"shard": self.path.stem, "error": str(exc)})
                return [(False, exc)] * len(batch)
            raise
        self.commits += 1
        self.jobs += len(batch)
        return results


class _JobFailed(Exception):
    pass


def _resolve(items: list) -> None:
    for fut, (ok, value) in items:
        if fut.done():  # cancelled: the client went away
            continue
        if ok:
            fut.set_result(value)
        else:
            fut.set_exception(value)


class WriterConnection(sqlite3.Connection):
    """The writer's connection, with ``memo``: a dict jobs may use to remember what this
    connection already wrote (cleared whenever a transaction fails)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.memo: dict = {}


class Shard:
    """A tenant's shard: its writer and its read connections."""

    def __init__(self, slug: str, path: Path, synchronous: str = "FULL", busy_timeout_ms: int = 10_000,
                 batch_max: int = 2000, read_pool_size: int = 4, generation: int = 0,
                 cache_mb: int = 64, wal_autocheckpoint: int = 10_000, group_wait_ms: float = 1.0,
                 remote=None, checkpoint_interval_ms: float = 0):
        """``remote``: a ``WriterClient`` (server/writer_client.py) when the writer process
        holds this shard's writer; ``self.writer`` is then its ``RemoteWriter`` stand-in."""
        self.slug = slug
        self.path = path
        self.path_str = str(path)
        self.synchronous = synchronous
        self.busy_timeout_ms = busy_timeout_ms
        self.read_pool_size = read_pool_size
        self.generation = generation
        if remote is not None:
            self.writer = remote.writer(slug, generation)
        else:
            self.writer = ShardWriter(path, synchronous, busy_timeout_ms, batch_max, cache_mb, wal_autocheckpoint,
                                      group_wait_ms, checkpoint_interval_ms=checkpoint_interval_ms)
            self.writer.start_and_wait()
        self._readers: asyncio.Queue | None = None
        self._readers_made = 0
        self._all_readers: list[aiosqlite.Connection] = []
        self.last_used = time.monotonic()
        self.exists_at = float("-inf")   # when ShardManager.get last saw the file there

    @classmethod
    def open(cls, slug: str, path: Path, settings, generation: int = 0) -> "Shard":
        """A shard with every SQLite setting of ``settings`` (server/config.py); its writer is the
        writer process's when ``settings.sidecar("writer")``, else a thread of this process."""
        remote = None
        if settings.sidecar("writer"):
            from .writer_client import client_for

            remote = client_for(settings)
        return cls(slug, path, synchronous=settings.sqlite_synchronous, busy_timeout_ms=settings.sqlite_busy_timeout_ms,
                   batch_max=settings.write_batch_max, read_pool_size=settings.read_pool_size, generation=generation,
                   cache_mb=settings.sqlite_cache_mb, wal_autocheckpoint=settings.sqlite_wal_autocheckpoint,
                   group_wait_ms=settings.write_group_wait_ms, remote=remote,
                   checkpoint_interval_ms=settings.sqlite_checkpoint_interval_ms)

    # -- writing ---------------------------------------------------------------------
    async def write(self, job: Job) -> Any:
        """Run ``job(conn)`` in the writer's next group commit; returns after COMMIT."""
        self.last_used = time.monotonic()
        return await self.writer.submit_async(job)

    def write_sync(self, job: Job) -> Any:
        self.last_used = time.monotonic()
        return self.writer.submit(job).result()

    # -- reading ---------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[aiosqlite.Connection]:
        self.last_used = time.monotonic()
        if self._readers is None:
            self._readers = asyncio.Queue()
        if self._readers.empty() and self._readers_made < self.read_pool_size:
            self._readers_made += 1
            conn = await aiosqlite.connect(f"file:{self.path}?mode=ro", uri=True, isolation_level=None)
            await conn.execute(f"PRAGMA busy_timeout={self.busy_timeout_ms}")
            self._all_readers.append(conn)
            self._readers.put_nowait(conn)
        conn = await self._readers.get()
        try:
            yield conn
        finally:
            self._readers.put_nowait(conn)

    def connect_read(self) -> sqlite3.Connection:
        """A new read-only connection for use in one thread (model builds, exports)."""
        return open_connection(self.path, self.synchronous, self.busy_timeout_ms, readonly=True)

    async def close(self) -> None:
        for conn in self._all_readers:
            with contextlib.suppress(Exception):
                await conn.close()
        self._all_readers.clear()
        await asyncio.get_running_loop().run_in_executor(None, self.writer.stop)

    def close_sync(self) -> None:
        self.writer.stop()


class ShardGone(LookupError):
    """The tenant was deleted (its shard file is gone): never re-create it by writing."""


def create_shard_file(path: Path) -> None:
    """Create and migrate a new tenant's shard (at tenant creation)."""
    conn = open_connection(path)
    try:
        migrate(conn)
    finally:
        conn.close()


class ShardManager:
    """Opens each tenant's shard once per process, on first use.

    A shard file is made when its tenant is created; if it is missing the tenant was deleted
    (perhaps by another process) and ``get`` raises ``ShardGone`` instead of re-creating it."""
    EXISTS_CHECK_S = 1.0   # how long ``get`` trusts that an open shard's file is still there

    def __init__(self, registry, settings):
        self.registry = registry
        self.settings = settings
        self._shards: dict[str, Shard] = {}
        self._lock = threading.Lock()

    def get(self, tenant) -> Shard:
        shard = self._shards.get(tenant.slug)
        # fast path, every request: the open shard of this tenant generation, its file still there
        # (looked at once per EXISTS_CHECK_S: a deletion reaches the other workers' tenant lists
        # within ``tenant_cache_s`` anyway, and a stat per request costs more than the rest of this)
        if shard is not None and shard.generation == tenant.created_at and shard.writer.is_alive():
            now = time.monotonic()
            if now - shard.exists_at >= self.EXISTS_CHECK_S and os.path.exists(shard.path_str):
                shard.exists_at = now
            if now - shard.exists_at < self.EXISTS_CHECK_S:
                shard.last_used = now
                return shard
        path = self.registry.shard_path(tenant.slug)  # validated and resolved
        if not path.exists():
            if shard is not None:
                self._shards.pop(tenant.slug, None)
                shard.close_sync()
            raise ShardGone(tenant.slug)
        with self._lock:
            shard = self._shards.get(tenant.slug)
            if shard is None or shard.generation != tenant.created_at or not shard.writer.is_alive():
                if shard is not None:
                    shard.close_sync()
                shard = Shard.open(tenant.slug, path, self.settings, generation=tenant.created_at)
                self._shards[tenant.slug] = shard
            return shard

    def open_shards(self) -> list[Shard]:
        return list(self._shards.values())

    def queue_depth(self) -> int:
        return sum(s.writer.depth() for s in self._shards.values())

    async def close_idle(self, idle_s: float) -> None:
        now = time.monotonic()
        for slug, shard in list(self._shards.items()):
            if now - shard.last_used > idle_s and shard.writer.depth() == 0:
                with self._lock:
                    if self._shards.get(slug) is shard:
                        del self._shards[slug]
                await shard.close()

    async def forget(self, slug: str) -> None:
        shard = self._shards.pop(slug, None)
        if shard is not None:
            await shard.close()

    async def close_all(self) -> None:
        for slug in list(self._shards):
            await self.forget(slug)

    def close_all_sync(self) -> None:
        for slug in list(self._shards):
            shard = self._shards.pop(slug)
            shard.close_sync()
