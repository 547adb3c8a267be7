"""Answer-identity check of the engine: every slot's products, reasons and sources, before/after.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.slot_check --out /tmp/after.json [--root TREE]
    .venv/bin/python -m bench.slot_check --compare /tmp/before.json /tmp/after.json

On the bench tenant of ``bench/engine_tenant.py`` (online-retail + 400 bench visitors with
live sessions), runs ``run_slot`` for every person on every page type (main, detail with its
two slots sharing the request's answer memo and page dedupe, cart, category, checkout,
purchase, search) under three rule sets (the strategy's own; diversity caps + a category
boost; a price band + an excluded category + session items allowed): 400 x 8 x 3 = 9,600
slots. Everything is run twice: pass 1 in order, pass 2 on fresh contexts in a shuffled order,
so that pass 2 is answered from whatever the engine caches (source answers, blended pools) and
pass 1 mostly not; both must equal the reference.

``--root TREE`` imports ``server`` from another checkout (e.g. ``git archive HEAD`` unpacked in
/tmp) so that the code before a change writes the reference file with the same bench inputs.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def variants(categories: list[str]) -> dict[str, dict]:
    return {
        "default": {},
        "diverse": {"max_per_category": 2, "max_per_brand": 3,
                    "boost": [{"category": categories[len(categories) // 3], "factor": 2.0}]},
        "band": {"price_min": 1.0, "price_max": 10.0, "exclude_categories": [categories[len(categories) // 2]],
                 "exclude_seen": False},
    }


def run(t, passes: int = 2) -> list[dict]:
    from bench.engine_tenant import SLOTS, contexts
    from server import rules as R
    from server.placements import config as strategies
    from server.placements.blend import run_slot

    cfg = strategies.effective(None)
    ds = t.model.ds
    out = []
    for n in range(passes):
        jobs = []
        for page, slots in SLOTS.items():
            for vname, extra in variants(t.categories).items():
                for ctx in contexts(t, page):
                    jobs.append((page, slots, vname, extra, ctx))
        if n:
            random.Random(n).shuffle(jobs)
        answers = {}
        for page, slots, vname, extra, ctx in jobs:
            ctx.answers = {} if len(slots) > 1 else None
            seen: set[int] = set()
            for pl in slots:
                strat = cfg[pl][0]
                ctx.placement = pl
                got = run_slot(t.model, ctx, strat, 8, R.merge(strat.get("rules"), extra), seen)
                answers[f"{ctx.visitor}|{page}|{pl}|{vname}"] = [[ds.item_ids[i], r, s] for i, r, s in got]
        out.append(answers)
    return out


def compare(a: dict, b: dict, label: str) -> int:
    bad = [k for k in a if a[k] != b.get(k)] + [k for k in b if k not in a]
    short = sum(1 for v in b.values() if len(v) < 8)
    print(f"{label}: {len(a)} slots, {len(bad)} differ, {short} short")
    for k in bad[:10]:
        print(f"  {k}\n    before {a.get(k)}\n    after  {b.get(k)}")
    return len(bad)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path)
    ap.add_argument("--root", default=None, help="import server from this tree (default: this checkout)")
    ap.add_argument("--visitors", type=int, default=400)
    ap.add_argument("--csv", default=None, help="online-retail CSV (default: ../shared/data/online-retail)")
    ap.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    a = ap.parse_args(argv)
    if a.compare:
        before, after = (json.loads(p.read_text()) for p in a.compare)
        bad = 0
        for n, passed in enumerate(after["passes"]):
            bad += compare(before["passes"][0], passed, f"pass {n + 1} vs reference")
        print("IDENTICAL" if not bad else f"{bad} slots differ")
        return 1 if bad else 0
    from bench.common import RETAIL_CSV, server_from
    root = server_from(a.root)
    from bench.engine_tenant import bench_tenant
    with bench_tenant(a.visitors, a.csv or (str(RETAIL_CSV) if RETAIL_CSV else None)) as t:
        passes = run(t)
    a.out.write_text(json.dumps({"root": str(root), "passes": passes}))
    print(f"{sum(len(p) for p in passes)} slots written to {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
