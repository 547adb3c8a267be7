"""Ingestion load generator on loopback: events/s with batches of 1, 10 and 50 events per request.

    .venv/bin/python bench/ingest.py                      # 10 s per scenario, FULL and NORMAL
    .venv/bin/python bench/ingest.py --duration 5 --sync FULL --batches 1,50

What it does, in one run:
1. starts an empty Starlette POST endpoint (``bench/empty_app.py``) in its own uvicorn process,
   served with the same options as ``funnelrec serve``, and measures it with the same bodies;
2. for each SQLite ``synchronous`` mode asked for (FULL, NORMAL), starts a real ``funnelrec serve``
   process (1 worker, rate limit off, fresh temp data dir) with one test-mode tenant per batch size,
   and measures ``POST /v1/events`` with batches of 1, 10 and 50 realistic mixed events
   (page_view, engagement, search, add_to_cart, purchase with lines), every event id unique;
3. after each ingest scenario, checks that nothing acknowledged was lost: the sum of ``accepted``
   over the 200 replies equals the rows in that tenant's ``events`` table, all ids are distinct,
   and no reply reported a duplicate or a rejection.

The client is one asyncio process (uvloop when installed) holding many keep-alive HTTP/1.1
connections over raw asyncio protocols, one request in flight per connection (closed loop), with
request bytes assembled from pre-encoded event fragments: a few µs per request, so that on a
2-core machine the server, not the client, is what is measured. The client's and the server's
CPU use are reported beside every figure so that can be checked.

Output: a Markdown table on stdout and ``bench/results/ingest.json``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import resource
import sqlite3
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, ServerProcess, create_tenant, free_port, funnelrec_cmd  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "ingest.json"
UA = b"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


# -- events ----------------------------------------------------------------------------------
def event_fragments(n: int, seed: int, now_ms: int) -> list[tuple[bytes, int]]:
    """``n`` pre-encoded events, each a bytes template with ``%s`` slots for the event id.

    Mix (roughly what the widget sends): 45% page_view, 30% engagement, 5% search,
    15% add_to_cart, 5% purchase with 1-4 lines. The visitor is a placeholder filled per request:
    a widget batch carries one visitor's events (``BodyMaker`` picks one of 20,000 per request)."""
    rnd = random.Random(seed)
    products = [f"P{rnd.randrange(10_000, 99_999)}" for _ in range(2000)]
    out = []
    for _ in range(n):
        visitor = "@@VIS@@"
        session = "@@VIS@@.s1"
        ts = now_ms - rnd.randrange(0, 60_000)
        prod = rnd.choice(products)
        common = {"id": "@@ID@@", "visitor": visitor, "session": session, "ts": ts}
        if rnd.random() < 0.2:
            common["user"] = "u@@VIS@@"
        r = rnd.random()
        if r < 0.45:
            page = rnd.choice(["detail", "detail", "detail", "category", "main", "search", "cart"])
            ev = {"type": "page_view", **common, "page": page, "url": f"https://shop.example/p/{prod}",
                  "referrer": "https://www.google.com/", "title": "Hand-made ceramic mug, 350 ml", "device": "mobile"}
            if page == "detail":
                ev["product"] = prod
        elif r < 0.75:
            ev = {"type": "engagement", **common, "page": "detail", "product": prod,
                  "engaged_ms": rnd.randrange(500, 90_000), "visible_ms": rnd.randrange(1000, 120_000),
                  "scroll_pct": round(rnd.uniform(0, 100), 1), "scroll_ms": rnd.randrange(0, 20_000),
                  "content_ms": {"description": rnd.randrange(0, 30_000), "reviews": rnd.randrange(0, 10_000),
                                 "images": rnd.randrange(0, 15_000)}}
        elif r < 0.80:
            ev = {"type": "search", **common, "query": rnd.choice(["mug", "red lantern", "가방", "candle holder"]),
                  "results": rnd.randrange(0, 200)}
        elif r < 0.95:
            ev = {"type": "add_to_cart", **common, "product": prod, "quantity": rnd.randrange(1, 4),
                  "price": round(rnd.uniform(1, 60), 2), "currency": "GBP"}
        else:
            lines = [{"product": rnd.choice(products), "quantity": rnd.randrange(1, 6),
                      "price": round(rnd.uniform(1, 60), 2)} for _ in range(rnd.randrange(1, 5))]
            ev = {"type": "purchase", **common, "order": "o-@@ID@@", "lines": lines, "currency": "GBP",
                  "total": round(sum(l["quantity"] * l["price"] for l in lines), 2)}
        text = json.dumps(ev, separators=(",", ":")).replace("%", "%%")
        out.append((text.replace("@@ID@@", "%s").encode(), text.count("@@ID@@")))
    return out


