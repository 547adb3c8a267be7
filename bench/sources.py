"""Request-time cost of every registered recommender on the online-retail tenant, in process.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.sources [--visitors 300]

Loads online-retail and the bench visitors of ``bench/serve.py`` into a temp shard, builds the
model, then calls each applicable recommender's ``recommend`` for every visitor with a detail-
page context (current product = their latest view, the live session from the shard) and
k = 44 (what a slot of 8 asks for). Reports the median and p99 microseconds per call (best of
3 passes, so a busy machine inflates it less), and the live-context read and whole slots for
comparison. A recommender over ~200 µs is expensive as a blended source of a placement.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visitors", type=int, default=300)
    ap.add_argument("--csv", default=None)
    a = ap.parse_args(argv)
    import numpy as np

    from bench.retail import find_csv, load, read_invoices
    from bench.serve import seed_history
    from server import rules as R
    from server.placements import config as strategies
    from server.placements.blend import run_slot
    from server.recommenders.base import Context
    from server.recommenders.model import build_model
    from server.serving import live_context
    from server.shards import Shard

    products, invoices = read_invoices(find_csv(a.csv))
    with tempfile.TemporaryDirectory(prefix="funnelrec-sources-") as tmp:
        shard = Shard("retail", Path(tmp) / "retail.db", synchronous="OFF")
        load(shard, products, invoices)
        people = seed_history(shard, invoices, a.visitors)
        conn = shard.connect_read()
        model = build_model(conn)
        ds = model.ds
        now = int(time.time() * 1000)
        ctxs = []
        t_live = []
        for p in people:
            t0 = time.perf_counter()
            recent, bought, newest = live_context(conn, ds, p["visitor"], p["session"])
            t_live.append(time.perf_counter() - t0)
            prod = p["viewed"][-1]
            ctxs.append(Context(visitor=p["visitor"], session=p["session"], product=prod, item=ds.item(prod),
                                category=ds.category[ds.item(prod)], recent=recent, bought=bought,
                                person=ds.person(None, p["visitor"]), clock_ms=max(ds.clock_ms, newest), now_ms=now,
                                cart=p["cart"], cart_items=np.array([ds.item(c) for c in p["cart"]], np.int32)))
        rows = []
        for name, rec in sorted(model.recommenders.items()):
            best = None
            for _ in range(3):
                times = []
                for ctx in ctxs:
                    if not rec.applicable(ctx):
                        continue
                    t0 = time.perf_counter()
                    rec.recommend(model.fitted[name], ds, ctx, 44)
                    times.append(time.perf_counter() - t0)
                if times and (best is None or np.median(times) < np.median(best)):
                    best = times
            if best:
                rows.append((name, np.median(best) * 1e6, np.percentile(best, 99) * 1e6, len(best)))
        cfg = strategies.effective(None)
        slot_rows = []
        for pl in ("main", "detail_similar", "detail_complements", "cart", "category"):
            strat = cfg[pl][0]
            rules = R.merge(strat.get("rules"))
            best = None
            for _ in range(3):
                times = []
                for ctx in ctxs:
                    t0 = time.perf_counter()
                    run_slot(model, ctx, strat, 8, rules, set())
                    times.append(time.perf_counter() - t0)
                if best is None or np.median(times) < np.median(best):
                    best = times
            slot_rows.append((f"slot: {pl}", np.median(best) * 1e6, np.percentile(best, 99) * 1e6, len(best)))
        conn.close()
        shard.close_sync()
    print(f"| call | median µs | p99 µs | calls |\n|---|---:|---:|---:|")
    print(f"| live context read | {np.median(t_live) * 1e6:.0f} | {np.percentile(t_live, 99) * 1e6:.0f} | {len(t_live)} |")
    for name, med, p99, n in sorted(rows, key=lambda r: -r[1]) + slot_rows:
        print(f"| {name} | {med:.0f} | {p99:.0f} | {n} |")
    print(f"\nload average: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
