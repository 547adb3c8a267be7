"""Full model rebuild on the online-retail data: time and peak memory, at 1x, 2x and 4x events.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.build [--scales 1,2,4] [--csv PATH]

For each scale a fresh shard is loaded (``bench/retail.py``: products + one purchase event per
invoice; copies k > 0 of every invoice under new visitors, synthetic up-scaling), then the
model is built in a child process exactly as the server's background builder does
(``server.recommenders.model.build_model`` on a read-only connection), and the child's
wall time and peak resident memory (``ru_maxrss``, the whole process: interpreter, numpy,
the dataset and every fitted recommender) are reported, with the seconds of each step.

Output: Markdown on stdout, ``bench/results/build.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "build.json"


def child(shard_path: str) -> None:
    """Run in a fresh process: build once, print JSON figures."""
    import sqlite3

    from server.recommenders.model import build_model

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    conn = sqlite3.connect(f"file:{shard_path}?mode=ro", uri=True, isolation_level=None)
    t0 = time.perf_counter()
    model = build_model(conn)
    secs = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": round(secs, 3), "peak_rss_mb": round(peak / 1024, 1),
                      "rss_before_build_mb": round(base / 1024, 1), "dataset": model.ds.summary(),
                      "steps": {k: round(v, 3) for k, v in model.fit_seconds.items()},
                      "errors": model.errors}))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--csv", default=None)
    ap.add_argument("--scales", default="1,2,4")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    if a.child:
        child(a.child)
        return 0
    from bench.retail import find_csv, load, read_invoices
    from server.shards import Shard

    products, invoices = read_invoices(find_csv(a.csv))
    results = []
    with tempfile.TemporaryDirectory(prefix="funnelrec-build-") as tmp:
        for scale in [int(s) for s in a.scales.split(",")]:
            path = Path(tmp) / f"retail{scale}.db"
            shard = Shard(f"retail{scale}", path, synchronous="OFF")
            loaded = load(shard, products, invoices, scale)
            shard.close_sync()
            out = subprocess.run([sys.executable, "-m", "bench.build", "--child", str(path)], cwd=ROOT,
                                 capture_output=True, text=True, env={**os.environ, "FUNNELREC_LOG_LEVEL": "warning"})
            if out.returncode != 0:
                print(out.stderr, file=sys.stderr)
                return 1
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r.update({"scale": scale, "purchases": loaded["purchases"], "order_lines": r["dataset"]["feedback"]})
            results.append(r)
            print(f"scale {scale}: {r['seconds']} s, peak RSS {r['peak_rss_mb']} MB, {loaded['purchases']} orders, "
                  f"{r['dataset']['feedback']} feedback rows", file=sys.stderr)
            path.unlink()
    print("| scale | orders | order lines | persons | items | rebuild s | peak RSS MB | slowest steps |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        slow = sorted(r["steps"].items(), key=lambda kv: -kv[1])[:3]
        print(f"| {r['scale']}x | {r['purchases']:,} | {r['order_lines']:,} | {r['dataset']['persons']:,} | "
              f"{r['dataset']['items']:,} | {r['seconds']} | {r['peak_rss_mb']} | "
              + ", ".join(f"{k} {v}s" for k, v in slow) + " |")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
                                 "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
