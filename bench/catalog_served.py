"""A filled storage directory served by uvicorn, and what is measured of it.

Part of `bench.catalog_scale`: its pages while another client uploads, and
its reads and uploads a second beside the 20-image store's.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import httpx
import redis

from asgilook.http import paging

from . import filling, load, processes
from .catalog_report import Figures
from .figures import best_of

PAGE_SIZE = 100
SPREAD = 20
STEADY_UPLOADS_PER_SECOND = 10
UPLOAD_CLIENTS = 4
CONNECTIONS = 16
STARTUP_SECONDS = 600
KINDS = ('full', 'thumbnail', 'upload')


@dataclasses.dataclass
class Settings:
    samples: int
    seconds: float
    rounds: int
    starts: int


class Served:
    """A filled storage directory served by uvicorn, with what it needs to be asked."""

    def __init__(
        self,
        store: filling.Filled,
        redis_port: int,
        database: int,
        workers: int,
        logs: Path,
    ) -> None:
        self.store = store
        self.workers = workers
        self._redis_port = redis_port
        self._database = database
        self._logs = logs
        self._server: processes.Uvicorn | None = None
        count = filling.read_catalog(store, 'SELECT count(*) FROM images')[0][0]
        self.figures = Figures(count)
        step = max(1, count // SPREAD)
        self.ids = [
            row[0]
            for offset in range(0, min(count, SPREAD * step), step)
            for row in filling.read_catalog(
                store, 'SELECT id FROM images ORDER BY seq LIMIT 1 OFFSET ?', offset
            )
        ][:SPREAD]
        deep = filling.read_catalog(
            store,
            'SELECT seq FROM images ORDER BY seq DESC LIMIT 1 OFFSET ?',
            min(PAGE_SIZE + PAGE_SIZE // 2, count - 1),
        )[0][0]
        self.first_page = f'/images?limit={PAGE_SIZE}'
        self.deep_page = f'/images?limit={PAGE_SIZE}&after={paging.encode_cursor(deep)}'
        self.uploads = load.Uploads('')

    @property
    def server(self) -> processes.Uvicorn:
        if self._server is None:
            raise RuntimeError(f'the server of {self.store.directory} is not running')
        return self._server

    @property
    def base_url(self) -> str:
        return self.server.base_url

    def start(self, starts: int) -> None:
        """Start the server starts times (keeping the last); record each start-up."""
        for number in range(starts):
            self.stop()
            self._flush_redis()
            log = self._logs / f'{self.store.images}-{self.workers}w-{number}.log'
            self._server = processes.Uvicorn(
                self.store.directory,
                processes.redis_url(self._redis_port, self._database),
                workers=self.workers,
                log=log,
                ready_path='/images?limit=1',
                startup_seconds=STARTUP_SECONDS,
            )
            self.figures.startups.append(self.server.startup_seconds)
            if processes.log_mentions(log, 'reindexed'):
                self.figures.reindexed_at_start = True
        self.uploads = load.Uploads(self.base_url)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def paths(self, kind: str) -> list[str]:
        """The paths of the spread images (kind 'full') or of their thumbnails."""
        if kind == 'full':
            return [f'/images/{image_id}.jpeg' for image_id in self.ids]
        width, height = (side // 2 for side in filling.SIZE)
        return [f'/thumbnails/{i}/{width}x{height}.jpeg' for i in self.ids]

    def peak_rss(self) -> list[float]:
        """The most memory each worker process has held (MiB)."""
        pids = self.server.workers(self.workers)
        return [processes.memory_mib(pid) for pid in pids]

    def _flush_redis(self) -> None:
        client = redis.Redis(port=self._redis_port, db=self._database)
        try:
            client.flushdb()
        finally:
            client.close()


def measure_pages(served: Served, small: bytes, settings: Settings) -> None:
    """Time the first page and a deep one while another client uploads."""
    figures = served.figures
    with httpx.Client(base_url=served.base_url, timeout=60) as http:
        _check_pages(http, served)
        with served.uploads.steady(small, STEADY_UPLOADS_PER_SECOND):
            for path in (served.first_page, served.deep_page):
                load.latencies(http, path, 10)
            figures.first = load.latencies(http, served.first_page, settings.samples)
            figures.deep = load.latencies(http, served.deep_page, settings.samples)
        figures.steady_uploads = served.uploads.steady_rate


def _check_pages(http: httpx.Client, served: Served) -> None:
    images = served.figures.images
    first = http.get(served.first_page)
    first.raise_for_status()
    if len(first.json()) != min(PAGE_SIZE, images):
        raise RuntimeError(f'the first page holds {len(first.json())} images')
    if images > PAGE_SIZE:
        following = first.links['next']['url']
        if len(http.get(following).json()) != min(PAGE_SIZE, images - PAGE_SIZE):
            raise RuntimeError(f'{following} is not the second page')


def measure_rates(served: Served, baseline: Served, settings: Settings) -> None:
    """Reads and uploads a second, rounds alternating with the 20-image server."""
    for one in (served, baseline):
        load.warm(one.base_url, one.paths('full') + one.paths('thumbnail'))
    body = (served.store.directory.parent / 'sources' / '0.jpeg').read_bytes()

    def measure(kind: str, one: Served) -> float:
        if kind == 'upload':
            return one.uploads.rate(body, settings.seconds, UPLOAD_CLIENTS)
        return load.rate(one.base_url, one.paths(kind), settings.seconds, CONNECTIONS)

    sides = [(kind, one) for kind in KINDS for one in (served, baseline)]
    best = best_of(
        [functools.partial(measure, kind, one) for kind, one in sides],
        settings.rounds,
        key=float,
    )
    values = dict(zip(sides, best, strict=True))
    figures = served.figures
    figures.full, figures.thumbnail, figures.upload = (
        values[kind, served] for kind in KINDS
    )
    figures.paired = {kind: values[kind, baseline] for kind in KINDS}
