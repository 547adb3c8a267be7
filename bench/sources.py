"""Request-time cost of every registered recommender and of whole slots on the online-retail
tenant, in process.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.sources [--visitors 300] [--root TREE]

Loads online-retail and the bench visitors of ``bench/serve.py`` into a temp shard, builds the
model (``bench/engine_tenant.py``), then:
- calls each applicable recommender's ``recommend`` for every visitor with a detail-page
  context (current product = their latest view, the live session from the shard) and k = 44
  (what a slot of 8 asks for);
- runs whole slots (``run_slot``, 8 products) with the context of their page as
  ``bench/serve.py`` sends it (main: no product; detail: the latest view, its two slots sharing
  the request's answer memo; cart: two basket products; category: a random category), and
  the serve mix per request (1/3 main, 1/3 detail = 2 slots, 1/6 cart, 1/6 category).
Each figure is the median and p99 microseconds per call, best of 3 passes (a busy machine
inflates it less). The passes run over the same contexts, so what the engine caches per model
(source answers, blended pools) is warm after the first pass, as in a server that has served
these pages before; ``--cold`` clears those caches before every call (each answer computed).
``--root TREE`` imports ``server`` from another checkout (before/after figures, same inputs).
A recommender over ~200 µs is expensive as a blended source of a placement.

``--fresh`` measures instead each source of the fresh mix's slots (main, detail, cart, category)
on the contexts of its own page: µs of ``cache_key`` + ``recommend`` per call (every answer
computed, the request's seed memo warm), best of 5 passes; ``--answers FILE`` also writes every
answer (items, score bytes, all reasons, cache key) and ``--compare A B`` tells whether two
such files are identical (a source's shortcut checked against the code before it).
"""
from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def _clear(model) -> None:
    fn = getattr(model, "clear_caches", None)
    if fn is not None:
        fn()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--visitors", type=int, default=300)
    ap.add_argument("--csv", default=None)
    ap.add_argument("--root", default=None, help="import server from this tree (default: this checkout)")
    ap.add_argument("--cold", action="store_true", help="clear the model's answer caches before every call")
    ap.add_argument("--fresh", action="store_true", help="each source of the fresh mix on its own page's contexts")
    ap.add_argument("--answers", default=None, help="with --fresh: write every answer to this file")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"), help="compare two --answers files")
    a = ap.parse_args(argv)
    if a.compare:
        return _compare(*a.compare)
    from bench.common import RETAIL_CSV as CSV
    from bench.common import server_from
    server_from(a.root)
    import numpy as np

    from bench.engine_tenant import SLOTS, bench_tenant, contexts
    from server import rules as R
    from server.placements import config as strategies
    from server.placements.blend import run_slot

    def best_of_3(fn, items):
        best = None
        for _ in range(3):
            times = []
            for x in items:
                if a.cold:
                    _clear(model)
                t0 = time.perf_counter()
                if fn(x) is False:
                    continue
                times.append(time.perf_counter() - t0)
            if times and (best is None or np.median(times) < np.median(best)):
                best = times
        return best

    if a.fresh:
        with bench_tenant(a.visitors, a.csv or (str(CSV) if CSV else None)) as t:
            return _fresh(t, SLOTS, contexts, a.answers)

    with bench_tenant(a.visitors, a.csv or (str(CSV) if CSV else None)) as t:
        model = t.model
        ds = model.ds
        t_live = [p["live_s"] for p in t.people]
        detail = contexts(t, "detail")
        rows = []
        for name, rec in sorted(model.recommenders.items()):
            def call(ctx, rec=rec, name=name):
                if not rec.applicable(ctx):
                    return False
                rec.recommend(model.fitted[name], ds, ctx, 44)
            best = best_of_3(call, detail)
            if best:
                rows.append((name, np.median(best) * 1e6, np.percentile(best, 99) * 1e6, len(best)))
        cfg = strategies.effective(None)
        slot_rows = []
        page_ctx = {page: contexts(t, page) for page in ("main", "detail", "cart", "category")}
        per_page = {}
        for page, ctxs in page_ctx.items():
            for pl in SLOTS[page]:
                strat = cfg[pl][0]
                rules = R.merge(strat.get("rules"))

                def slot(ctx, strat=strat, rules=rules):
                    run_slot(model, ctx, strat, 8, rules, set())
                best = best_of_3(slot, ctxs)
                slot_rows.append((f"slot: {pl}", np.median(best) * 1e6, np.percentile(best, 99) * 1e6, len(best)))

            def request(ctx, page=page):
                ctx.answers = {} if len(SLOTS[page]) > 1 else None
                seen: set[int] = set()
                for pl in SLOTS[page]:
                    strat = cfg[pl][0]
                    ctx.placement = pl
                    run_slot(model, ctx, strat, 8, R.merge(strat.get("rules")), seen)
            per_page[page] = best_of_3(request, ctxs)
        mix = {"main": 2, "detail": 2, "cart": 1, "category": 1}
        mean = sum(w * np.mean(per_page[p]) for p, w in mix.items()) / sum(mix.values()) * 1e6
        med = sum(w * np.median(per_page[p]) for p, w in mix.items()) / sum(mix.values()) * 1e6
    print("| call | median µs | p99 µs | calls |\n|---|---:|---:|---:|")
    print(f"| live context read | {np.median(t_live) * 1e6:.0f} | {np.percentile(t_live, 99) * 1e6:.0f} | {len(t_live)} |")
    for name, m, p99, n in sorted(rows, key=lambda r: -r[1]) + slot_rows:
        print(f"| {name} | {m:.0f} | {p99:.0f} | {n} |")
    print(f"| request, serve mix (all slots of a page): mean / weighted median | {mean:.0f} / {med:.0f} | | |")
    print(f"\nload average: {os.getloadavg()}")
    return 0


