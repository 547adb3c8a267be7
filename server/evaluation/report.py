"""The Markdown report of one evaluation run (``<label>.md`` beside the JSON)."""
from __future__ import annotations

TASK_TITLE = {"next_item": "Next item in session", "next_new_item": "Next item in session, not seen before in it", "next_basket": "Next basket (known customers)",
              "bought_together": "Bought together"}
METRICS = {"next_item": (("hit", "HR@20"), ("rr", "MRR@20")), "next_new_item": (("hit", "HR@20"), ("rr", "MRR@20")),
           "next_basket": (("recall", "Recall@20"), ("ndcg", "NDCG@20")),
           "bought_together": (("recall", "Recall@20"), ("ndcg", "NDCG@20"))}


def table(result: dict, task: str, top: int | None = None) -> str:
    res = result["tasks"].get(task) or {}
    if "skipped" in res:
        return f"_skipped: {res['skipped']}_\n"
    (m1, l1), (m2, l2) = METRICS[task]
    rows = sorted(((n, r) for n, r in res.items() if not n.startswith("_")), key=lambda kv: (-kv[1][m1], -kv[1][m2]))
    if top:
        rows = rows[:top]
    lines = [f"| system | {l1} (± s.e.) | {l2} | coverage@20 | pop. bias | empty | fit s | mem MB | ms/case |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n, r in rows:
        lines.append(f"| {n} | {r[m1]:.4f} ±{r.get('se_' + m1, 0):.3f} | {r[m2]:.4f} | {r['coverage']:.3f} | "
                     f"{'' if r['pop_bias'] is None else format(r['pop_bias'], '.3f')} | {r['empty']}/{r['cases']} | "
                     f"{r.get('fit_s', '')} | {r.get('mem_mb', '')} | {r['ms_per_case']} |")
    return "\n".join(lines) + "\n"


def markdown(result: dict) -> str:
    lg, sp = result["log"], result["split"]
    out = [f"# Offline evaluation: {result['label']}", "",
           f"- data: `{result['data']}` ({result['format']}): {lg['rows']:,} rows, {lg['products']:,} products, "
           f"{lg['visitors']:,} visitors, {lg['sessions']:,} sessions, {lg['first']} .. {lg['last']} UTC",
           f"- split: train {sp['train_rows']:,} rows before the cut, test {sp['test_rows']:,} rows "
           f"({sp['test_sessions']:,} test sessions); at most {result['max_cases']:,} cases per task (seeded sample)",
           f"- scratch tenant build: {result.get('build_seconds')} s; whole run {result.get('seconds')} s, "
           f"peak RSS {result.get('peak_rss_mb')} MB, {result['machine']['cpus']} CPUs; code {result.get('code')}"]
    for n in result.get("notes", []):
        out.append(f"- note: {n}")
    rk = result.get("ranker")
    if rk:
        if "error" in rk:
            out.append(f"- learned ranker: failed: {rk['error']}")
        else:
            out.append(f"- learned ranker: version {rk.get('version')}, {rk.get('train_queries')} training / "
                       f"{rk.get('val_queries')} validation queries, {rk.get('epochs')} epochs, "
                       f"{rk.get('train_seconds')} s; guard: {rk.get('guard')}")
    out.append("")
    for task in ("next_item", "next_new_item", "next_basket", "bought_together"):
        if task in result.get("tasks", {}):
            out += [f"## {TASK_TITLE[task]}", "", table(result, task)]
    return "\n".join(out)
