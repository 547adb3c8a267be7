"""Recommendation serving on loopback: requests/s and p50/p99, beside an empty Starlette endpoint.

    .venv/bin/python -m bench.serve [--duration 10] [--connections 32] [--csv PATH] [--workers 1,2]
        [--no-empty] [--roots TREE,TREE,...] [--out PATH] [--keep]

``--roots`` serves funnelrec from each source tree in turn on the same data (before/after a
change side by side in one run, e.g. ``--roots /tmp/base,.,/tmp/base,.``).

One run:
1. a fresh data dir with one tenant loaded with the full online-retail data (``bench/retail.py``:
   every product, one purchase event per invoice), plus live-looking history for 20,000 bench
   visitors: first every real customer with a basket of 2+ lines (``c<CustomerID>``, so their
   purchases are theirs), then new visitors (``bv<k>``); each viewed 2-5 products of a basket
   (their own, for customers) in the bench session, with engagement (time, scroll);
2. ``funnelrec serve`` (1 worker, rate limit off, OPENBLAS_NUM_THREADS=1); the model is built
   through ``POST /v1/engine/rebuild?wait=1`` before measuring;
3. an empty Starlette POST endpoint (``bench/empty_app.py``, served like funnelrec) measured
   with the very same request bytes before and again after the funnelrec servers (the faster
   of the two is the baseline: the ratios are against it), and between them
   ``POST /v1/recommend`` with personalised requests:
   a mix of main (personal), detail (substitutes + complements: 2 slots), cart and category
   pages, 8 products per slot, each from a bench visitor and session with history; a pool of
   60,000 such requests, walked in order by all connections, so a "fresh" run repeats none
   (``pool_repeated`` in the results says if it did) and the result cache cannot answer;
   "repeat" walks the first 400 again and again (visitors reloading pages);
   before measuring, the builder process is let finish (model, then the learned ranker);
4. every reply is checked for status 200, and one in ten is parsed to check that every slot is
   full (8 items): parsing them all would cost the client (on the same 2 cores) more CPU than
   the empty endpoint's replies cost it.

The client is the raw keep-alive HTTP/1.1 client of ``bench/ingest.py`` (one request in flight
per connection). Output: Markdown on stdout, ``bench/results/serve.json``. Server CPU is the
server's process tree (with 1 worker the ``funnelrec serve`` process is the worker; the writer
and builder processes are its children), also per request sent and split by process.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, ServerProcess, create_tenant, free_port, funnelrec_cmd  # noqa: E402
from bench.ingest import HttpConn, UA, _UVLOOP  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "serve.json"
VISITORS = 20_000
POOL = 60_000  # fresh requests: more than a run sends, so no body repeats (the result cache cannot answer)


def seed_history(shard, invoices, n: int, seed: int = 7) -> list[dict]:
    """Bench visitors: real customers viewing products of one of their baskets, now."""
    from server.ingest.schema import event_from_obj
    from server.ingest.store import store_events_job

    rng = random.Random(seed)
    by_customer: dict[str, list] = {}
    baskets = []
    for inv, visitor, ts, lines in invoices:
        if len(lines) >= 2:
            baskets.append(lines)
            if visitor.startswith("c"):
                by_customer.setdefault(visitor, []).append(lines)
    customers = sorted(by_customer)
    rng.shuffle(customers)
    # beyond the real customers: new visitors browsing a real basket (history in this session only)
    customers += [f"bv{k}" for k in range(max(0, n - len(customers)))]
    clock = max(ts for _, _, ts, _ in invoices)
    people, events = [], []
    for k, visitor in enumerate(customers[:n]):
        lines = rng.choice(by_customer[visitor]) if visitor in by_customer else rng.choice(baskets)
        viewed = [l[0] for l in rng.sample(lines, min(len(lines), rng.randint(2, 5)))]
        session = f"bs{k}"
        t = clock - 600_000 + k
        for j, p in enumerate(viewed):
            events.append({"id": f"bv{k}-{j}", "type": "page_view", "visitor": visitor, "session": session,
                           "ts": t + j * 1000, "page": "detail", "product": p})
            events.append({"id": f"be{k}-{j}", "type": "engagement", "visitor": visitor, "session": session,
                           "ts": t + j * 1000 + 500, "page": "detail", "product": p,
                           "engaged_ms": rng.choice([1500, 8000, 25000, 60000]), "scroll_pct": rng.randint(10, 100)})
        people.append({"visitor": visitor, "session": session, "viewed": viewed,
                       "cart": [l[0] for l in lines[:2]]})
    for i in range(0, len(events), 2000):
        shard.write_sync(store_events_job([event_from_obj(e) for e in events[i:i + 2000]], clock, "import"))
    return people


def request_bodies(site_key: str, people: list[dict], categories: list[str], n: int, seed: int = 11) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        p = people[k % len(people)]
        kind = rng.choice(["main", "main", "detail", "detail", "cart", "category"])
        body = {"site_key": site_key, "visitor": p["visitor"], "session": p["session"], "user": None, "locale": "en"}
        if kind == "main":
            body.update(page={"type": "main"}, slots=[{"id": "home", "placement": "main", "count": 8}])
        elif kind == "detail":
            body.update(page={"type": "detail", "product": p["viewed"][-1]},
                        slots=[{"id": "sim", "placement": "detail_similar", "count": 8},
                               {"id": "acc", "placement": "detail_complements", "count": 8}])
        elif kind == "cart":
            body.update(page={"type": "cart", "cart": p["cart"]}, slots=[{"id": "cart", "placement": "cart", "count": 8}])
        else:
            body.update(page={"type": "category", "category": rng.choice(categories)},
                        slots=[{"id": "cat", "placement": "category", "count": 8}])
        out.append(json.dumps(body, separators=(",", ":")).encode())
    return out


def framed(bodies: list[bytes], path: str, port: int) -> list[bytes]:
    head = (b"POST " + path.encode() + b" HTTP/1.1\r\nHost: 127.0.0.1:" + str(port).encode() + b"\r\nUser-Agent: " + UA +
            b"\r\nOrigin: https://shop.example\r\nContent-Type: text/plain\r\nContent-Length: ")
    return [head + str(len(b)).encode() + b"\r\n\r\n" + b for b in bodies]


async def run(port: int, reqs: list[bytes], connections: int, duration: float, warmup: float, check: bool) -> dict:
    loop = asyncio.get_running_loop()
    conns = []
    for _ in range(connections):
        _, proto = await loop.create_connection(HttpConn, "127.0.0.1", port)
        conns.append(proto)
    lat: list[tuple[float, float]] = []
    stats = {"non_200": 0, "short_slots": 0, "slots": 0, "sampled": 0, "errors": []}
    stop = False
    sent = [0]

    async def worker(i: int, conn: HttpConn):
        perf = time.perf_counter
        while not stop:
            k = sent[0]  # the connections walk the pool together, in order
            sent[0] = k + 1
            req = reqs[k % len(reqs)]
            t0 = perf()
            status, body = await conn.request(req)
            t1 = perf()
            lat.append((t1, t1 - t0))
            if status != 200:
                stats["non_200"] += 1
                if len(stats["errors"]) < 5:
                    stats["errors"].append(f"{status}: {body[:300].decode(errors='replace')}")
            elif check and k % 10 == 0:  # a sample: parsing every reply would load the client more than the server
                stats["sampled"] += 1
                for s in json.loads(body)["slots"].values():
                    stats["slots"] += 1
                    if len(s["items"]) < 8:
                        stats["short_slots"] += 1

    tasks = [asyncio.create_task(worker(i, c)) for i, c in enumerate(conns)]
    await asyncio.sleep(warmup)
    m0 = time.perf_counter()
    await asyncio.sleep(duration)
    m1 = time.perf_counter()
    stop = True
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=60)
    for c in conns:
        c.transport.close()
    lats = sorted(d for t, d in lat if m0 <= t < m1)
    n = len(lats)

    def pct(p):
        return round(lats[min(n - 1, int(p * n))] * 1000, 2) if n else 0.0

    return {"requests": n, "req_per_s": round(n / (m1 - m0), 1), "p50_ms": pct(0.5), "p99_ms": pct(0.99),
            "max_ms": round(lats[-1] * 1000, 2) if n else 0.0, "sent": sent[0], "pool": len(reqs),
            "pool_repeated": sent[0] > len(reqs), **stats}


def warm(port: int, body: bytes, secret: str, timeout: float = 600) -> float:
    """Until every worker has its model: 30 answers in a row on fresh connections that are not
    ``cold_start`` (a worker's first request starts its background build)."""
    t0 = time.perf_counter()
    ok = 0
    while ok < 30:
        if time.perf_counter() - t0 > timeout:
            raise RuntimeError("the model was not built in time")
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/recommend", data=body, method="POST",
                                     headers={"content-type": "text/plain", "origin": "https://shop.example"})
        with urllib.request.urlopen(req, timeout=600) as r:
            slots = json.loads(r.read())["slots"]
        if any(s["strategy"] == "cold_start" for s in slots.values()):
            ok = 0
            time.sleep(0.5)
        else:
            ok += 1
    return time.perf_counter() - t0


