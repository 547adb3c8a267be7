"""A tenant's local time: the hour of day and weekday of visit-time context, in the shop's own
time zone (an IANA name such as ``Asia/Seoul`` or ``Europe/London``, daylight saving included).

The time zone is a tenant setting (``funnelrec tenant set SLUG --timezone Asia/Seoul``, kept in
the tenant's ``settings``; default ``UTC``). Models read it when they are built: every stored
interaction gets its local hour and weekday (``Dataset.fb_hour`` / ``fb_weekday``, what
``time_of_day`` and the learned ranker count), and every request its own (``Context.hour`` /
``weekday``). A change takes effect with the next build (the CLI asks the builder for one).

Offsets are looked up per quarter of an hour of UTC time (every time zone in use changes its
offset on a quarter-hour boundary), once per distinct quarter in a build and at most once per
quarter per process for requests.
"""
from __future__ import annotations

import datetime as dt
import zoneinfo

import numpy as np

QUARTER_MS = 900_000
DEFAULT = "UTC"


class LocalTimeError(ValueError):
    pass


def zone(name: str | None) -> dt.tzinfo:
    """The time zone of an IANA name (None or "" -> UTC); LocalTimeError if there is none."""
    name = name or DEFAULT
    if not isinstance(name, str) or len(name) > 64:
        raise LocalTimeError(f"invalid time zone {name!r}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise LocalTimeError(f"unknown time zone {name!r} (an IANA name, e.g. Asia/Seoul, Europe/London, UTC)") from exc


class LocalTime:
    """Hour (0-23) and weekday (0 = Monday) of epoch milliseconds in one time zone."""

    def __init__(self, name: str | None = None, offset_min: int | None = None):
        """``name``: an IANA time zone; or ``offset_min``: a fixed UTC offset (evaluations)."""
        self._offset_min = offset_min if offset_min and not name else None
        if self._offset_min is not None:
            self.name = f"UTC{offset_min:+d}min"
            self._zone = dt.timezone(dt.timedelta(minutes=offset_min))
        else:
            self.name = name or DEFAULT
            self._zone = dt.timezone.utc if self.name == DEFAULT else zone(self.name)
        self._fixed = self._zone.utcoffset(None) if isinstance(self._zone, dt.timezone) else None
        self._quarters: dict[int, int] = {}   # quarter of an hour (UTC) -> offset in seconds

    def _offset_s(self, quarter: int) -> int:
        off = self._quarters.get(quarter)
        if off is None:
            when = dt.datetime.fromtimestamp(quarter * (QUARTER_MS // 1000), dt.timezone.utc)
            off = int(when.astimezone(self._zone).utcoffset().total_seconds())
            if len(self._quarters) > 10_000:   # a long-running process: bounded
                self._quarters.clear()
            self._quarters[quarter] = off
        return off

    def offsets_s(self, ts_ms: np.ndarray) -> np.ndarray:
        """The UTC offset in seconds at each of ``ts_ms`` (int64 epoch ms)."""
        ts_ms = np.asarray(ts_ms, np.int64)
        if self._fixed is not None:
            return np.full(len(ts_ms), int(self._fixed.total_seconds()), np.int64)
        quarters, inverse = np.unique(ts_ms // QUARTER_MS, return_inverse=True)
        return np.array([self._offset_s(int(q)) for q in quarters], np.int64)[inverse]

    def parts(self, ts_ms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(hour int8, weekday int8) of each of ``ts_ms``."""
        ts_ms = np.asarray(ts_ms, np.int64)
        local_min = ts_ms // 60_000 + self.offsets_s(ts_ms) // 60
        hour = ((local_min // 60) % 24).astype(np.int8)
        weekday = (((local_min // 1440) + 3) % 7).astype(np.int8)   # 1970-01-01 was a Thursday
        return hour, weekday

    def at(self, ms: int) -> tuple[int, int]:
        """(hour, weekday) of one instant (a request's clock)."""
        off = int(self._fixed.total_seconds()) if self._fixed is not None else self._offset_s(ms // QUARTER_MS)
        local_s = ms // 1000 + off
        return local_s // 3600 % 24, (local_s // 86400 + 3) % 7

    def __getstate__(self):   # (pickled with the model: the zone by name, the look-ups made anew)
        return {"name": None if self._offset_min is not None else self.name, "offset_min": self._offset_min}

    def __setstate__(self, state):
        self.__init__(state["name"], state["offset_min"])


UTC = LocalTime()
