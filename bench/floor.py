"""The floor of a Python recommendation endpoint here, beside the empty Starlette endpoint, in one run.

    .venv/bin/python -m bench.floor [--duration 10] [--connections 32] [--out PATH]

Serves ``bench/empty_app.py`` and ``bench/floor_app.py`` (1 worker each, as funnelrec serves) and
measures, with ``bench/serve.py``'s client, request bodies and 32 connections: the empty
endpoint, then the floor endpoints (decode + a constant reply; + one item-to-item source; + three
sources and a blend: see ``bench/floor_app.py``). It answers one question: what share of the
empty endpoint's request rate is left once a request does even a fraction of a personalised
recommendation's work in Python and numpy on this machine (issue 3's target: a quarter).
Output: Markdown on stdout, ``bench/results/floor.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, ServerProcess, free_port  # noqa: E402
from bench.serve import framed, measure, request_bodies  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "floor.json"


def people(n: int, seed: int = 3) -> list[dict]:
    rng = random.Random(seed)
    out = []
    for k in range(n):
        viewed = [f"p{rng.randrange(4000)}" for _ in range(rng.randint(2, 5))]
        out.append({"visitor": f"v{k}", "session": f"s{k}", "viewed": viewed, "cart": viewed[:2]})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    bodies = request_bodies("site_floor", people(20_000), [f"c{i}" for i in range(30)], 60_000)
    env = {"OPENBLAS_NUM_THREADS": "1"}
    results = {}
    port = free_port()
    with ServerProcess([sys.executable, "-m", "bench.empty_app", "--port", str(port)], port, env=env, name="empty") as srv:
        results["empty"] = measure(srv, framed(bodies, "/v1/events", port), a, check=False)
    port = free_port()
    with ServerProcess([sys.executable, "-m", "bench.floor_app", "--port", str(port)], port, env=env, name="floor") as srv:
        for path in ("/floor/reply", "/floor/one_source", "/floor/three_sources"):
            results[path] = measure(srv, framed(bodies, path, port), a, check=True)
            print(f"{path}: {results[path]}", file=sys.stderr)
    e = results["empty"]["req_per_s"]
    report = {"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "cpus": os.cpu_count(),
              "load_avg": os.getloadavg(), "connections": a.connections, "duration_s": a.duration, "results": results,
              "ratio_vs_empty": {k: round(m["req_per_s"] / e, 3) for k, m in results.items()}}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=2) + "\n")
    print("| endpoint (1 worker) | req/s | vs empty | p50 ms | p99 ms | server CPU | non-200 | short slots |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name, m in results.items():
        print(f"| {name} | {m['req_per_s']:,} | {report['ratio_vs_empty'][name]} | {m['p50_ms']} | {m['p99_ms']} | "
              f"{m['server_cpu_pct']}% | {m['non_200']} | {m.get('short_slots', '')} |")
    print(f"\nload average during the run: {os.getloadavg()}")
    return 0 if all(m["non_200"] == 0 and not m.get("short_slots") for m in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