def _fresh(t, slots, contexts, answers_out: str | None) -> int:
    """``--fresh``: µs per call of each source of the fresh mix's slots, on its page's contexts."""
    import pickle

    from server.placements import config as strategies

    model, cfg = t.model, strategies.effective(None)
    ds = model.ds
    print("| page: source | µs per call (key + answer) | key alone | calls |\n|---|---:|---:|---:|")
    answers = {}
    for page in ("main", "detail", "cart", "category"):
        ctxs = contexts(t, page)
        for ctx in ctxs:      # the request's seed memo (base.Context), not a source's cost
            ctx.seed_items(), ctx.session_items(), ctx.session_items(8)
        names = list(dict.fromkeys(s["recommender"] for pl in slots[page] for s in cfg[pl][0]["sources"]))
        for name in names:
            rec, fitted = model.recommenders[name], model.fitted[name]
            use = [c for c in ctxs if rec.applicable(c)]
            if not use:
                continue

            def both():
                for ctx in use:
                    rec.cache_key(ctx)
                    rec.recommend(fitted, ds, ctx, 44)

            def keys():
                for ctx in use:
                    rec.cache_key(ctx)
            us = [min(_seconds(fn) for _ in range(5)) / len(use) * 1e6 for fn in (both, keys)]
            print(f"| {page}: {name} | {us[0]:.1f} | {us[1]:.1f} | {len(use)} |")
            out = []
            for ctx in use:
                c = rec.recommend(fitted, ds, ctx, 44)
                out.append((repr(rec.cache_key(ctx)), c.items.astype("int64").tobytes(), c.scores.tobytes(),
                            [c.reason(i) for i in range(len(c))]))
            answers[f"{page}: {name}"] = out
    print(f"\nload average: {os.getloadavg()}")
    if answers_out:
        with open(answers_out, "wb") as f:
            pickle.dump(answers, f)
    return 0


def _seconds(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _compare(path_a: str, path_b: str) -> int:
    import pickle
    with open(path_a, "rb") as f:
        a = pickle.load(f)
    with open(path_b, "rb") as f:
        b = pickle.load(f)
    differ = 0
    for key in sorted(set(a) | set(b)):
        n = sum(x != y for x, y in zip(a.get(key, []), b.get(key, [])))
        n += abs(len(a.get(key, [])) - len(b.get(key, [])))
        if n:
            print(f"{key}: {n} answers differ")
        differ += n
    print("IDENTICAL" if not differ else f"{differ} answers differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
