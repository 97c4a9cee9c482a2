"""Optional Prometheus metrics for operators (SCRUBBOT_METRICS_PORT): aggregates only.

Labels are the network, the file format, the outcome, the refusal's reason and the kind of
hidden data found; never a chat, a user, a file name or a value. The endpoint is served from a
thread by prometheus-client on SCRUBBOT_METRICS_LISTEN (127.0.0.1 unless set), at /metrics.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

if TYPE_CHECKING:
    from bot.service import Reply

REGISTRY = CollectorRegistry(auto_describe=True)

FILES = Counter(
    "scrubbot_files",
    "Files handled, by network, format (for cleaned files) and outcome.",
    ["network", "format", "outcome"],
    registry=REGISTRY,
)
REFUSALS = Counter(
    "scrubbot_refusals",
    "Files refused, by network and reason (unsupported, damaged, too_large, not_clean).",
    ["network", "reason"],
    registry=REGISTRY,
)
FINDINGS = Counter(
    "scrubbot_findings",
    "Cleaned files that held a kind of hidden data, by network and kind.",
    ["network", "kind"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "scrubbot_reply_seconds",
    "Time from a photo event (one photo or album) to its answer being ready, by network.",
    ["network"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
    registry=REGISTRY,
)
WAITING = Gauge(
    "scrubbot_photos_waiting",
    "Photo events waiting for a place in memory (the queue in front of the scrubber).",
    registry=REGISTRY,
)
IN_FLIGHT = Gauge(
    "scrubbot_photos_in_flight",
    "Photo events being downloaded, scrubbed or answered right now.",
    registry=REGISTRY,
)


def serve(port: int, address: str) -> None:
    """Serve /metrics from a background thread (prometheus-client's own HTTP server)."""
    start_http_server(port, address, registry=REGISTRY)


@contextmanager
def queued() -> Iterator[None]:
    """Around the wait for a place in memory."""
    WAITING.inc()
    try:
        yield
    finally:
        WAITING.dec()


@contextmanager
def in_flight(network: str, since: float) -> Iterator[None]:
    """Around one photo event's handling, from its place in memory to its answer being ready;
    the latency counts from `since` (time.perf_counter() when the event came), waiting
    included."""
    IN_FLIGHT.inc()
    try:
        yield
    finally:
        IN_FLIGHT.dec()
        LATENCY.labels(network).observe(time.perf_counter() - since)


def count(network: str, reply: "Reply") -> None:
    for file in reply.files:
        FILES.labels(network, file.format, "cleaned").inc()
        for kind in file.kinds:
            FINDINGS.labels(network, kind.value).inc()
    for reason in reply.reasons:
        FILES.labels(network, "unknown", "refused").inc()
        REFUSALS.labels(network, reason).inc()
