"""Prometheus metrics (prometheus_client: the standard exposition format, no hand-written text).

Per worker process; with several workers scrape each or front them with one worker for metrics.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest, CONTENT_TYPE_LATEST

REGISTRY = CollectorRegistry(auto_describe=True)

EVENTS_ACCEPTED = Counter("funnelrec_events_accepted_total", "Events stored", ["tenant"], registry=REGISTRY)
EVENTS_DUPLICATE = Counter("funnelrec_events_duplicate_total", "Events already stored (retries)", ["tenant"], registry=REGISTRY)
EVENTS_REJECTED = Counter("funnelrec_events_rejected_total", "Events rejected as invalid", ["tenant", "reason"], registry=REGISTRY)
EVENTS_DROPPED = Counter("funnelrec_events_dropped_total", "Events counted but not stored", ["tenant", "reason"], registry=REGISTRY)
REQUESTS_REFUSED = Counter("funnelrec_requests_refused_total", "Requests refused with a 4xx", ["status", "error"], registry=REGISTRY)
LATENCY = Histogram(
    "funnelrec_request_seconds", "Request latency", ["route"], registry=REGISTRY,
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge("funnelrec_writer_queue_depth", "Write jobs waiting across open shards", registry=REGISTRY)
OPEN_SHARDS = Gauge("funnelrec_open_shards", "Shards open in this process", registry=REGISTRY)


GC_PAUSE = Histogram(
    "funnelrec_gc_pause_seconds", "Pauses of Python's cyclic garbage collector (every request waits)", ["generation"],
    registry=REGISTRY, buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
)


def _gc_timer():
    import gc
    import time

    children = [GC_PAUSE.labels(str(g)) for g in range(3)]
    started = [0.0]

    def callback(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            children[min(info.get("generation", 2), 2)].observe(time.perf_counter() - started[0])
    gc.callbacks.append(callback)


_gc_timer()
_accepted_children: dict = {}


def accepted(tenant: str):
    """The tenant's accepted-events counter, looked up once (``labels()`` takes a lock)."""
    child = _accepted_children.get(tenant)
    if child is None:
        child = _accepted_children[tenant] = EVENTS_ACCEPTED.labels(tenant)
    return child


def render(shards) -> tuple[bytes, str]:
    QUEUE_DEPTH.set(shards.queue_depth())
    OPEN_SHARDS.set(len(shards.open_shards()))
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