class BodyMaker:
    """Request bytes for one connection: unique ids ``<run>-<scenario>-<conn>-<n>``."""

    def __init__(self, site_key: str, batch: int, fragments: list[tuple[bytes, int]], prefix: str, port: int):
        self.batch = batch
        self.fragments = fragments
        self.prefix = prefix.encode()
        self.n = 0
        self.pos = random.randrange(len(fragments))
        self.rnd = random.Random(prefix)
        self.head = b'{"site_key":"' + site_key.encode() + b'","events":['
        self.req_head = (b"POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:" + str(port).encode() +
                         b"\r\nUser-Agent: " + UA + b"\r\nOrigin: https://shop.example\r\n"
                         b"Content-Type: application/json\r\nContent-Length: ")

    def next(self) -> bytes:
        parts = []
        frags = self.fragments
        nf = len(frags)
        for _ in range(self.batch):
            frag, slots = frags[self.pos]
            self.pos = (self.pos + 1) % nf
            eid = self.prefix + str(self.n).encode()
            self.n += 1
            parts.append(frag % ((eid,) * slots))
        visitor = b"v%d" % self.rnd.randrange(1, 20_000)
        body = (self.head + b",".join(parts) + b"]}").replace(b"@@VIS@@", visitor)
        return self.req_head + str(len(body)).encode() + b"\r\n\r\n" + body


# -- raw HTTP/1.1 client -------------------------------------------------------------------------
class HttpConn(asyncio.Protocol):
    """One keep-alive connection; ``request(bytes)`` -> (status, body). One request at a time."""

    def __init__(self):
        self.transport = None
        self.buf = bytearray()
        self.waiter: asyncio.Future | None = None
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection lost: {exc}"))

    def data_received(self, data: bytes):
        self.buf += data
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buf[:end]).lower()
        i = head.find(b"content-length:")
        if i < 0:
            if self.waiter and not self.waiter.done():
                self.waiter.set_exception(ConnectionError("reply without content-length: " + head.decode(errors="replace")))
            return
        j = head.find(b"\r\n", i)
        length = int(head[i + 15:j if j > 0 else len(head)])
        total = end + 4 + length
        if len(buf) < total:
            return
        status = int(head[9:12])
        body = bytes(buf[end + 4:total])
        del buf[:total]
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result((status, body))

    async def request(self, data: bytes):
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter


@dataclass
class Result:
    target: str                 # "empty" or "ingest"
    sync: str | None
    batch: int
    connections: int
    round: int
    seconds: float
    requests: int
    req_per_s: float
    events_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    non_200: int
    server_cpu_pct: float
    client_cpu_pct: float
    server_cpu_us_per_request: float = 0.0
    server_cpu_us_per_event: float = 0.0
    writer_cpu_pct: float = 0.0  # the writer process's share of server_cpu_pct (0 when the writer is a thread)
    builder_cpu_pct: float = 0.0  # the model builder process's share (server/builder.py), when it runs
    count_check: dict = field(default_factory=dict)
    loadavg_1m: list = field(default_factory=list)
    cpu_pressure_pct: float | None = None


