"""In-process cost of ``POST /v1/recommend`` on the bench tenant (no HTTP, no client): the
request path from the ASGI call to the reply, µs per request, optionally with cProfile.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.profile_serve [--requests 3000] [--visitors 20000] [--repeat] [--profile] [--ranker] [--census] [--glue N] [--by-kind]
        [--kind main|detail|cart|category]

Loads online-retail and the bench visitors of ``bench/serve.py`` (all 20,000 by default: with
fewer, the mix leans to real customers, whose trained vectors spare matrix_factorization the
fold-in that most bench/serve visitors need) into a temp data dir, builds
the model in process, then calls the app directly with ``bench/serve.py``'s request bodies
(``--repeat``: a pool of 300 requested again and again, as the "repeat" scenario). Use it to
see where a request's time goes before measuring over HTTP with ``bench/serve.py``.

``--glue N``: then N more passes over the same requests with each slot's ``run_slot`` answered
from what the measured pass computed (the result cache emptied before each pass, so its keys
are made and missed as on a fresh request): the request's cost outside ``run_slot`` (parse,
tenant, live state, Context, cache key, encoding, served rows, reply), in CPU time, the best
pass. Two trees side by side (``git archive``) compare their glue with the slots' work left out.
"""
from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


async def call(app, body: bytes) -> list:
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": "/v1/recommend", "raw_path": b"/v1/recommend", "query_string": b"", "root_path": "",
             "headers": [(b"host", b"bench"), (b"origin", b"https://shop.example"), (b"content-type", b"text/plain"),
                         (b"content-length", str(len(body)).encode()), (b"user-agent", b"Mozilla/5.0 Chrome/126")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}
    sent: list = []
    msgs = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive():
        return msgs.pop() if msgs else {"type": "http.disconnect"}

    async def send(m):
        sent.append(m)
    await app(scope, receive, send)
    return sent


async def _glue(app, pool: list, n: int, slots: list, passes: int) -> list[float]:
    """``--glue``: µs of CPU a request over ``passes`` replays of the first ``n`` of ``pool``
    with ``run_slot`` answered from ``slots`` (in order), the result cache emptied first."""
    import gc

    from server import serving

    run_slot, out = serving.run_slot, []
    try:
        for _ in range(passes):
            answers = iter(slots)
            serving.run_slot = lambda *args: next(answers)
            if app.state.engine.cache is not None:
                app.state.engine.cache._d.clear()
            gc.collect()
            t0 = time.process_time()
            for k in range(n):
                await call(app, pool[k % len(pool)])
            out.append((time.process_time() - t0) / n * 1e6)
    finally:
        serving.run_slot = run_slot
    return out


async def _by_kind(app, pool: list) -> dict:
    """``--by-kind``: µs of CPU a request for each page kind of ``pool``, each kind's requests
    in a row, after the result cache is emptied (so they are fresh again)."""
    import gc
    import json

    kinds: dict = {}
    for body in pool:
        kinds.setdefault(json.loads(body)["page"]["type"], []).append(body)
    out = {}
    for kind, bodies in sorted(kinds.items()):
        if app.state.engine.cache is not None:
            app.state.engine.cache._d.clear()
        gc.collect()
        t0 = time.process_time()
        for body in bodies:
            await call(app, body)
        out[f"{kind} ({len(bodies)})"] = (time.process_time() - t0) / len(bodies) * 1e6
    return out


