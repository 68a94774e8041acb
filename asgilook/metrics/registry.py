"""Metrics: what one app counts and times, as Prometheus metrics in a registry."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from .shared import SharedTallies
from .tallies import DURATION_BUCKETS, Tallies

# A request's route when none matched its path (a 404, a redirect of the gate).
UNMATCHED = 'unmatched'
# Bytes of uploads: 16 KiB to 32 MiB, doubling.
UPLOAD_BUCKETS = tuple(16384.0 * 2**power for power in range(12))


class Metrics:
    """The metrics of one app: tallies, and the rest in a registry of its own.

    Every answer and cache lookup is counted in tallies (tallies.py): the
    fast path's too. Under several workers (PROMETHEUS_MULTIPROC_DIR),
    prometheus_client keeps every worker's values in files of that
    directory, and each worker writes its tallies there (shared.py), which
    GET /metrics adds up (export.py).
    """

    def __init__(
        self, clock: Callable[[], float], directory: str | None = None
    ) -> None:
        self.clock = clock
        self.tallies = tallies = Tallies()
        self.answered = tallies.answered
        self.looked_up = tallies.looked_up
        # Where the tallies go for the other workers (None: one worker).
        self.shared = None if directory is None else SharedTallies(tallies, directory)
        self.registry = registry = CollectorRegistry()
        self._renders(registry)
        self._uploads(registry)
        self.subscribers = Gauge(
            'asgilook_event_subscribers',
            'Event streams (SSE and WebSocket) open now',
            registry=registry,
            multiprocess_mode='livesum',
        )

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
