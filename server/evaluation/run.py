"""One evaluation run: load -> split -> replay into a scratch tenant -> build -> every system on
every task -> JSON + Markdown. ``evaluate(...)`` is what ``funnelrec eval`` calls.

Systems measured side by side on the same cases:
  rec:<name>        every registered recommender alone (``recommend`` with the case's context;
                    a recommender whose context needs the request lacks returns nothing)
  placement:<name>  every built-in placement strategy (blend, rules, fallbacks: ``run_slot``)
  ranker:<name>     the learned two-stage ranker over that placement's candidate pool (always
                    ranks, to measure it; ``guard`` in the JSON says whether it would serve)
  baseline:<name>   popularity, item-kNN cosine, EASE, implicit ALS (``baselines.py``)
"""
from __future__ import annotations

import gc
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from ..placements.blend import run_slot  # noqa: E402
from ..placements.defaults import DEFAULT_STRATEGIES  # noqa: E402
from ..placements import ranker as ranker_hook  # noqa: E402
from ..signals import weights as sig  # noqa: E402
from . import baselines as BL  # noqa: E402
from . import tasks as T  # noqa: E402
from .formats import Log, load  # noqa: E402
from .metrics import Accumulator, popularity_percentile  # noqa: E402
from .replay import build, replay  # noqa: E402
from .sizes import deep_nbytes  # noqa: E402
from .split import time_split  # noqa: E402

K = 20
# Strategies a tenant can configure (``PUT /v1/strategies``) measured beside the built-in ones.
# main_repeat: the main placement for shops whose customers re-order the same products (the
# online-retail wholesaler): the built-in main sources plus buy_again, without the rule that
# hides products bought in the last 30 days. Added after a first run showed repeat purchases
# dominate online-retail; not tuned on the test (main's weights, buy_again at 1).
EXTRA_STRATEGIES = {
    "main_repeat": {**DEFAULT_STRATEGIES["main"], "strategy": "main_repeat",
                    "sources": [*DEFAULT_STRATEGIES["main"]["sources"], {"recommender": "buy_again", "weight": 1.0}],
                    "rules": {"max_per_category": 3, "exclude_bought_days": 0}},
}
STRATEGIES = {**DEFAULT_STRATEGIES, **EXTRA_STRATEGIES}
MAIN_METRIC = {"next_item": ("hit", "rr"), "next_new_item": ("hit", "rr"), "next_basket": ("recall", "ndcg"), "bought_together": ("recall", "ndcg")}
METRIC_LABEL = {"hit": "HR", "rr": "MRR", "recall": "Recall", "ndcg": "NDCG"}


class Progress:
    """A progress bar on stderr (click's), or nothing when quiet."""

    def __init__(self, quiet: bool):
        self.quiet = quiet

    def bar(self, total: int, label: str):
        import click
        if self.quiet:
            return _NullBar()
        return click.progressbar(length=total, label=label.ljust(34), file=sys.stderr, show_eta=True,
                                 show_percent=True, width=30)

    def note(self, msg: str) -> None:
        if not self.quiet:
            print(msg, file=sys.stderr, flush=True)


class _NullBar:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False

    def update(self, n):
        pass


def _systems(model, ranker_state, baselines) -> dict[str, Callable]:
    ds = model.ds
    out: dict[str, Callable] = {}
    for name in sorted(model.fitted):
        rec = model.recommenders[name]
        fitted = model.fitted[name]

        def f(case, rec=rec, fitted=fitted):
            if not rec.applicable(case.ctx):
                return []
            case.ctx.params = {}
            return rec.recommend(fitted, ds, case.ctx, K).items.tolist()
        out[f"rec:{name}"] = f
    blend = ranker_hook.BlendRanker()
    for pname, strat in STRATEGIES.items():
        def g(case, pname=pname, strat=strat):
            case.ctx.placement = pname
            ranker_hook.set_ranker(blend)
            return [e[0] for e in run_slot(model, case.ctx, strat, K, strat.get("rules") or {}, set())]
        out[f"placement:{pname}"] = g
    if ranker_state is not None:
        from ..ranking.ranker import EvalRanker
        er = EvalRanker(ranker_state)
        for pname in ranker_state.placements:
            strat = STRATEGIES[pname]

            def h(case, pname=pname, strat=strat):
                case.ctx.placement = pname
                ranker_hook.set_ranker(er)
                try:
                    return [e[0] for e in run_slot(model, case.ctx, strat, K, strat.get("rules") or {}, set())]
                finally:
                    ranker_hook.set_ranker(blend)
            out[f"ranker:{pname}"] = h
    for b in baselines:
        out[f"baseline:{b.name}"] = lambda case, b=b: b.recommend(case.seeds, K, case.exclude)
    return out


