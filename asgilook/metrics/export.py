"""GET /metrics: the metrics in Prometheus' text format, every worker's added up."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re
from collections.abc import Iterator

import falcon
import falcon.asgi
import prometheus_client
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

from .. import blocking
from . import tallies
from .registry import Metrics

# The files of a worker's live gauges (its event streams): gone with it.
_LIVE_FILE = re.compile(r'gauge_live\w+_(?P<pid>[0-9]+)\.db')


class MetricsExport:
    """Answer the metrics of this worker, or of every worker of its server.

    Under several workers, each keeps its values in files of the directory
    of PROMETHEUS_MULTIPROC_DIR (Config.metrics_directory), added up here:
    counters and histograms of every worker that ever served (those of a
    worker that died too: a counter never goes down), and the event streams
    of those alive. This worker's tallies are read as they are now, the
    others' as they last wrote them. Never cached.
    """

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        # Taken here: the loop is what changes them.
        own = self._metrics.tallies.snapshot()
        # Files are read, in a thread, when workers share them.
        resp.data = await blocking.run(blocking.FILES, self._collect, own)
        resp.content_type = CONTENT_TYPE_PLAIN_0_0_4
        resp.cache_control = ['no-store']

    on_head = on_get

    def _collect(self, own: tallies.Snapshot) -> bytes:
        shared = self._metrics.shared
        if shared is None:
            return _exposition(self._metrics.registry, [own])
        try:
            forget_dead(shared.directory)
            files = MultiProcessCollector(None, path=str(shared.directory))  # type: ignore[no-untyped-call]
        except (FileNotFoundError, ValueError) as ex:
            # Removed while its workers serve: their counts are gone with it.
            raise falcon.HTTPServiceUnavailable(
                title='Metrics unavailable',
                description=(
                    'The directory where the workers of this server keep their '
                    'metrics (PROMETHEUS_MULTIPROC_DIR) is gone: restart the '
                    'server to count anew.'
                ),
            ) from ex
        return _exposition(files, [own, *shared.others()])


def forget_dead(directory: pathlib.Path) -> None:
    """Drop the live gauges of the workers that are gone (blocking).

    uvicorn's supervisor starts a worker anew in place of one that died,
    and tells nobody: a worker's event streams end with it.
    """
    for name in os.listdir(directory):
        found = _LIVE_FILE.fullmatch(name)
        if found is not None and not _alive(int(found['pid'])):
            with contextlib.suppress(FileNotFoundError):
                mark_process_dead(int(found['pid']), str(directory))  # type: ignore[no-untyped-call]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        # Gone, or its pid taken by another user's process: ours is gone.
        return False
    return True


class _Scraped:
    """What a scrape shows: the metrics of a collector, then the tallies'."""

    def __init__(self, collector: Collector, snapshots: list[tallies.Snapshot]) -> None:
        self._collector = collector
        self._snapshots = snapshots

    def collect(self) -> Iterator[Metric]:
        yield from self._collector.collect()
        yield from tallies.families(self._snapshots)


def _exposition(collector: Collector, snapshots: list[tallies.Snapshot]) -> bytes:
    """Return the metrics of a collector and of tallies in Prometheus' text format."""
    return prometheus_client.generate_latest(_Scraped(collector, snapshots))
