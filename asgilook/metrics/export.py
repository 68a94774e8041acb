"""GET /metrics: the metrics in Prometheus' text format, every worker's added up."""

from __future__ import annotations

import contextlib
import os
import pathlib
import re

import falcon
import falcon.asgi
from prometheus_client import CollectorRegistry
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from .. import blocking
from .registry import Metrics, exposition

# The files of a worker's live gauges (its event streams): gone with it.
_LIVE_FILE = re.compile(r'gauge_live\w+_(?P<pid>[0-9]+)\.db')


class MetricsExport:
    """Answer the metrics of this worker, or of every worker of its server.

    Under several workers, each keeps its values in files of the directory
    of PROMETHEUS_MULTIPROC_DIR (Config.metrics_directory), added up here:
    counters and histograms of every worker that ever served (those of a
    worker that died too: a counter never goes down), and the event streams
    of those alive. Never cached.
    """

    def __init__(self, metrics: Metrics, directory: str | None) -> None:
        self._metrics = metrics
        self._directory = directory

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        # Files are read, in a thread, when workers share them.
        resp.data = await blocking.run(blocking.FILES, self._collect)
        resp.content_type = CONTENT_TYPE_PLAIN_0_0_4
        resp.cache_control = ['no-store']

    on_head = on_get

    def _collect(self) -> bytes:
        if self._directory is None:
            return exposition(self._metrics.registry)
        forget_dead(pathlib.Path(self._directory))
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._directory)  # type: ignore[no-untyped-call]
        return exposition(registry)


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
