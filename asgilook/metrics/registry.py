"""Metrics: what one app counts and times, as Prometheus metrics in a registry."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# A request's route when none matched its path (a 404, a redirect of the gate).
UNMATCHED = 'unmatched'
# The methods that get a label of their own; any other is counted as OTHER,
# so that a client sending made-up methods makes no new series.
METHODS = frozenset(
    {'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'}
)
OTHER = 'OTHER'
# Seconds: a cached answer takes well under a millisecond, a cold render tens.
DURATION_BUCKETS = (
    *(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
    *(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
# Bytes of uploads: 16 KiB to 32 MiB, doubling.
UPLOAD_BUCKETS = tuple(16384.0 * 2**power for power in range(12))

# Counts one answer and how long it took.
Answered = Callable[[float], None]


class Metrics:
    """The metrics of one app, registered in a registry of its own.

    Under several workers (PROMETHEUS_MULTIPROC_DIR), prometheus_client keeps
    every worker's values in files of that directory, which GET /metrics
    adds up (export.py).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            'asgilook_http_requests',
            'HTTP requests answered, by route (URI template), method and status',
            ['route', 'method', 'status'],
            registry=registry,
        )
        self.durations = Histogram(
            'asgilook_http_request_duration_seconds',
            'Time from a request to its answer, by route (URI template)',
            ['route'],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.cache_lookups = Counter(
            'asgilook_cache_lookups',
            'Answers looked up in a tier of the cache (memory, flight, redis)',
            ['tier', 'result'],
            registry=registry,
        )
        self._renders(registry)
        self._uploads(registry)
        self.subscribers = Gauge(
            'asgilook_event_subscribers',
            'Event streams (SSE and WebSocket) open now',
            registry=registry,
            multiprocess_mode='livesum',
        )
        self._answered: dict[tuple[str, str, int], Answered] = {}
        self._looked_up: dict[tuple[str, bool], Callable[[], None]] = {}

    def _renders(self, registry: CollectorRegistry) -> None:
        self.renders = Counter(
            'asgilook_renders',
            'Thumbnails rendered, by format',
            ['format'],
            registry=registry,
        )
        self.render_durations = Histogram(
            'asgilook_render_duration_seconds',
            'Time to render a thumbnail, by format',
            ['format'],
            buckets=DURATION_BUCKETS,
            registry=registry,
        )

    def _uploads(self, registry: CollectorRegistry) -> None:
        self.uploads = Counter(
            'asgilook_uploads',
            'Uploads answered, by status',
            ['status'],
            registry=registry,
        )
        self.upload_bytes = Histogram(
            'asgilook_upload_bytes',
            'Bytes of the bodies of uploads stored',
            buckets=UPLOAD_BUCKETS,
            registry=registry,
        )

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count an answer of a route (its URI template) and how long it took."""
        key = (route, method if method in METHODS else OTHER, status)
        count = self._answered.get(key)
        if count is None:
            count = self._answered[key] = self._counter(*key)
        count(seconds)

    def _counter(self, route: str, method: str, status: int) -> Answered:
        requests = self.requests.labels(route, method, str(status))
        durations = self.durations.labels(route)

        def count(seconds: float) -> None:
            requests.inc()
            durations.observe(seconds)

        return count

    def looked_up(self, tier: str, hit: bool) -> None:
        """Count a lookup of a tier of the cache."""
        count = self._looked_up.get((tier, hit))
        if count is None:
            # Bound once: labels() takes a lock and builds its key each time.
            count = self._looked_up[tier, hit] = self.cache_lookups.labels(
                tier, 'hit' if hit else 'miss'
            ).inc
        count()

    @contextlib.contextmanager
    def rendering(self, kind: str) -> Iterator[None]:
        """Count a render of a thumbnail in a format, and time it if it succeeds."""
        started = self.clock()
        yield
        self.render_durations.labels(kind).observe(self.clock() - started)
        self.renders.labels(kind).inc()

    def uploaded(self, status: int, size: int | None) -> None:
        """Count an upload's answer, and the size of its body if it was stored."""
        self.uploads.labels(str(status)).inc()
        if size is not None:
            self.upload_bytes.observe(size)


def exposition(registry: CollectorRegistry) -> bytes:
    """Return a registry's metrics in Prometheus' text format."""
    return prometheus_client.generate_latest(registry)
