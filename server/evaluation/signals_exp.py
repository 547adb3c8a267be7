"""Time-signal experiments on logs without widget measurements.

The real data here has no engaged time, scroll or content-in-view: only the widget measures
them. What the diginetica log does have is the time between two views of a session
(``timeframe``). ``dwell_from_gaps`` turns that gap into a proxy of the engaged time of the
earlier view (capped at 10 minutes; the last view of a session stays unmeasured), so the
engine's engagement weighting (``server/signals/weights.py``: bounce under 3 s, relative to
the product's usual time, capped) can be switched on and compared with the plain weighting.
A gap is an upper bound of engaged time (the visitor may have left the tab), so this is a
proxy, not a measurement: docs/quality.md says what it can and cannot show.
"""
from __future__ import annotations

from .formats import VIEW, Log

CAP_MS = 600_000


def dwell_from_gaps(log: Log, cap_ms: int = CAP_MS) -> Log:
    last: dict[str, int] = {}
    rows = list(log.rows)
    for n in range(len(rows) - 1, -1, -1):
        r = rows[n]
        if r[3] != VIEW:
            continue
        nxt = last.get(r[2])
        last[r[2]] = r[0]
        if nxt is not None and nxt >= r[0]:
            rows[n] = r[:8] + (float(min(nxt - r[0], cap_ms)), None)
    out = Log(log.name, rows, log.products, list(log.notes) + ["engaged time of each view = gap to the session's next view (proxy)"],
              log.skipped)
    return out
