"""The time-based split: everything before the cut trains, everything at or after it tests.

Only the train part reaches the scratch tenant, so no future event can leak into a model, a
popularity count, a co-occurrence or the ranker's training. Test sessions are the sessions
whose first event is at or after the cut (a session that straddles the cut trains with its
early events and is not a test session); test orders are orders placed at or after the cut.
``check_no_leakage`` asserts it and is called by the runner on every run.
"""
from __future__ import annotations

from dataclasses import dataclass

from .formats import Log, Row

DAY_MS = 86_400_000


@dataclass
class Split:
    cut_ms: int
    train: list[Row]
    test: list[Row]
    test_sessions: set[str]

    def summary(self) -> dict:
        return {"cut_ms": self.cut_ms, "train_rows": len(self.train), "test_rows": len(self.test),
                "test_sessions": len(self.test_sessions)}


def cut_time(rows: list[Row], test_days: float | None = None, test_fraction: float = 0.15) -> int:
    if not rows:
        raise ValueError("the log is empty")
    if test_days:
        return int(rows[-1][0] - test_days * DAY_MS) + 1
    k = min(max(int(len(rows) * (1 - test_fraction)), 1), len(rows) - 1)
    return int(rows[k][0])


def time_split(log: Log, test_days: float | None = None, test_fraction: float = 0.15) -> Split:
    """``log.rows`` are sorted by time; see the module docstring."""
    cut = cut_time(log.rows, test_days, test_fraction)
    train = [r for r in log.rows if r[0] < cut]
    test = [r for r in log.rows if r[0] >= cut]
    started_before = {r[2] for r in train}
    test_sessions = {r[2] for r in test} - started_before
    s = Split(cut, train, test, test_sessions)
    check_no_leakage(s)
    return s


def check_no_leakage(s: Split) -> None:
    if s.train and max(r[0] for r in s.train) >= s.cut_ms:
        raise AssertionError("a train row is at or after the cut")
    if s.test and min(r[0] for r in s.test) < s.cut_ms:
        raise AssertionError("a test row is before the cut")
    train_sessions = {r[2] for r in s.train}
    if s.test_sessions & train_sessions:
        raise AssertionError("a test session has events before the cut")
