"""What a compiled kernel would buy: ``bench/floor_app.py``'s "three sources and a blend" in numpy
beside the same arithmetic fused into one function compiled by numba, in process.

    .venv/bin/pip install numba      # not a dependency of funnelrec: this experiment only
    .venv/bin/python -m bench.kernel_prototype [--calls 20000]

The work per call, for one visitor's 2-5 viewed products (the floor's 4,000 x 50 neighbour
table): three item-to-item sources (the seeds' rows summed with recency weights, in three seed
orders), each's top 44, normalised by its best score, summed per product, the best 8. The numpy
version is the floor's; the fused one does it in one call over a reused scratch array. Both must
give the same 8 products. It measures the headroom of the "one compiled kernel per placement"
step (docs/engine.md, bench/serve), not the engine: the engine's slots do more (rules, reasons,
fallbacks, several kinds of sources).
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402

K, COUNT = 44, 8


def numpy_three(fa, seeds: list[int]) -> list[int]:
    """``floor_app.three_sources`` without the HTTP request around it."""
    parts = [fa._source(seeds), fa._source(seeds[::-1]), fa._source(seeds[1:] + seeds[:1])]
    items = np.concatenate([p[0] for p in parts])
    scores = np.concatenate([p[1] / p[1][0] for p in parts if len(p[1])])
    total = np.bincount(items, weights=scores, minlength=fa.N_ITEMS)
    cand = (total > 0).nonzero()[0]
    return cand[(-total[cand]).argsort(kind="stable")[:COUNT]].tolist()


def compile_fused():
    import numba

    @numba.njit(cache=False, nogil=True)
    def source(idx, score, seeds, acc, touched, out_items, out_scores, k):
        """One source: Σ over distinct seeds (newest first) of 0.8^rank x row, seeds left out, top k."""
        n_t = 0
        rank = 0
        for a in range(len(seeds)):
            s = seeds[a]
            dup = False
            for b in range(a):
                if seeds[b] == s:
                    dup = True
            if dup:
                continue
            w = np.float32(0.8) ** rank
            rank += 1
            for j in range(idx.shape[1]):
                i = idx[s, j]
                if acc[i] == 0.0:
                    touched[n_t] = i
                    n_t += 1
                acc[i] += np.float64(np.float32(score[s, j]) * w)
        for a in range(len(seeds)):
            acc[seeds[a]] = 0.0
        m = 0
        for t in range(n_t):
            i = touched[t]
            v = acc[i]
            acc[i] = 0.0
            if v > 0.0:
                out_items[m] = i
                out_scores[m] = np.float32(v)
                m += 1
        order = np.argsort(-out_scores[:m], kind="mergesort")[:k]
        return out_items[:m][order].copy(), out_scores[:m][order].copy()

    @numba.njit(cache=False, nogil=True)
    def fused(idx, score, seeds, acc, touched, out_items, out_scores, blend, count):
        orders = (seeds.copy(), seeds[::-1].copy(), np.concatenate((seeds[1:], seeds[:1])))
        cands = np.empty(3 * K, np.int64)
        n_c = 0
        for o in orders:
            its, sc = source(idx, score, o, acc, touched, out_items, out_scores, K)
            if len(sc) == 0:
                continue
            top = sc[0]
            for t in range(len(its)):
                i = its[t]
                if blend[i] == 0.0:
                    cands[n_c] = i
                    n_c += 1
                blend[i] += np.float64(sc[t] / top)
        vals = np.empty(n_c, np.float64)
        for t in range(n_c):
            vals[t] = blend[cands[t]]
        order = np.argsort(-vals, kind="mergesort")
        best = np.empty(min(count, n_c), np.int64)
        for t in range(len(best)):
            best[t] = cands[order[t]]
        for t in range(n_c):
            blend[cands[t]] = 0.0
        return best

    return fused


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=20_000)
    a = ap.parse_args(argv)
    try:
        fused = compile_fused()
    except ImportError:
        print("numba is not installed (it is not a dependency): .venv/bin/pip install numba", file=sys.stderr)
        return 2
    import bench.floor_app as fa

    idx = fa.IDX.astype(np.int64)
    score = fa.SCORE
    acc = np.zeros(fa.N_ITEMS, np.float64)
    blend = np.zeros(fa.N_ITEMS, np.float64)
    touched = np.empty(fa.N_ITEMS, np.int64)
    out_items = np.empty(fa.N_ITEMS, np.int64)
    out_scores = np.empty(fa.N_ITEMS, np.float32)
    histories = list(fa.HISTORY.values())[: a.calls]
    t0 = time.perf_counter()
    fused(idx, score, np.array(histories[0], np.int64), acc, touched, out_items, out_scores, blend, COUNT)
    compile_s = time.perf_counter() - t0

    same = 0
    for h in histories[:2000]:
        got = fused(idx, score, np.array(h, np.int64), acc, touched, out_items, out_scores, blend, COUNT).tolist()
        same += got == numpy_three(fa, h)
    timings = {}
    for name, fn in (("numpy (the floor's)", lambda h: numpy_three(fa, h)),
                     ("fused, numba", lambda h: fused(idx, score, np.array(h, np.int64), acc, touched, out_items,
                                                      out_scores, blend, COUNT).tolist())):
        best = None
        for _ in range(3):
            t0 = time.perf_counter()
            for h in histories:
                fn(h)
            dt = (time.perf_counter() - t0) / len(histories)
            best = dt if best is None else min(best, dt)
        timings[name] = best
    print(f"numba compile (first call): {compile_s:.2f} s; same 8 products as numpy: {same} of {min(2000, len(histories))}")
    print("| three sources and a blend, per call | µs |\n|---|---:|")
    for name, dt in timings.items():
        print(f"| {name} | {dt * 1e6:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