def evaluate(data: Path, fmt: str, out_dir: Path, max_cases: int = 2000, test_days: float | None = None,
             test_fraction: float = 0.15, tasks: tuple[str, ...] = T.TASKS, only: str | None = None,
             ranker: bool = True, dwell_from_gaps: bool = False, signal_config: sig.SignalConfig | None = None,
             quiet: bool = False, label: str | None = None, ranker_without: tuple[str, ...] = ()) -> dict:
    prog = Progress(quiet)
    t_start = time.perf_counter()
    cfg = signal_config or sig.DEFAULT
    prog.note(f"loading {data} ({fmt})")
    log = load(fmt, data)
    if not log.rows:
        raise ValueError(f"no usable rows in {data}")
    if dwell_from_gaps:
        from .signals_exp import dwell_from_gaps as dfg
        log = dfg(log)
    if test_days is None and fmt == "online-retail":
        test_days = 30
    split = time_split(log, test_days, test_fraction)
    prog.note(f"split at {time.strftime('%Y-%m-%d %H:%M', time.gmtime(split.cut_ms / 1000))} UTC: "
              f"{len(split.train):,} train rows, {len(split.test):,} test rows")
    result: dict = {"ranker_without": list(ranker_without), "data": str(data), "format": fmt, "label": label or fmt, "log": log.summary(), "notes": list(log.notes),
                    "split": split.summary(), "k": K, "max_cases": max_cases, "signals": __import__("dataclasses").asdict(cfg),
                    "dwell_from_gaps": dwell_from_gaps, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "code": _code_version()}
    with tempfile.TemporaryDirectory(prefix="funnelrec-eval-") as tmp:
        prog.note("replaying the train part into a scratch tenant (funnelrec import)")
        shard, imported = replay(log, split.train, Path(tmp))
        result["import"] = imported
        try:
            t0 = time.perf_counter()
            model = build(shard, cfg)
            result["build_seconds"] = round(time.perf_counter() - t0, 3)
        finally:
            shard.close_sync()
        ds = model.ds
        prog.note(f"model built in {result['build_seconds']} s: {ds.n_items:,} products, {ds.n_persons:,} persons, "
                  f"{ds.n_feedback:,} feedback rows; errors: {model.errors or 'none'}")
        fit = {f"rec:{n}": {"fit_s": round(model.fit_seconds.get(n, 0.0), 3), "mem_mb": round(deep_nbytes(model.fitted[n]) / 2**20, 2)}
               for n in model.fitted}
        fit["_dataset"] = {"fit_s": round(model.fit_seconds.get("_dataset", 0.0), 3), "mem_mb": round(deep_nbytes(ds) / 2**20, 2)}
        for pname, strat in STRATEGIES.items():
            names = {s["recommender"] for s in strat.get("sources", ())} | set(strat.get("fallbacks", ()))
            fit[f"placement:{pname}"] = {"fit_s": round(sum(model.fit_seconds.get(n, 0.0) for n in names), 3),
                                         "mem_mb": round(sum(fit.get(f"rec:{n}", {}).get("mem_mb", 0) for n in names), 2)}
        ranker_state = None
        if ranker:
            try:
                from ..ranking.train import FAMILY, train_ranker
                t0 = time.perf_counter()
                ranker_state = train_ranker(model, progress=prog.note, strategies=STRATEGIES,
                                            family={**FAMILY, "main_repeat": "next_basket"},
                                            disabled=_disabled(ranker_without))
                secs = time.perf_counter() - t0
                result["ranker"] = ranker_state.report()
                result["ranker"]["train_seconds"] = round(secs, 3)
                for pname in ranker_state.placements:
                    fit[f"ranker:{pname}"] = {"fit_s": round(secs + fit[f"placement:{pname}"]["fit_s"], 3),
                                              "mem_mb": round(deep_nbytes(ranker_state) / 2**20, 3)}
            except Exception as exc:  # report, evaluate the rest
                import traceback
                result["ranker"] = {"error": repr(exc), "trace": traceback.format_exc()[-2000:]}
                prog.note(f"ranker training failed: {exc!r}")
        X = BL.interaction_matrix(ds)
        pop_pct = popularity_percentile(np.asarray(X.sum(axis=0)).ravel())
        bls = []
        for b in BL.all_baselines():
            if not b.available:
                result["notes"].append(f"baseline {b.name}: {b.note}")
                prog.note(f"baseline {b.name}: {b.note}")
                continue
            secs = BL.fit_timed(b, ds, X)
            fit[f"baseline:{b.name}"] = {"fit_s": round(secs, 3), "mem_mb": round(b.memory_bytes() / 2**20, 2)}
            bls.append(b)
        result["fit"] = fit
        systems = _systems(model, ranker_state, bls)
        if only:
            keep = [s.strip() for s in only.split(",") if s.strip()]
            systems = {n: f for n, f in systems.items() if any(n.startswith(k) or n.split(":", 1)[1] == k for k in keep)}
        n_catalog = int(ds.in_catalog.sum()) or ds.n_items
        result["tasks"] = {}
        for task in tasks:
            cases = T.BUILDERS[task](ds, split, max_cases, cfg)
            if not cases:
                reason = {"next_item": "no test session with two or more known products (the data has no views?)",
                          "next_new_item": "no test session with two or more known products (the data has no views?)",
                          "next_basket": "no test order of a customer with a train order",
                          "bought_together": "no test order with two or more known products (the data has no purchases?)"}[task]
                result["tasks"][task] = {"skipped": reason}
                prog.note(f"{task}: skipped: {reason}")
                continue
            res = {}
            with prog.bar(len(cases) * len(systems), f"{task} ({len(cases)} cases)") as bar:
                for sname, fn in systems.items():
                    acc = Accumulator(K, n_catalog, pop_pct)
                    t0 = time.perf_counter()
                    for case in cases:
                        try:
                            recs = fn(case)
                        except Exception as exc:
                            res.setdefault("_errors", {})[sname] = repr(exc)
                            recs = []
                        acc.add(recs, case.truth)
                    acc.seconds = time.perf_counter() - t0
                    res[sname] = {**acc.result(), **fit.get(sname, {})}
                    bar.update(len(cases))
            result["tasks"][task] = res
            gc.collect()
    result["seconds"] = round(time.perf_counter() - t_start, 1)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = label or fmt
    (out_dir / f"{stem}.json").write_text(json.dumps(result, indent=2, default=_jsonable))
    from .report import markdown
    (out_dir / f"{stem}.md").write_text(markdown(result))
    return result


def _code_version() -> str | None:
    """The git commit of the code measured (+ "-dirty" when files differ), if in a checkout."""
    import subprocess
    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              timeout=5).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "server"], cwd=root,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return (head + ("-dirty" if dirty else "")) or None
    except (OSError, subprocess.SubprocessError):
        return None


def _disabled(groups: tuple[str, ...]) -> tuple[str, ...]:
    from ..ranking.features import ENGAGEMENT, TIME
    out: list[str] = []
    for g in groups:
        out += {"time": TIME, "engagement": ENGAGEMENT}.get(g, (g,))
    return tuple(out)


def _jsonable(o):
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    return str(o)