def main(argv=None) -> int:
    from bench.serve import VISITORS

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--visitors", type=int, default=VISITORS, help=f"bench visitors (default {VISITORS}, as bench/serve)")
    ap.add_argument("--repeat", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--ranker", action="store_true", help="train and use the learned ranker")
    ap.add_argument("--census", action="store_true", help="after the run: the objects the cyclic GC scans, by type")
    ap.add_argument("--glue", type=int, default=0, metavar="N",
                    help="then N passes with run_slot answered from the measured pass: the cost outside it")
    ap.add_argument("--by-kind", action="store_true",
                    help="then the same requests again grouped by page kind: µs of CPU a request of each kind")
    ap.add_argument("--kind", default=None, choices=["main", "detail", "cart", "category"],
                    help="only the requests of this page kind")
    ap.add_argument("--csv", default=None)
    a = ap.parse_args(argv)
    from bench.retail import find_csv, load, read_invoices
    from bench.serve import request_bodies, seed_history
    from server.app import create_app
    from server.config import Settings

    tmp = Path(tempfile.mkdtemp(prefix="funnelrec-profile-"))
    settings = Settings.from_env(env={}, data_dir=tmp / "data", rate_limit_rps=0.0, ranker_enabled=a.ranker,
                                 writer_mode="thread", builder_mode="thread", log_level="warning")
    app = create_app(settings)
    t, _ = app.state.registry.create("retail", origins=["https://shop.example"], currency="GBP")
    shard = app.state.shards.get(t)
    products, invoices = read_invoices(find_csv(a.csv))
    load(shard, products, invoices)
    # bench/serve's visitors (real customers, then new visitors: most of them have no trained
    # vector, so matrix_factorization folds their session in) and as many distinct requests as
    # a run sends (the first 200 warm up)
    people = seed_history(shard, invoices, a.visitors)
    bodies = request_bodies(t.site_key, people, sorted({p["category"] for p in products}), a.requests + 200)
    if a.kind:
        import json
        bodies = [b for b in request_bodies(t.site_key, people, sorted({p["category"] for p in products}),
                                            7 * (a.requests + 200)) if json.loads(b)["page"]["type"] == a.kind]

    async def run():
        async with app.router.lifespan_context(app):
            app.state.engine.models.schedule(shard, force=True).result()
            if a.ranker:
                await call(app, bodies[0])
                from server.placements.ranker import get_ranker
                getattr(get_ranker(), "wait_idle", lambda *x: None)(300)
            first = await call(app, bodies[0])
            assert first[0]["status"] == 200, first
            for b in bodies[:200]:
                await call(app, b)
            for task in list(app.state.engine.preloads):  # the live state's warm start, as a running worker has it
                await task
            pool = bodies[:300] if a.repeat else bodies[200:]
            prof = cProfile.Profile() if a.profile else None
            from server import serving
            slots: list = []   # (--glue) every run_slot answer of the measured pass, in order
            if a.glue:
                run_slot = serving.run_slot
                serving.run_slot = lambda *args: slots.append(run_slot(*args)) or slots[-1]
            t0 = time.perf_counter()
            if prof:
                prof.enable()
            for k in range(a.requests):
                await call(app, pool[k % len(pool)])
            if prof:
                prof.disable()
            dt = time.perf_counter() - t0
            print(f"{a.requests} {'repeated' if a.repeat else 'fresh'} requests: {dt / a.requests * 1e6:.0f} µs/request")
            if a.glue:
                serving.run_slot = run_slot
                print(f"outside run_slot (its {len(slots)} answers replayed, CPU time): ", end="")
                print(", ".join(f"{us:.1f}" for us in await _glue(app, pool, a.requests, slots, a.glue)) + " µs/request")
            if a.by_kind:
                print("by page kind (CPU time, the result cache emptied first): " + ", ".join(
                    f"{kind} {us:.0f} µs" for kind, us in (await _by_kind(app, pool[:a.requests])).items()))
            if a.census:
                import collections
                import gc
                for _ in range(3):
                    gc.collect()
                kinds = collections.Counter(type(o).__name__ for o in gc.get_objects())
                print(f"objects the cyclic GC scans: {sum(kinds.values()):,} (frozen: {gc.get_freeze_count():,})")
                for name, n in kinds.most_common(15):
                    print(f"  {name}: {n:,}")
            if prof:
                st = pstats.Stats(prof)
                st.sort_stats("cumulative").print_stats(40)
                st.sort_stats("tottime").print_stats(30)
    try:
        asyncio.run(run())
    finally:  # (its data dir: ~110 MB a run)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
