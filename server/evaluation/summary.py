"""Condensed tables for docs/quality.md from the result files of several runs.

    .venv/bin/python -m server.evaluation.summary docs/eval > /tmp/tables.md

Per task: the learned ranker rows, every placement, the best recommenders and every baseline,
sorted by the task's first metric; then the ranker questions (does it beat the best single
source of its placement, does the best placement beat every baseline).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from ..placements.defaults import DEFAULT_STRATEGIES
from .report import METRICS, TASK_TITLE


def condensed(result: dict, task: str, recs: int = 6) -> str:
    res = result["tasks"].get(task) or {}
    if "skipped" in res:
        return f"_skipped: {res['skipped']}_\n"
    (m1, l1), (m2, l2) = METRICS[task]
    rows = [(n, r) for n, r in res.items() if not n.startswith("_")]
    best_recs = sorted((x for x in rows if x[0].startswith("rec:")), key=lambda kv: -kv[1][m1])[:recs]
    keep = [x for x in rows if not x[0].startswith("rec:")] + best_recs
    keep.sort(key=lambda kv: (-kv[1][m1], -kv[1][m2]))
    guard = (result.get("ranker") or {}).get("guard") or {}
    out = [f"| system | {l1} (± s.e.) | {l2} | coverage@20 | pop. bias | fit s |", "|---|---|---|---|---|---|"]
    for n, r in keep:
        label = n
        if n.startswith("ranker:"):
            g = guard.get(n.split(":", 1)[1])
            label += " (guard: serves)" if g and g["passes"] else " (guard: blend serves)"
        pb = "" if r["pop_bias"] is None else f"{r['pop_bias']:.2f}"
        out.append(f"| {label} | {r[m1]:.3f} ±{r.get('se_' + m1, 0):.3f} | {r[m2]:.3f} | {r['coverage']:.2f} | {pb} | "
                   f"{r.get('fit_s', '')} |")
    return "\n".join(out) + "\n"


def questions(result: dict, task: str, strategies: dict | None = None) -> str:
    res = result["tasks"].get(task) or {}
    if "skipped" in res:
        return ""
    strategies = strategies or {**DEFAULT_STRATEGIES, "main_repeat": {"sources": DEFAULT_STRATEGIES["main"]["sources"]
                                                                      + [{"recommender": "buy_again"}]}}
    (m1, _), (m2, _) = METRICS[task]
    base = {n: r for n, r in res.items() if n.startswith("baseline:")}
    best_base = max(base.items(), key=lambda kv: kv[1][m1]) if base else None
    pl = {n: r for n, r in res.items() if n.startswith("placement:")}
    best_pl = max(pl.items(), key=lambda kv: kv[1][m1])
    lines = [f"- best placement `{best_pl[0]}` {best_pl[1][m1]:.3f} vs best baseline `{best_base[0]}` {best_base[1][m1]:.3f}"
             if best_base else ""]
    guard = (result.get("ranker") or {}).get("guard") or {}
    lines.append("")
    lines.append(f"| placement | ranker | best single source it ranks | blend | guard |")
    lines.append("|---|---|---|---|---|")
    for n, r in sorted(res.items()):
        if not n.startswith("ranker:"):
            continue
        p = n.split(":", 1)[1]
        srcs = [s["recommender"] for s in strategies.get(p, {}).get("sources", ())]
        cand = [(s, res[f"rec:{s}"]) for s in srcs if f"rec:{s}" in res]
        best = max(cand, key=lambda kv: kv[1][m1]) if cand else None
        blend = res.get(f"placement:{p}")
        g = guard.get(p)
        lines.append(f"| {p} | {r[m1]:.3f} / {r[m2]:.3f} | "
                     + (f"{best[0]} {best[1][m1]:.3f} / {best[1][m2]:.3f}" if best else "-")
                     + f" | {blend[m1]:.3f} / {blend[m2]:.3f} | " if blend else " | - | ")
        lines[-1] += (f"{'serves' if g['passes'] else 'refused'} ({g['queries']} q, {g['blend_ndcg']:.2f} -> {g['ranker_ndcg']:.2f})"
                      if g else "-") + " |"
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    folder = Path((argv or sys.argv[1:] or ["docs/eval"])[0])
    for p in sorted(folder.glob("*.json")):
        r = json.loads(p.read_text())
        print(f"# {p.stem}  (code {r.get('code')}, build {r.get('build_seconds')} s, run {r.get('seconds')} s)\n")
        for task in ("next_item", "next_new_item", "next_basket", "bought_together"):
            if task in r.get("tasks", {}) and "skipped" not in r["tasks"][task]:
                print(f"## {TASK_TITLE[task]}\n")
                print(condensed(r, task))
                print(questions(r, task))
    return 0


if __name__ == "__main__":
    sys.exit(main())
