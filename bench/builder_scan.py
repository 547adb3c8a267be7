"""The builder process's idle cost per number of tenants (server/builder.py).

    .venv/bin/python -m bench.builder_scan [--tenants 1000]

Creates N tenants in a temp data dir, each served by a worker at some time (its models folder
with ``active``), and measures the builder's passes side by side in one run: a full scan (every
tenant's folder looked at: what every pass did before the inbox, 5 passes a second when idle) and
an inbox pass (one directory listing: what the passes between full scans do now); then the
per-second check of each tenant's shard (queried, or with unchanged files); then a worker's
poll of the builder's output for all of them (a pass over every tenant's ``current.json``, or
the one publish marker). Prints the cost per pass and per second both ways.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tenants", type=int, default=1000)
    ap.add_argument("--passes", type=int, default=50)
    a = ap.parse_args(argv)
    from server import builder as B
    from server.config import Settings
    from server.tenants import TenantRegistry

    tmp = Path(tempfile.mkdtemp(prefix="funnelrec-builder-scan-"))
    try:
        settings = Settings.from_env(env={}, data_dir=tmp, ranker_enabled=False)
        reg = TenantRegistry(settings.data_dir)
        t0 = time.perf_counter()
        for k in range(a.tenants):
            reg.create(f"shop{k}", ["https://shop.example"])
            folder = B.models_dir(settings, f"shop{k}")
            folder.mkdir()
            (folder / "active").touch()
            (folder / "active").touch()
        print(f"{a.tenants} tenants created in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        b = B.Builder(settings)
        b.scan(full=True)
        for t in b.tenants.values():  # as if every model were built from these (empty) shards: nothing is due
            t.built, t.seq, t.catalog, t.last_build = True, 0, (0, None), time.monotonic()
        out = {}
        for full in (True, False):
            t0 = time.perf_counter()
            for _ in range(a.passes):
                b.scan(full=full)
            out[full] = (time.perf_counter() - t0) / a.passes
        checks = []
        for _ in range(3):  # the first round queries every shard, the last finds their files unchanged
            t0 = time.perf_counter()
            for t in b.tenants.values():
                t.last_check = 0.0
                assert not b.due(t)
            checks.append(time.perf_counter() - t0)
        idle_passes = 5  # passes a second when nothing is due (0.2 s apart)
        before = out[True] * idle_passes
        after = out[False] * (idle_passes - 1 / B.FULL_SCAN_S) + out[True] / B.FULL_SCAN_S
        print("| tenants | full scan (µs/pass) | inbox pass (µs/pass) | idle loop before: a full scan every pass (ms CPU/s) | now (ms CPU/s) |")
        print("|---:|---:|---:|---:|---:|")
        print(f"| {a.tenants:,} | {out[True] * 1e6:,.0f} | {out[False] * 1e6:,.0f} | {before * 1e3:.1f} | {after * 1e3:.2f} |")
        print(f"\nchecking every active tenant's shard for new events and catalog changes (every {B.CHECK_S:.0f} s), "
              f"{len(b.tenants):,} tenants: {checks[0] * 1e3:,.1f} ms querying every shard (what every check did before), "
              f"{checks[-1] * 1e3:,.1f} ms when their files did not change (2 stat calls each)")
        # a worker serving every tenant: its poll (every POLL_S on its event loop)
        import asyncio
        store = B.RemoteModelStore(settings)
        for t in b.tenants.values():
            b.publish(t, None, [])                         # each tenant's current.json
            st = store._loaded[t.slug] = B._Loaded()
            st.touched = time.time()
            st.mtime = (t.folder / "current.json").stat().st_mtime

        async def polls(full: bool) -> float:
            await store.poll_once()
            t0 = time.perf_counter()
            for _ in range(a.passes):
                if full:
                    store._full_at = 0.0
                await store.poll_once()
            return (time.perf_counter() - t0) / a.passes
        full_poll, quiet_poll = asyncio.run(polls(True)), asyncio.run(polls(False))
        per_s = 1 / store.POLL_S
        print(f"\na worker's poll of {len(store._loaded):,} tenants (every {store.POLL_S} s, on its event loop): a pass over "
              f"every tenant {full_poll * 1e3:,.2f} ms (before: every poll, {full_poll * per_s * 1e3:,.0f} ms CPU/s); "
              f"nothing published {quiet_poll * 1e6:,.0f} µs (now: {(quiet_poll * (per_s - 1 / store.FULL_POLL_S) + full_poll / store.FULL_POLL_S) * 1e3:,.1f} ms CPU/s)")
        reg.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
