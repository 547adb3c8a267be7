"""server/metrics.py Batch: a route's latencies counted in plain Python and folded into the
histogram when collected give the samples ``Histogram.observe`` gives."""
from __future__ import annotations

import math
import random

from prometheus_client import CollectorRegistry, Histogram

from server.metrics import Batch, BatchedHistogram

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Approx(float):
    """A sum: a batch adds its own sum, not each observation in turn (the same up to the last bits)."""

    def __eq__(self, other):
        return math.isclose(self, other, rel_tol=1e-12, abs_tol=1e-15)


def _samples(hist) -> dict:
    return {(s.name, tuple(sorted(s.labels.items()))): Approx(s.value) if s.name.endswith("_sum") else s.value
            for f in hist.collect() for s in f.samples if not s.name.endswith("_created")}


def test_batched_histogram_samples_are_those_of_observe(monkeypatch):
    monkeypatch.setattr(Batch, "FOLD", 50)  # some folds on the way, the rest when collected
    reg = CollectorRegistry()
    ref = Histogram("lat", "x", ["route"], registry=reg, buckets=BUCKETS)
    batched = BatchedHistogram("lat", "x", ["route"], registry=CollectorRegistry(), buckets=BUCKETS)
    rng = random.Random(5)
    values = ([0.0, 1e-9, 20.0, 1e9] + list(BUCKETS)             # on every bound: ``<=`` takes it
              + [b * (1 + 1e-12) for b in BUCKETS] + [rng.expovariate(20) for _ in range(437)])
    assert _samples(batched) == _samples(ref) == {}
    for k, v in enumerate(values):
        route = ("/a", "/b")[k % 2]
        ref.labels(route).observe(v)
        batched.batch(route).observe(v)
        if k in (0, 1, 77, 300):  # collected in between: folded there, counted on afterwards
            assert _samples(batched) == _samples(ref)
    got, want = _samples(batched), _samples(ref)
    assert got == want and want[("lat_count", (("route", "/a"),))] == (len(values) + 1) // 2
    assert _samples(batched) == want  # a second collection adds nothing
    assert batched.batch("/a") is batched.batch("/a")
