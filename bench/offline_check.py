"""A first offline check on real data (time split): do the recommenders beat popularity where they should?

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.offline_check [--max-cases 2000]

Not the full evaluation (its own issue): a quick, honest sanity check of the engine's own
recommenders, run directly on the model (no HTTP), each against the popularity baselines.

online-retail (invoices; train before 2011-08-01, test Aug-Sep 2011):
  complete_basket  for each test basket of 2+ products: the seed is its first line (as on a
                   product or cart page), the targets the other lines. Expected winners:
                   bought_together, item_cf (complements).
  next_basket      for each customer with training history, their first test basket; the
                   context is the customer (model history) and their last training basket as
                   recent purchases. Expected winners: buy_again (gift-shop customers re-buy),
                   item_cf, realtime_personal.
diginetica-sample (product views; train = sessions before the last 14 days, test = after):
  next_view        every prefix of a test session (2+ views): the views so far are the session
                   (``ctx.recent``), the target the next view. Expected winners:
                   realtime_personal, viewed_together (substitutes).
Metrics: HR@10 (share of cases with at least one target in the top 10) and recall@10.
Baselines: popular_now, best_sellers (and trending). Output: Markdown, bench/results/offline.json.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "offline.json"
DIGI = ROOT.parent / "shared" / "data" / "diginetica-sample" / "train-item-views-sample.csv"
K = 10


def evaluate(model, cases, names, make_ctx):
    """cases: [(case, targets set)] -> {name: {hr, recall, n}}"""
    from server.recommenders.base import Candidates

    out = {}
    ds = model.ds
    for name in names:
        rec = model.recommenders.get(name)
        if rec is None:
            continue
        hits = rec_sum = n = 0
        for case, targets in cases:
            ctx = make_ctx(case)
            c = rec.recommend(model.fitted[name], ds, ctx, K + 5) if rec.applicable(ctx) else Candidates.empty()
            seen = set(ctx.cart) | ({ctx.product} if ctx.product else set())
            top = [ds.item_ids[i] for i in c.items.tolist() if ds.item_ids[i] not in seen][:K]
            got = len(targets & set(top))
            hits += got > 0
            rec_sum += got / len(targets)
            n += 1
        out[name] = {"hr@10": round(hits / max(n, 1), 4), "recall@10": round(rec_sum / max(n, 1), 4), "cases": n}
    return out


SIGNALS = None  # a SignalConfig override (--half-life)


def build(shard_path):
    import sqlite3

    from server.recommenders.model import build_model
    conn = sqlite3.connect(f"file:{shard_path}?mode=ro", uri=True, isolation_level=None)
    try:
        return build_model(conn, signals=SIGNALS)
    finally:
        conn.close()


def retail(tmp: Path, max_cases: int, rng: random.Random) -> dict:
    from bench.retail import find_csv, load, read_invoices
    from server.recommenders.base import Context, Recent
    from server.shards import Shard
    from server.signals import PURCHASE

    path = find_csv(None)
    products, train = read_invoices(path, until="2011-08-01")
    _, test = read_invoices(path, since="2011-08-01")
    shard = Shard("retail", tmp / "retail.db", synchronous="OFF")
    load(shard, products, train)
    shard.close_sync()
    model = build(tmp / "retail.db")
    ds = model.ds
    known = set(ds.item_ids)

    # complete the basket
    cases = []
    for inv, visitor, ts, lines in test:
        ids = list(dict.fromkeys(l[0] for l in lines if l[0] in known))
        if len(ids) >= 2:
            cases.append((ids[0], set(ids[1:])))
    rng.shuffle(cases)
    cases = cases[:max_cases]

    def basket_ctx(seed):
        return Context(product=seed, item=ds.item(seed), clock_ms=ds.clock_ms, person=-1)

    names = ["bought_together", "item_cf", "viewed_together", "popular_now", "best_sellers", "trending"]
    complete = evaluate(model, cases, names, basket_ctx)

    # next basket of returning customers
    last_train: dict[str, tuple] = {}
    for inv, visitor, ts, lines in train:
        if visitor.startswith("c"):
            last_train[visitor] = (ts, [l[0] for l in lines])
    first_test: dict[str, set] = {}
    for inv, visitor, ts, lines in test:
        if visitor in last_train and visitor not in first_test:
            first_test[visitor] = {l[0] for l in lines if l[0] in known}
    nb = [(v, t) for v, t in first_test.items() if t]
    rng.shuffle(nb)
    nb = nb[:max_cases]

    def person_ctx(visitor):
        ts, items = last_train[visitor]
        recent = [Recent(p, ds.item(p), PURCHASE, ts, 5.0, False) for p in items[:20]]
        bought = {p: ts for p in items}
        return Context(visitor=visitor, person=ds.person(None, visitor), recent=recent, bought=bought,
                       clock_ms=ds.clock_ms)

    names = ["buy_again", "item_cf", "realtime_personal", "bought_together", "popular_now", "best_sellers", "trending"]
    next_basket = evaluate(model, nb, names, person_ctx)
    return {"complete_basket": complete, "next_basket": next_basket, "train_invoices": len(train),
            "test_invoices": len(test)}


def diginetica(tmp: Path, max_cases: int, rng: random.Random, engagement: bool = False) -> dict | None:
    """``engagement``: the gap to the session's next view becomes the view's engaged time (a
    real dwell-time proxy: capped at 10 minutes; the last view of a session is unmeasured), so
    the signal weights (bounces < 3 s, time relative to the product's usual) act on real data."""
    if not DIGI.is_file():
        return None
    from server.ingest.schema import event_from_obj
    from server.ingest.store import store_events_job
    from server.recommenders.base import Context, Recent
    from server.shards import Shard
    from server.signals import VIEW

    sessions: dict[str, list] = {}
    with open(DIGI, newline="") as f:
        for row in csv.DictReader(f, delimiter=";"):
            day = dt.datetime.strptime(row["eventdate"], "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
            ts = int(day.timestamp() * 1000) + int(row["timeframe"])
            sessions.setdefault(row["session_id"], []).append((ts, row["item_id"]))
    for s in sessions.values():
        s.sort()
    last_day = max(ts for s in sessions.values() for ts, _ in s)
    cut = last_day - 14 * 86_400_000
    train = {k: v for k, v in sessions.items() if v[0][0] < cut}
    test = {k: v for k, v in sessions.items() if v[0][0] >= cut and len(v) >= 2}
    name = "digi-e" if engagement else "digi"
    shard = Shard(name, tmp / f"{name}.db", synchronous="OFF")
    evs = []
    for sid, views in train.items():
        for n, (ts, item) in enumerate(views):
            evs.append({"id": f"d{sid}-{n}", "type": "page_view", "visitor": f"v{sid}", "session": f"s{sid}",
                        "ts": ts, "page": "detail", "product": item})
            if engagement and n + 1 < len(views):
                evs.append({"id": f"g{sid}-{n}", "type": "engagement", "visitor": f"v{sid}", "session": f"s{sid}",
                            "ts": ts + 1, "page": "detail", "product": item,
                            "engaged_ms": min(views[n + 1][0] - ts, 600_000)})
    for i in range(0, len(evs), 2000):
        shard.write_sync(store_events_job([event_from_obj(e) for e in evs[i:i + 2000]], last_day, "import"))
    shard.close_sync()
    model = build(tmp / f"{name}.db")
    ds = model.ds
    cases = []
    for sid, views in test.items():
        for j in range(1, len(views)):
            if views[j][1] != views[j - 1][1] and ds.item(views[j][1]) >= 0:
                cases.append((views[:j], {views[j][1]}))
    rng.shuffle(cases)
    cases = cases[:max_cases]

    from server.live import _factor

    def weight(prefix, j):
        if not engagement or j == len(prefix) - 1:  # the last view's dwell is not known yet
            return 1.0
        i = ds.item(prefix[j][1])
        usual = float(ds.usual_engaged_ms[i]) if i >= 0 else 30_000.0
        return _factor(min(prefix[j + 1][0] - prefix[j][0], 600_000), 0.0, usual)

    def session_ctx(prefix):
        recent = [Recent(p, ds.item(p), VIEW, ts, weight(prefix, j), True)
                  for j, (ts, p) in reversed(list(enumerate(prefix)))]
        cur = prefix[-1][1]
        return Context(visitor="x", session="x", recent=recent, product=cur, item=ds.item(cur), clock_ms=ds.clock_ms)

    names = ["realtime_personal", "viewed_together", "item_cf", "popular_now", "best_sellers", "trending"]
    task = "next_view_engagement_weighted" if engagement else "next_view"
    return {task: evaluate(model, cases, names, session_ctx), "train_sessions": len(train),
            "test_sessions": len(test)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-cases", type=int, default=2000)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--half-life", type=float, default=None,
                    help="time-decay half-life in days for this run (0: no decay); default: the engine's")
    ap.add_argument("--retail-only", action="store_true")
    a = ap.parse_args(argv)
    global SIGNALS
    if a.half_life is not None:
        from server.signals import SignalConfig
        SIGNALS = SignalConfig(half_life_days=a.half_life)
    rng = random.Random(5)
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="funnelrec-offline-") as tmp:
        res = {"retail": retail(Path(tmp), a.max_cases, rng), "half_life_days": a.half_life,
               "diginetica": None if a.retail_only else diginetica(Path(tmp), a.max_cases, random.Random(9)),
               "diginetica_engagement": None if a.retail_only else diginetica(Path(tmp), a.max_cases, random.Random(9),
                                                                              engagement=True)}
    res["seconds"] = round(time.time() - t0, 1)
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(res, indent=2) + "\n")
    for data, tasks in (("online-retail", res["retail"]), ("diginetica", res["diginetica"] or {}),
                        ("diginetica", res["diginetica_engagement"] or {})):
        for task, table in tasks.items():
            if not isinstance(table, dict):
                continue
            print(f"\n{data} / {task}\n\n| recommender | HR@10 | recall@10 | cases |\n|---|---:|---:|---:|")
            for name, m in sorted(table.items(), key=lambda kv: -kv[1]["hr@10"]):
                print(f"| {name} | {m['hr@10']:.3f} | {m['recall@10']:.3f} | {m['cases']} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