async def run_scenario(port: int, site_key: str, batch: int, connections: int, duration: float, warmup: float,
                       fragments, prefix: str, parse_replies: bool, cpu_probe=None, writer_probe=None,
                       builder_probe=None) -> dict:
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(connections):
        _, proto = await loop.create_connection(HttpConn, "127.0.0.1", port)
        conns.append(proto)
    latencies: list[float] = []
    done_times: list[float] = []
    stats = {"acked_events": 0, "accepted": 0, "duplicates": 0, "rejected": 0, "dropped": 0, "non_200": 0,
             "sent_events": 0, "errors": []}
    stop = False

    async def worker(i: int, conn: HttpConn):
        maker = BodyMaker(site_key, batch, fragments, f"{prefix}-{i}-", port)
        perf = time.perf_counter
        while not stop:
            req = maker.next()
            t0 = perf()
            status, body = await conn.request(req)
            t1 = perf()
            latencies.append(t1 - t0)
            done_times.append(t1)
            stats["sent_events"] += batch
            if status != 200:
                stats["non_200"] += 1
                if len(stats["errors"]) < 5:
                    stats["errors"].append(f"{status}: {body[:300].decode(errors='replace')}")
                continue
            if parse_replies:
                r = json.loads(body)
                stats["acked_events"] += batch
                stats["accepted"] += r["accepted"]
                stats["duplicates"] += r["duplicates"]
                stats["dropped"] += r["dropped"]
                stats["rejected"] += len(r["rejected"])

    tasks = [asyncio.create_task(worker(i, c)) for i, c in enumerate(conns)]
    t_start = time.perf_counter()
    await asyncio.sleep(warmup)
    m_start = time.perf_counter()
    cpu0 = time.process_time()
    srv0 = cpu_probe() if cpu_probe else 0.0
    wr0 = writer_probe() if writer_probe else 0.0
    bu0 = builder_probe() if builder_probe else 0.0
    await asyncio.sleep(duration)
    m_end = time.perf_counter()
    cpu1 = time.process_time()
    srv1 = cpu_probe() if cpu_probe else 0.0
    wr1 = writer_probe() if writer_probe else 0.0
    bu1 = builder_probe() if builder_probe else 0.0
    stop = True
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)  # drain: every request in flight answered
    for c in conns:
        c.transport.close()
    window = [(t, lat) for t, lat in zip(done_times, latencies) if m_start <= t < m_end]
    lats = sorted(lat for _, lat in window)
    n = len(lats)

    def pct(p):
        return round(lats[min(n - 1, int(p * n))] * 1000, 2) if n else 0.0

    secs = m_end - m_start
    return {"requests": n, "seconds": round(secs, 3), "req_per_s": round(n / secs, 1),
            "events_per_s": round(n * batch / secs, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
            "max_ms": round(lats[-1] * 1000, 2) if n else 0.0, "client_cpu_pct": round(100 * (cpu1 - cpu0) / secs, 1),
            "server_cpu_pct": round(100 * (srv1 - srv0) / secs, 1),
            "writer_cpu_pct": round(100 * (wr1 - wr0) / secs, 1),
            "builder_cpu_pct": round(100 * (bu1 - bu0) / secs, 1),
            "server_cpu_us_per_request": round(1e6 * (srv1 - srv0) / n, 1) if n else 0.0,
            "server_cpu_us_per_event": round(1e6 * (srv1 - srv0) / (n * batch), 2) if n else 0.0,
            "total_s": round(time.perf_counter() - t_start, 2), "_latencies": lats, **stats}


def combine(parts: list[dict], batch: int) -> dict:
    """One scenario measured in several interleaved slices -> the figures of the whole."""
    secs = sum(p["seconds"] for p in parts)
    n = sum(p["requests"] for p in parts)
    lats = sorted(x for p in parts for x in p["_latencies"])

    def pct(q):
        return round(lats[min(len(lats) - 1, int(q * len(lats)))] * 1000, 2) if lats else 0.0

    srv_cpu = sum(p["server_cpu_pct"] * p["seconds"] / 100 for p in parts)
    wr_cpu = sum(p.get("writer_cpu_pct", 0.0) * p["seconds"] / 100 for p in parts)
    bu_cpu = sum(p.get("builder_cpu_pct", 0.0) * p["seconds"] / 100 for p in parts)
    cli_cpu = sum(p["client_cpu_pct"] * p["seconds"] / 100 for p in parts)
    pressures = [p["cpu_pressure_pct"] for p in parts if p.get("cpu_pressure_pct") is not None]
    out = {"requests": n, "seconds": round(secs, 3), "req_per_s": round(n / secs, 1) if secs else 0.0,
           "events_per_s": round(n * batch / secs, 1) if secs else 0.0, "p50_ms": pct(0.5), "p99_ms": pct(0.99),
           "max_ms": round(lats[-1] * 1000, 2) if lats else 0.0,
           "client_cpu_pct": round(100 * cli_cpu / secs, 1) if secs else 0.0,
           "server_cpu_pct": round(100 * srv_cpu / secs, 1) if secs else 0.0,
           "writer_cpu_pct": round(100 * wr_cpu / secs, 1) if secs else 0.0,
           "builder_cpu_pct": round(100 * bu_cpu / secs, 1) if secs else 0.0,
           "server_cpu_us_per_request": round(1e6 * srv_cpu / n, 1) if n else 0.0,
           "server_cpu_us_per_event": round(1e6 * srv_cpu / (n * batch), 2) if n else 0.0,
           "loadavg_1m": [parts[0]["loadavg_1m"][0], parts[-1]["loadavg_1m"][-1]],
           "cpu_pressure_pct": round(sum(pressures) / len(pressures), 1) if pressures else None,
           "slices": len(parts), "errors": [e for p in parts for e in p["errors"]][:5]}
    for k in ("acked_events", "accepted", "duplicates", "rejected", "dropped", "non_200", "sent_events"):
        out[k] = sum(p[k] for p in parts)
    return out


def count_check(shard_path: Path, stats: dict) -> dict:
    conn = sqlite3.connect(f"file:{shard_path}?mode=ro", uri=True)
    try:
        rows, distinct = conn.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone()
    finally:
        conn.close()
    ok = (rows == stats["accepted"] and distinct == rows and stats["duplicates"] == 0
          and stats["rejected"] == 0 and stats["dropped"] == 0 and stats["accepted"] == stats["acked_events"])
    return {"ok": ok, "rows_in_shard": rows, "distinct_ids": distinct, "sum_accepted": stats["accepted"],
            "events_in_200_replies": stats["acked_events"], "duplicates": stats["duplicates"],
            "rejected": stats["rejected"], "dropped": stats["dropped"]}


def measure(server: ServerProcess, **kw) -> dict:
    load0 = os.getloadavg()[0]
    coro = run_scenario(server.port, cpu_probe=server.cpu_seconds,
                        writer_probe=lambda: server.child_cpu_seconds("server.writer_service"),
                        builder_probe=lambda: server.child_cpu_seconds("server.builder"), **kw)
    # server CPU in the measured window, as % of one core (the server may use 2 cores: loop + writer thread)
    out = _uvloop_run(coro) if _UVLOOP else asyncio.run(coro)
    # the 1-minute load average before and after: other work on the machine skews the figures
    out["loadavg_1m"] = [round(load0, 2), round(os.getloadavg()[0], 2)]
    out["cpu_pressure_pct"] = cpu_pressure()
    return out


def cpu_pressure() -> float | None:
    """Linux PSI: % of the last 10 s in which some runnable task waited for a CPU (machine contention)."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
        return float(line.split("avg10=")[1].split()[0])
    except (OSError, IndexError, ValueError):
        return None


try:
    import uvloop as _uvloop_mod

    _UVLOOP = True

    def _uvloop_run(coro):
        return _uvloop_mod.run(coro)
except ImportError:  # pragma: no cover
    _UVLOOP = False


# -- the run -------------------------------------------------------------------------------------
def result_row(target, sync, batch, connections, m, check=None, round_no=1) -> Result:
    return Result(target=target, sync=sync, batch=batch, connections=connections, round=round_no, seconds=m["seconds"],
                  requests=m["requests"], req_per_s=m["req_per_s"], events_per_s=m["events_per_s"],
                  p50_ms=m["p50_ms"], p99_ms=m["p99_ms"], max_ms=m["max_ms"], non_200=m["non_200"],
                  server_cpu_pct=m["server_cpu_pct"], client_cpu_pct=m["client_cpu_pct"],
                  writer_cpu_pct=m.get("writer_cpu_pct", 0.0), builder_cpu_pct=m.get("builder_cpu_pct", 0.0),
                  server_cpu_us_per_request=m["server_cpu_us_per_request"],
                  server_cpu_us_per_event=m["server_cpu_us_per_event"], count_check=check or {},
                  loadavg_1m=m["loadavg_1m"], cpu_pressure_pct=m.get("cpu_pressure_pct"))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per scenario (default 10)")
    ap.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each window (default 1)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="repeat every scenario this many times, interleaved; the table shows each scenario's "
                         "best round (default 1)")
    ap.add_argument("--slice", type=float, default=2.0,
                    help="measure each scenario in slices of this many seconds, taking the endpoints in turn "
                         "slice by slice, so that other load on the machine hits all of them alike (0: one piece; "
                         "default 2)")
    ap.add_argument("--batches", default="1,10,50", help="events per request, comma-separated (default 1,10,50)")
    ap.add_argument("--connections", type=int, default=64, help="concurrent keep-alive connections (default 64)")
    ap.add_argument("--sync", default="FULL,NORMAL",
                    help="SQLite synchronous modes to run (default FULL,NORMAL); a mode may carry extra server "
                         "settings for an A/B run in one go: FULL,FULL+FUNNELREC_WRITE_GROUP_WAIT_MS=0 "
                         "(each its own server; several joined with +); +@DIR serves the code of another "
                         "checkout (e.g. a git worktree of an older commit): FULL,FULL+@/tmp/old")
    ap.add_argument("--workers", type=int, default=1,
                    help="uvicorn workers of the funnelrec servers (default 1; the empty endpoint always has 1)")
    ap.add_argument("--no-empty", action="store_true", help="skip the empty-endpoint baseline")
    ap.add_argument("--out", type=Path, default=RESULTS, help=f"JSON output (default {RESULTS.relative_to(ROOT)})")
    ap.add_argument("--keep", action="store_true", help="keep the temp data dirs and print where they are")
    ap.add_argument("--profile", type=Path, default=None,
                    help="record each ingest scenario's server with py-spy (collapsed stacks) into this folder")
    ap.add_argument("--profile-gil", action="store_true",
                    help="with --profile: sample only the thread holding the GIL (where the one usable core goes)")
    a = ap.parse_args(argv)
    global _PROFILE_GIL
    _PROFILE_GIL = a.profile_gil
    batches = [int(b) for b in a.batches.split(",") if b.strip()]
    syncs = [s.strip() for s in a.sync.split(",") if s.strip()]
    run_id = f"r{int(time.time())}"
    fragments = event_fragments(5000, 42, int(time.time() * 1000))
    runs: list[Result] = []
    failures: list[str] = []
    print(f"# bench/ingest: {a.duration:g} s per scenario (+{a.warmup:g} s warm-up) x {a.rounds} round(s), "
          f"{a.connections} connections, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
          f"client loop: {'uvloop' if _UVLOOP else 'asyncio'}", file=sys.stderr)

    # Every server is started first and the scenarios run back to back, the empty endpoint right
    # before the real one for each batch size, so that other load on the machine hits them alike.
    import contextlib
    import shutil

    with contextlib.ExitStack() as stack:
        targets: list[tuple[str, str | None, ServerProcess, dict]] = []
        if not a.no_empty:
            port = free_port()
            srv = stack.enter_context(ServerProcess([sys.executable, "-m", "bench.empty_app", "--port", str(port)],
                                                    port, name="empty"))
            targets.append(("empty", None, srv, {}))
        for sync in syncs:
            mode, *extra = sync.split("+")
            data_dir = Path(tempfile.mkdtemp(prefix=f"funnelrec-bench-{mode.lower()}-"))
            if a.keep:
                print(f"data dir ({sync}): {data_dir}", file=sys.stderr)
            else:
                stack.callback(shutil.rmtree, data_dir, True)
            env = {**os.environ, "FUNNELREC_RATE_LIMIT_RPS": "0", "FUNNELREC_SQLITE_SYNCHRONOUS": mode.upper(),
                   "FUNNELREC_LOG_LEVEL": "warning", "FUNNELREC_DATA_DIR": str(data_dir),
                   **dict(kv.split("=", 1) for kv in extra if not kv.startswith("@"))}
            cwd = next((Path(kv[1:]) for kv in extra if kv.startswith("@")), ROOT)
            tenants = {b: create_tenant(data_dir, f"bench-b{b}", env=env) for b in batches}
            port = free_port()
            cmd = funnelrec_cmd("serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", str(a.workers))
            srv = stack.enter_context(ServerProcess(cmd, port, env=env, name=f"funnelrec-{mode.lower()}", cwd=cwd))
            totals = {b: {"accepted": 0, "acked_events": 0, "duplicates": 0, "rejected": 0, "dropped": 0} for b in batches}
            targets.append(("ingest", sync, srv, {"data_dir": data_dir, "tenants": tenants, "totals": totals}))

        n_slices = max(1, round(a.duration / a.slice)) if a.slice else 1
        for rnd in range(a.rounds):
            for b in batches:
                parts: dict[int, list[dict]] = {i: [] for i in range(len(targets))}
                spies = {}
                for k in range(n_slices):
                    # round-robin over the targets, slice by slice: each sees the same machine load
                    for i, (target, sync, srv, info) in enumerate(targets):
                        ingest = target == "ingest"
                        if k == 0 and ingest and a.profile:
                            spies[i] = start_profile(a.profile, srv, f"ingest-{sync.lower()}-b{b}-r{rnd + 1}",
                                                     (a.warmup + a.duration) if n_slices == 1 else 3600)
                        m = measure(srv, site_key=info["tenants"][b]["site_key"] if ingest else "pk_none", batch=b,
                                    connections=a.connections, duration=a.duration / n_slices,
                                    warmup=a.warmup if k == 0 else min(a.warmup, 0.3), fragments=fragments,
                                    prefix=f"{run_id}-{i}-{b}-{rnd}-{k}", parse_replies=ingest)
                        parts[i].append(m)
                for i, spy in spies.items():
                    if n_slices > 1:
                        spy.send_signal(2)  # SIGINT: py-spy writes its output and exits
                    spy.wait(timeout=60)
                for i, (target, sync, srv, info) in enumerate(targets):
                    ingest = target == "ingest"
                    label = f"{target} {sync or '':6} batch {b:3} round {rnd + 1}"
                    m = combine(parts[i], b)
                    check = None
                    if ingest:
                        tot = info["totals"][b]
                        for key in tot:
                            tot[key] += m[key]
                        check = count_check(info["data_dir"] / "tenants" / f"bench-b{b}.db", tot)
                        if not check["ok"]:
                            failures.append(f"count check failed for {sync} batch {b} round {rnd + 1}: {check}")
                    if m["non_200"]:
                        failures.append(f"{m['non_200']} non-200 replies for {label}: {m['errors']}")
                        print(srv.log(), file=sys.stderr)
                    runs.append(result_row(target, sync, b, a.connections, m, check, rnd + 1))
                    print(f"{label}: {m['events_per_s']:>9,.0f} events/s {m['req_per_s']:>8,.0f} req/s  "
                          f"p50 {m['p50_ms']} ms  p99 {m['p99_ms']} ms  server CPU {m['server_cpu_pct']}% "
                          f"({m['server_cpu_us_per_request']:,.0f} µs/req, writer process {m['writer_cpu_pct']}%, builder {m['builder_cpu_pct']}%)  client CPU {m['client_cpu_pct']}%  "
                          f"load {m['loadavg_1m']}  CPU pressure {m['cpu_pressure_pct']}%"
                          + (f"  count check {'ok' if check['ok'] else 'FAILED'}" if check else ""), file=sys.stderr)

    results = best_rounds(runs)
    targets_met = evaluate_targets(results)
    report = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform(),
                    "client_loop": "uvloop" if _UVLOOP else "asyncio"},
        "settings": {"duration_s": a.duration, "warmup_s": a.warmup, "slice_s": a.slice, "rounds": a.rounds, "connections": a.connections,
                     "batches": batches, "sync": syncs, "server": f"funnelrec serve, {a.workers} worker(s), rate limit off"},
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "results": [asdict(r) for r in results],
        "targets": targets_met,
        "all_rounds": [asdict(r) for r in runs],
        "failures": failures,
    }
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print(markdown(results, targets_met))
    for f in failures:
        print(f"FAILURE: {f}", file=sys.stderr)
    return 1 if failures else 0


def best_rounds(runs: list[Result]) -> list[Result]:
    """Per (endpoint, synchronous, batch): the round with the highest request rate."""
    best: dict[tuple, Result] = {}
    for r in runs:
        key = (r.target, r.sync, r.batch)
        if key not in best or r.req_per_s > best[key].req_per_s:
            best[key] = r
    order = {("empty", None): 0}
    return sorted(best.values(), key=lambda r: (order.get((r.target, r.sync), 1), r.sync or "", r.batch))


_PROFILE_GIL = False


def start_profile(folder: Path | None, srv: ServerProcess, name: str, seconds: float):
    """py-spy (pip install py-spy) sampling the server process and its children (the writer
    process), all threads, for ``seconds``."""
    if folder is None:
        return None
    import shutil
    import subprocess

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([spy, "record", "-p", str(srv.pid), "-d", str(int(seconds) + 1), "-r", "250",
                             "--format", "raw", "--threads", "--subprocesses", *(["--gil"] if _PROFILE_GIL else []),
                             "-o", str(folder / f"{name}.txt")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def evaluate_targets(results: list[Result]) -> list[dict]:
    out = []
    empty1 = next((r for r in results if r.target == "empty" and r.batch == 1), None)
    for r in results:
        if r.target != "ingest":
            continue
        if r.batch == 50:
            out.append({"what": f"events/s with 50-event batches ({r.sync})", "value": r.events_per_s,
                        "target": 50_000, "met": r.events_per_s >= 50_000})
        if r.batch == 1 and empty1 is not None:
            ratio = r.req_per_s / empty1.req_per_s if empty1.req_per_s else 0.0
            out.append({"what": f"1-event req/s vs empty endpoint ({r.sync})", "value": round(ratio, 3),
                        "target": 0.25, "met": ratio >= 0.25})
    return out


def markdown(results: list[Result], targets: list[dict]) -> str:
    lines = ["| endpoint | synchronous | events/request | req/s | events/s | p50 ms | p99 ms | server CPU | of which writer process | of which builder | server CPU µs/request | client CPU | load avg | CPU pressure | non-200 | count check |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in results:
        check = ""
        if r.count_check:
            c = r.count_check
            check = (f"{'ok' if c['ok'] else 'FAILED'}: {c['rows_in_shard']:,} rows = {c['sum_accepted']:,} accepted"
                     if c["ok"] else f"FAILED {c}")
        name = "empty Starlette POST" if r.target == "empty" else "POST /v1/events"
        lines.append(f"| {name} | {r.sync or '-'} | {r.batch} | {r.req_per_s:,.0f} | {r.events_per_s:,.0f} | "
                     f"{r.p50_ms} | {r.p99_ms} | {r.server_cpu_pct:.0f}% | {f'{r.writer_cpu_pct:.0f}%' if r.writer_cpu_pct else '-'} | {f'{r.builder_cpu_pct:.0f}%' if r.builder_cpu_pct else '-'} | {r.server_cpu_us_per_request:,.0f} | {r.client_cpu_pct:.0f}% | {r.loadavg_1m[-1] if r.loadavg_1m else ''} | {'' if r.cpu_pressure_pct is None else f'{r.cpu_pressure_pct:.0f}%'} | {r.non_200} | {check} |")
    if targets:
        lines.append("")
        for t in targets:
            lines.append(f"- {t['what']}: **{t['value']:,}** (target ≥ {t['target']:,}) — {'met' if t['met'] else 'MISSED'}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
