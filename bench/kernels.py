"""Recommender kernels on the real data: fit times and the checks behind docs/recommenders.md.

    OPENBLAS_NUM_THREADS=1 .venv/bin/python -m bench.kernels [--data ../shared/data] [--skip-movielens]

1. online-retail (``online-retail/*.csv.gz``), customers x products, purchase weight 5 with a
   60-day half-life as in ``server/signals``: fit time of implicit ALS (the
   matrix_factorization settings), product TF-IDF + top-50 neighbours, user-kNN, customer groups
   (RFM + clusters); then a time split at 2011-08-01: recall@20 of each customer's next
   purchases for popularity, ALS (repeats allowed) and, on products new to the customer,
   popularity / ALS / user-kNN.
2. movielens-100k (``movielens-100k/ml-100k.*``): cold-start users (20 % held out entirely)
   recommended from their profile only: popularity against the demographic model.

Missing data sets are reported and skipped. Nothing is written; the figures go to stdout.
"""
from __future__ import annotations

import argparse
import csv
import datetime as dt
import gzip
import os
import sys
import time
import types
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from scipy import sparse  # noqa: E402

from server.recommenders.kernels.als import ImplicitALS  # noqa: E402
from server.recommenders.kernels.groups import choose_k, rfm_tiers, share_vectors  # noqa: E402
from server.recommenders.kernels.neighbors import UserKNN  # noqa: E402
from server.recommenders.kernels.text import TfidfIndex  # noqa: E402
from server.recommenders.kernels.topk import topk_1d  # noqa: E402
from server.recommenders.matrix_factorization import PARAMS, TYPICAL_CONFIDENCE  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
CUT = dt.datetime(2011, 8, 1)


def timed(label: str, fn):
    t = time.perf_counter()
    out = fn()
    print(f"  {label:44s} {time.perf_counter() - t:6.2f} s")
    return out


def _when(s: str) -> dt.datetime:
    for fmt in ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%m/%d/%Y %H:%M"):
        try:
            return dt.datetime.strptime(s, fmt)
        except ValueError:
            pass
    raise ValueError(s)


def retail(path: Path) -> None:
    users, items, titles, cats = {}, {}, {}, {}
    rows = []
    with gzip.open(path, "rt", newline="", encoding="utf-8", errors="replace") as fh:
        for r in csv.DictReader(fh):
            titles.setdefault(r["StockCode"], r["Description"] or "")
            if r["InvoiceNo"].startswith("C") or not r["CustomerID"]:
                continue
            u = users.setdefault(r["CustomerID"], len(users))
            i = items.setdefault(r["StockCode"], len(items))
            rows.append((u, i, _when(r["InvoiceDate"]), r["InvoiceNo"], float(r["Quantity"]) * float(r["UnitPrice"])))
    nu, ni = len(users), len(items)
    newest = max(r[2] for r in rows)
    print(f"online-retail: {len(rows):,} lines, {nu:,} customers, {ni:,} products")

    def matrix(part):
        age = np.array([(newest - r[2]).days for r in part], float)
        w = 5 * 0.5 ** (age / 60.0)
        R = sparse.csr_matrix((w, ([r[0] for r in part], [r[1] for r in part])), shape=(nu, ni))
        R.sum_duplicates()
        return R

    R = matrix(rows)
    med = float(np.median(R.data))
    params = PARAMS.__class__(**{**PARAMS.__dict__, "alpha": TYPICAL_CONFIDENCE / med})
    print("fit times:")
    timed(f"implicit ALS ({params.factors} factors, {params.iterations} sweeps)", lambda: ImplicitALS(params).fit(R))
    docs = [titles.get(s, "") for s in items]
    ix = timed("TF-IDF words + char 2-3 grams (fit)", lambda: TfidfIndex().fit(docs))
    timed("TF-IDF top-50 neighbours of every product", lambda: ix.pruned(0.5).neighbors(50))
    X = R.copy()
    X.data = np.log1p(X.data)
    timed("user-kNN (fit)", lambda: UserKNN(k=50).fit(X))

    def groups():
        last, first = {}, {}
        freq = np.zeros(nu)
        money = np.zeros(nu)
        seen = set()
        for u, _, t, inv, amount in rows:
            last[u] = max(last.get(u, t), t)
            first[u] = min(first.get(u, t), t)
            money[u] += amount
            if (u, inv) not in seen:
                seen.add((u, inv))
                freq[u] += 1
        ms = lambda t: t.timestamp() * 1000  # noqa: E731
        tiers = rfm_tiers(np.array([ms(last[u]) for u in range(nu)]), np.array([ms(first[u]) for u in range(nu)]),
                          freq, money, ms(newest))
        # product kind = last word of the title (the data has no categories), 50 most common
        word = [(titles.get(s) or "?").split()[-1] if (titles.get(s) or "").split() else "?" for s in items]
        names, counts = np.unique(word, return_counts=True)
        top = {n: j for j, n in enumerate(names[np.argsort(-counts, kind="stable")][:50])}
        col = np.array([top.get(w, -1) for w in word])
        has = col >= 0
        M = sparse.csr_matrix((np.ones(int(has.sum())), (np.flatnonzero(has), col[has])), shape=(ni, len(top)))
        k, _, _ = choose_k(share_vectors(R @ M), k_max=8)
        return tiers, k
    tiers, k = timed("customer groups (RFM + clusters)", groups)
    names, counts = np.unique(tiers, return_counts=True)
    print("  tiers:", dict(zip(names.tolist(), counts.tolist())), f"clusters: {k}")

    train = [r for r in rows if r[2] < CUT]
    test: dict[int, set] = {}
    for r in rows:
        if r[2] >= CUT:
            test.setdefault(r[0], set()).add(r[1])
    Rt = matrix(train)
    cases = [u for u in sorted(test) if Rt[u].nnz]
    pop = np.asarray((Rt > 0).sum(axis=0)).ravel().astype(float)
    als = ImplicitALS(PARAMS.__class__(**{**PARAMS.__dict__, "alpha": TYPICAL_CONFIDENCE / float(np.median(Rt.data))})).fit(Rt)
    Xt = Rt.copy()
    Xt.data = np.log1p(Xt.data)
    knn = UserKNN(k=50).fit(Xt)

    def recall(fn, new_only=False):
        total = 0.0
        for u in cases:
            truth = test[u] - (set(Rt[u].indices.tolist()) if new_only else set())
            if not truth:
                continue
            total += len(set(fn(u).tolist()) & truth) / min(20, len(truth))
        return total / len(cases)

    print(f"time split at {CUT:%Y-%m-%d}: {len(cases):,} customers with history, recall@20 of the next purchases")
    print(f"  popularity              {recall(lambda u: topk_1d(pop, 20)[0]):.4f}")
    print(f"  matrix factorisation    {recall(lambda u: als.recommend(als.user_factors[u], 20)[0]):.4f}")
    print("  products new to the customer:")
    print(f"  popularity              {recall(lambda u: topk_1d(pop, 20, Rt[u].indices)[0], True):.4f}")
    print(f"  matrix factorisation    {recall(lambda u: als.recommend(als.user_factors[u], 20, Rt[u].indices)[0], True):.4f}")
    print(f"  user-kNN                {recall(lambda u: knn.score(knn.R[u], exclude_user=u, n=20)[0], True):.4f}")


