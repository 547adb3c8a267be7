"""The learned ranker's cost: training time after a rebuild, and the latency it adds to a request.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.ranker [--data PATH] [--requests 2000]

The full online-retail log (``../shared/data`` or ``--data``) is imported into a scratch tenant
through ``funnelrec import`` code (``server/evaluation/replay.py``), the model built, the ranker
trained (``server.ranking.train.train_ranker``, what the background thread runs). Then for
``--requests`` requests of three kinds (main page of a known customer with history, cart with a
product, detail page with a session) the candidate pool of the placement is built once and the
scoring step timed with the blend and with the learned ranker (forced on, guard or not). The
added latency per request = learned rank time - blend rank time; p50 / p99 / max reported, and
the whole ``run_slot`` with each. Output: Markdown on stdout, ``bench/results/ranker.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "ranker.json"


def pct(a, q):
    return round(float(np.percentile(np.asarray(a) * 1000, q)), 3)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=None)
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    from server.evaluation.cli import default_data
    from server.evaluation.formats import load
    from server.evaluation.replay import build, replay
    from server.evaluation.tasks import bought_together, next_basket
    from server.evaluation.split import time_split
    from server.placements.blend import run_slot
    from server.placements.defaults import DEFAULT_STRATEGIES
    from server.placements import ranker as hook
    from server.ranking.pool import candidate_set
    from server.ranking.ranker import EvalRanker, blend_order
    from server.ranking.train import train_ranker

    path = Path(a.data) if a.data else default_data("online-retail")
    log = load("online-retail", path)
    split = time_split(log, test_days=30)
    with tempfile.TemporaryDirectory(prefix="funnelrec-ranker-") as tmp:
        shard, _ = replay(log, split.train, Path(tmp))
        t0 = time.perf_counter()
        model = build(shard)
        build_s = time.perf_counter() - t0
        shard.close_sync()
    t0 = time.perf_counter()
    state = train_ranker(model, tenant="bench")
    train_s = time.perf_counter() - t0
    print(f"build {build_s:.2f} s, ranker training {train_s:.2f} s", file=sys.stderr)
    ds = model.ds
    cases = next_basket(ds, split, a.requests // 2) + bought_together(ds, split, a.requests // 2)
    random.Random(0).shuffle(cases)
    learned, blend = EvalRanker(state), hook.BlendRanker()
    rows = {"blend_rank": [], "learned_rank": [], "added": [], "slot_blend": [], "slot_learned": [], "pool": []}
    for case in cases:
        pname = "main" if case.ctx.page_type == "main" else "cart"
        case.ctx.placement = pname
        strat = DEFAULT_STRATEGIES[pname]
        cs = candidate_set(model, case.ctx, strat, 80)
        if cs is None:
            continue
        t1 = time.perf_counter()
        blend_order(cs)
        t2 = time.perf_counter()
        learned.rank(model, case.ctx, cs)
        t3 = time.perf_counter()
        rows["blend_rank"].append(t2 - t1)
        rows["learned_rank"].append(t3 - t2)
        rows["added"].append((t3 - t2) - (t2 - t1))
        rows["pool"].append(len(cs.items))
        for key, r in (("slot_blend", blend), ("slot_learned", learned)):
            hook.set_ranker(r)
            t1 = time.perf_counter()
            run_slot(model, case.ctx, strat, 8, strat.get("rules") or {}, set())
            rows[key].append(time.perf_counter() - t1)
    hook.set_ranker(blend)
    res = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(), "requests": len(rows["added"]),
           "build_seconds": round(build_s, 2), "ranker_train_seconds": round(train_s, 2),
           "ranker": {k: v for k, v in state.report().items() if k != "features"},
           "pool_mean": round(float(np.mean(rows["pool"])), 1)}
    for k in ("blend_rank", "learned_rank", "added", "slot_blend", "slot_learned"):
        res[k] = {"p50_ms": pct(rows[k], 50), "p99_ms": pct(rows[k], 99), "max_ms": pct(rows[k], 100)}
    print(f"| measure ({res['requests']} requests, pool {res['pool_mean']} candidates on average) | p50 ms | p99 ms | max ms |")
    print("|---|---|---|---|")
    for k, label in (("blend_rank", "scoring step, blend"), ("learned_rank", "scoring step, learned ranker"),
                     ("added", "added by the ranker"), ("slot_blend", "whole slot (run_slot), blend"),
                     ("slot_learned", "whole slot (run_slot), learned ranker")):
        print(f"| {label} | {res[k]['p50_ms']} | {res[k]['p99_ms']} | {res[k]['max_ms']} |")
    print(f"\nrebuild {res['build_seconds']} s; ranker training (background, after the rebuild) {res['ranker_train_seconds']} s")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
