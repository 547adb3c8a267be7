"""``funnelrec eval``: the offline evaluation command (``eval_cmd``, a click command).

    funnelrec eval --format online-retail --out eval-results
    funnelrec eval --format diginetica --data ../shared/data/diginetica-sample/train-item-views-sample.csv
    python -m server.evaluation ...   (the same command without the console script)

Without ``--data`` the public data sets in ``../shared/data`` (beside the project folder) are
used when they are there; otherwise the command says what is missing and how to pass a file.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from .formats import FORMATS

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
DEFAULT_FILES = {"online-retail": ("online-retail", "*.csv.gz"),
                 "diginetica": ("diginetica-sample", "*.csv"),
                 "movielens": ("movielens-100k", "*.inter")}


def default_data(fmt: str) -> Path:
    spec = DEFAULT_FILES.get(fmt)
    if spec is None:
        raise click.UsageError(f"--format {fmt} has no default data set: pass --data PATH")
    folder = SHARED / spec[0]
    files = sorted(folder.glob(spec[1])) if folder.is_dir() else []
    if not files:
        raise click.UsageError(f"no default {fmt} data: {folder} is missing (it comes with the project's shared data). "
                               f"Pass --data PATH to a {fmt} file.")
    return files[0]


@click.command("eval")
@click.option("--data", "data", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="The log to evaluate on (default: the matching data set in ../shared/data).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="online-retail", show_default=True,
              help="Input format: online-retail invoices, generic events CSV/NDJSON, a sessions file, diginetica, "
                   "movielens (RecBole atomic files, with user profiles).")
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=Path("eval-results"),
              show_default=True, help="Folder for <label>.json and <label>.md.")
@click.option("--max-cases", type=int, default=2000, show_default=True, help="Test cases per task (seeded sample; 0 = all).")
@click.option("--test-days", type=float, default=None, help="Test on the last N days (online-retail default: 30).")
@click.option("--test-fraction", type=float, default=0.15, show_default=True,
              help="Else test on the newest share of the rows.")
@click.option("--tasks", default="next_item,next_new_item,next_basket,bought_together", show_default=True)
@click.option("--only", default=None, help="Comma-separated systems or prefixes (rec:, placement:, ranker:, baseline:).")
@click.option("--no-ranker", is_flag=True, help="Do not train and measure the learned ranker.")
@click.option("--dwell-from-gaps", is_flag=True,
              help="Use the time to the next view as a proxy of engaged time (time-signal experiment).")
@click.option("--signals", default=None,
              help="Signal weight overrides for experiments, e.g. bounce_ms=10000,half_life_days=30 "
                   "(fields of server.signals.weights.SignalConfig).")
@click.option("--ranker-without", default="",
              help="Ablation: ranker feature groups or names to switch off (time, engagement, or feature names).")
@click.option("--label", default=None, help="Name of the result files (default: the format).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the result JSON.")
def eval_cmd(data, fmt, out, max_cases, test_days, test_fraction, tasks, only, no_ranker, dwell_from_gaps, signals,
             ranker_without, label, quiet, as_json) -> None:
    """Replay a real log through the product's import and models into a scratch tenant and
    measure every recommender, placement strategy, the learned ranker and the baselines on a
    time split (next item, next basket, bought together)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from .run import evaluate
    from .report import markdown
    from .tasks import TASKS
    path = data or default_data(fmt)
    if data is None:
        click.echo(f"using {path}", err=True)
    chosen = tuple(t.strip() for t in tasks.split(",") if t.strip())
    bad = [t for t in chosen if t not in TASKS]
    if bad:
        raise click.UsageError(f"unknown task(s) {', '.join(bad)}; use {', '.join(TASKS)}")
    cfg = None
    if signals:
        import dataclasses
        from ..signals.weights import DEFAULT
        known = {f.name: f.type for f in dataclasses.fields(DEFAULT)}
        over = {}
        for part in signals.split(","):
            k, _, v = part.partition("=")
            k = k.strip()
            if k not in known:
                raise click.UsageError(f"--signals: unknown field {k!r}; known: {', '.join(sorted(known))}")
            over[k] = float(v)
        cfg = dataclasses.replace(DEFAULT, **over)
    result = evaluate(path, fmt, out, max_cases=max_cases, test_days=test_days, test_fraction=test_fraction,
                      tasks=chosen, only=only, ranker=not no_ranker, dwell_from_gaps=dwell_from_gaps, quiet=quiet,
                      label=label, signal_config=cfg,
                      ranker_without=tuple(x.strip() for x in ranker_without.split(",") if x.strip()))
    stem = label or fmt
    if as_json:
        click.echo(json.dumps(result, indent=2, default=str))
    else:
        click.echo(markdown(result))
        click.echo(f"wrote {out / (stem + '.json')} and {out / (stem + '.md')}", err=True)
    sys.stdout.flush()