def movielens(base: Path) -> None:
    from server.catalog.schema import age_band
    from server.recommenders.demographic import DemographicModel

    users = {}
    for line in (base.with_suffix(".user")).read_text().splitlines()[1:]:
        u, age, g, occ, _ = line.split("\t")
        users[u] = (g.lower(), age_band(None, int(age), 2000), occ)
    uids = sorted(users)
    np.random.default_rng(0).shuffle(uids)
    held = set(uids[: len(uids) // 5])
    uix = {u: i for i, u in enumerate(uids)}
    items: dict[str, int] = {}
    r_rows, r_cols = [], []
    for line in (base.with_suffix(".inter")).read_text().splitlines()[1:]:
        u, i, rating, _ = line.split("\t")
        if float(rating) >= 4:
            r_rows.append(uix[u])
            r_cols.append(items.setdefault(i, len(items)))
    M = sparse.csr_matrix((np.ones(len(r_rows)), (r_rows, r_cols)), shape=(len(uids), len(items)))
    keep = np.array([u not in held for u in uids], float)
    R = sparse.csr_matrix(sparse.diags(keep) @ M)
    ds = types.SimpleNamespace(n_items=len(items), R=R, profile_gender=[users[u][0] for u in uids],
                               profile_age_band=[users[u][1] for u in uids],
                               profile_interests=[[users[u][2]] for u in uids])
    model = DemographicModel(ds)
    pop = np.asarray(R.sum(axis=0)).ravel()
    cases = [uix[u] for u in held if M[uix[u]].nnz]

    def recall(fn):
        return sum(len(set(topk_1d(fn(p), 20)[0].tolist()) & set(M[p].indices.tolist())) / min(20, M[p].nnz)
                   for p in cases) / len(cases)

    print(f"movielens-100k: {len(cases)} held-out users recommended from their profile only, recall@20")
    print(f"  popularity                     {recall(lambda p: pop):.4f}")
    prof = lambda p: {"gender": users[uids[p]][0], "age_band": users[uids[p]][1]}  # noqa: E731
    print(f"  demographic (gender, age band) {recall(lambda p: model.scores(prof(p), None)[0]):.4f}")
    print(f"  + occupation as an interest    "
          f"{recall(lambda p: model.scores({**prof(p), 'interests': [users[uids[p]][2]]}, None)[0]):.4f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--skip-movielens", action="store_true")
    a = ap.parse_args(argv)
    files = sorted((a.data / "online-retail").glob("*.csv.gz")) if (a.data / "online-retail").is_dir() else []
    if files:
        retail(files[0])
    else:
        print(f"online-retail not found under {a.data / 'online-retail'}: skipped")
    base = a.data / "movielens-100k" / "ml-100k"
    if a.skip_movielens:
        pass
    elif base.with_suffix(".user").is_file():
        movielens(base)
    else:
        print(f"movielens-100k not found under {base.parent}: skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