def settle(port: int, secret: str, timeout: float = 180) -> dict:
    """Until the builder is done (model and, when it trains one, the ranker): measuring while
    it trains would measure the training's CPU on these 2 cores too."""
    t0 = time.perf_counter()
    st: dict = {}
    while time.perf_counter() - t0 < timeout:
        req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/engine/status",
                                     headers={"authorization": f"Bearer {secret}"})
        with urllib.request.urlopen(req, timeout=60) as r:
            st = json.loads(r.read())
        if st.get("builder") != "process" or (st.get("ranker") and not st.get("building")):
            break
        time.sleep(0.5)
    time.sleep(1.0)  # the workers load the last model file
    return st


def gc_pauses(port: int) -> dict:
    """The server's cyclic-GC pauses so far (``funnelrec_gc_pause_seconds`` on /metrics): count,
    total ms and count over 10 ms per generation (one worker's: the one that answered)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        text = r.read().decode()
    out: dict = {}
    for line in text.splitlines():
        if not line.startswith("funnelrec_gc_pause_seconds"):
            continue
        name, value = line.rsplit(" ", 1)
        gen = name.split('generation="')[1].split('"')[0]
        g = out.setdefault(f"gen{gen}", {})
        if name.startswith("funnelrec_gc_pause_seconds_count"):
            g["count"] = int(float(value))
        elif name.startswith("funnelrec_gc_pause_seconds_sum"):
            g["total_ms"] = round(float(value) * 1000, 1)
        elif 'le="0.01"' in name:
            g["le_10ms"] = int(float(value))
    for g in out.values():
        g["over_10ms"] = g.get("count", 0) - g.pop("le_10ms", 0)
    return out


def _proc_counts(pid: int) -> dict[str, int]:
    """System calls that read and write (``/proc/PID/io``: sockets, files, the live state's
    ``pread``) and page faults (minor, major) of the serve process so far: what its system time
    goes to."""
    out: dict[str, int] = {}
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("syscr", "syscw"):
                out[name] = int(value)
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        out["minflt"], out["majflt"] = int(fields[7]), int(fields[9])
    except (OSError, IndexError, ValueError):
        pass
    return out


def measure(srv: ServerProcess, reqs, a, check: bool) -> dict:
    try:
        gc0 = gc_pauses(srv.port)
    except Exception:  # the empty endpoint has no metrics
        gc0 = None
    c0 = srv.cpu_seconds()
    s0 = srv.cpu_split()
    k0 = _proc_counts(srv.proc.pid)
    t0 = time.perf_counter()
    coro = run(srv.port, reqs, a.connections, a.duration, a.warmup, check)
    if _UVLOOP:
        import uvloop
        m = uvloop.run(coro)
    else:
        m = asyncio.run(coro)
    wall = time.perf_counter() - t0
    cpu = srv.cpu_seconds() - c0
    m["server_cpu_pct"] = round(100 * cpu / wall, 1)
    # the CPU counts the warm-up too, so per request it is over every request sent
    m["server_cpu_us_per_req"] = round(1e6 * cpu / max(m["sent"], 1), 1)
    m["cpu_split_us_per_req"] = {k: round(1e6 * (v - s0.get(k, 0.0)) / max(m["sent"], 1), 1)
                                 for k, v in srv.cpu_split().items()}
    # the serve process's system calls and page faults per request sent (with 1 worker, the worker's)
    m["serve_counts_per_req"] = {k: round((v - k0.get(k, 0)) / max(m["sent"], 1), 2)
                                 for k, v in _proc_counts(srv.proc.pid).items()}
    if gc0 is not None:  # the pauses during this scenario (warm-up included)
        gc1 = gc_pauses(srv.port)
        m["gc"] = {g: {k: v - gc0.get(g, {}).get(k, 0) for k, v in d.items()} for g, d in gc1.items()}
    return m


def serve_funnelrec(root: Path, workers: int, tag: str, data_dir: Path, env: dict, t: dict, bodies: list, a,
                    results: dict) -> float:
    """``funnelrec serve`` from the tree ``root`` (``python -m server`` imports the tree it runs
    in; its sidecars inherit the directory): the fresh and the repeat scenarios."""
    port = free_port()
    cmd = funnelrec_cmd("serve", "--port", str(port), "--data-dir", str(data_dir), "--workers", str(workers))
    with ServerProcess(cmd, port, env=env, name="funnelrec", cwd=root) as srv:
        build_s = warm(port, bodies[0], t["secret_key"])
        st = settle(port, t["secret_key"])
        print(f"models built and serving after {build_s:.2f} s; ranker: {st.get('ranker')}", file=sys.stderr)
        for scenario, pool in (("recommend", bodies), ("recommend repeat", bodies[:a.repeat_pool])):
            name = f"{scenario}, {workers} worker{'s' if workers > 1 else ''}{tag}"
            results[name] = measure(srv, framed(pool, "/v1/recommend", port), a, check=True)
            print(f"{name}: {results[name]}", file=sys.stderr)
            if results[name]["non_200"]:
                print(srv.log(), file=sys.stderr)
    return build_s


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", default=None)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--workers", default="1,2", help="funnelrec worker processes to measure (default 1,2)")
    ap.add_argument("--no-empty", action="store_true", help="skip the empty endpoint")
    ap.add_argument("--inline-empty", action="store_true",
                    help="also the empty endpoint answered inline as funnelrec's hot paths are (reported, not the baseline)")
    ap.add_argument("--roots", default=None,
                    help="comma-separated source trees to serve funnelrec from, in turn, on the same data "
                         "(e.g. /tmp/base,.,/tmp/base,.: before/after side by side in one run); default: this one")
    ap.add_argument("--repeat-pool", type=int, default=400,
                    help="size of the request pool of the 'repeat' scenario (visitors reloading pages: result cache)")
    a = ap.parse_args(argv)
    from bench.retail import find_csv, load, read_invoices
    from server.shards import Shard

    products, invoices = read_invoices(find_csv(a.csv))
    data_dir = Path(tempfile.mkdtemp(prefix="funnelrec-serve-"))
    env = {**os.environ, "FUNNELREC_RATE_LIMIT_RPS": "0", "FUNNELREC_LOG_LEVEL": "warning",
           "FUNNELREC_DATA_DIR": str(data_dir), "OPENBLAS_NUM_THREADS": "1"}
    results = {}
    try:
        t = create_tenant(data_dir, "retail", "--currency", "GBP", env=env)
        shard = Shard("retail", data_dir / "tenants" / "retail.db", synchronous="NORMAL")
        loaded = load(shard, products, invoices)
        people = seed_history(shard, invoices, VISITORS)
        shard.close_sync()
        print(f"loaded {loaded}, {len(people)} bench visitors", file=sys.stderr)
        categories = sorted({p["category"] for p in products})
        bodies = request_bodies(t["site_key"], people, categories, POOL)

        def empty(when: str, inline: bool = False) -> None:
            for workers in [] if a.no_empty else [int(w) for w in a.workers.split(",")]:
                port = free_port()
                name = ("empty" if workers == 1 else f"empty, {workers} workers") + f" ({when})"
                with ServerProcess([sys.executable, "-m", "bench.empty_app", "--port", str(port), "--workers",
                                    str(workers), *(["--inline"] if inline else [])], port, name="empty") as srv:
                    results[name] = measure(srv, framed(bodies, "/v1/events", port), a, check=False)
                    print(f"{name}: {results[name]}", file=sys.stderr)

        empty("before")
        # funnelrec's own stack for an empty answer (its hot paths are answered inline, server/
        # inline.py; the Starlette endpoint through uvicorn's ASGI path): reported beside the
        # baseline, not the baseline
        if a.inline_empty:
            empty("answered inline", inline=True)
        roots = [Path(r).resolve() for r in a.roots.split(",")] if a.roots else [ROOT]
        for k, root in enumerate(roots):
            tag = f" [{k + 1}: {root.name if root != ROOT else 'this tree'}]" if a.roots else ""
            for workers in [int(w) for w in a.workers.split(",")]:
                build_s = serve_funnelrec(root, workers, tag, data_dir, env, t, bodies, a, results)
        empty("after")
        # the baseline of each worker count: the faster of its two measurements (the machine's
        # load moves by the minute; the faster one is the stack's rate, and the ratio against it
        # the lower one)
        for workers in [] if a.no_empty else [int(w) for w in a.workers.split(",")]:
            name = "empty" if workers == 1 else f"empty, {workers} workers"
            results[name] = max(results[f"{name} (before)"], results[f"{name} (after)"], key=lambda m: m["req_per_s"])
    finally:
        if a.keep:
            print(f"data dir kept: {data_dir}", file=sys.stderr)
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
    e = results.get("empty") or next((v for k, v in results.items() if k.startswith("empty")), {"req_per_s": 0})
    ratios = {k: round(m["req_per_s"] / e["req_per_s"], 3) for k, m in results.items() if k != "empty" and e["req_per_s"]}
    # the same server settings: funnelrec with N workers against the empty endpoint with N workers
    same = {}
    for k, m in results.items():
        if k.startswith("recommend"):
            w = k.split(", ")[-1].split(" ")[0]
            base = results.get("empty" if w == "1" else f"empty, {w} workers")
            if base and base["req_per_s"]:
                same[k] = round(m["req_per_s"] / base["req_per_s"], 3)
    # beside it: against the empty endpoint answered inline (--inline-empty), same workers
    inline_same = {}
    for k, m in results.items():
        if k.startswith("recommend"):
            w = k.split(", ")[-1].split(" ")[0]
            base = results.get(("empty" if w == "1" else f"empty, {w} workers") + " (answered inline)")
            if base and base["req_per_s"]:
                inline_same[k] = round(m["req_per_s"] / base["req_per_s"], 3)
    # the summary: each tree's fresh requests (1 worker if measured), the last tree's kept for the exit line
    fresh = [k for k in results if k.startswith("recommend, ") and "repeat" not in k]
    ones = [k for k in fresh if k.startswith("recommend, 1 worker")] or fresh
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
              "load_avg": os.getloadavg(), "connections": a.connections, "duration_s": a.duration, "results": results,
              "ratio_vs_empty": ratios, "ratio_vs_empty_same_workers": same,
              "ratio_vs_empty_answered_inline_same_workers": inline_same, "model_build_s": round(build_s, 2),
              "targets": {k: {"ratio >= 0.25": same.get(k, ratios.get(k, 0)) >= 0.25, "p99 < 20 ms": m["p99_ms"] < 20}
                          for k, m in results.items() if k.startswith("recommend")}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print("| endpoint | req/s | vs empty (1 worker) | vs empty, same workers | p50 ms | p99 ms | max ms | server CPU | "
          "server CPU µs/request (by process) | GC gen2 pauses (ms) | non-200 | short slots |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, m in results.items():
        g2 = m.get("gc", {}).get("gen2")
        gcs = f"{g2['count']} ({g2['total_ms']})" if g2 else ""
        split = ", ".join(f"{k} {v}" for k, v in m["cpu_split_us_per_req"].items())
        print(f"| {name} | {m['req_per_s']:,} | {ratios.get(name, 1.0 if name == 'empty' else '')} | {same.get(name, '')} | {m['p50_ms']} | {m['p99_ms']} | "
              f"{m['max_ms']} | {m['server_cpu_pct']}% | {m['server_cpu_us_per_req']} ({split}) | {gcs} | {m['non_200']} | "
              f"{m.get('short_slots', '')} |")
    print(f"\nload average during the run: {os.getloadavg()}")
    for k in ones:
        r = results[k]
        ratio = same.get(k, r["req_per_s"] / e["req_per_s"] if e["req_per_s"] else 0)
        slots_per_req = r["slots"] / max(r.get("sampled") or r["requests"] / 10, 1)
        print(f"\n{k}: recommend / empty = {ratio:.3f} (target >= 0.25); {slots_per_req:.2f} slots per request; "
              f"p99 {r['p99_ms']} ms (target < 20) at {a.connections} connections"
              + (f"; / the empty endpoint answered inline = {inline_same[k]:.3f}" if k in inline_same else ""))
    return 0 if all(m["non_200"] == 0 for m in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
