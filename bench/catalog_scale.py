"""asgilook over 10 000 to 1 000 000 images against 20, one and two workers.

Run from the repository root (needs redis-server; uses wrk if installed):

    python -m bench.catalog_scale                  # 10 000, 100 000, 1 000 000
    python -m bench.catalog_scale --quick          # 10 000 only, about a minute
    python -m bench.catalog_scale --sizes 100000 --work-dir /var/tmp/scale

Each storage directory is filled without uploads: hard links to four real
640x480 JPEGs under the names the catalog gives images, then cataloged by
`asgilook.reindex.reindex` (what `python -m asgilook reindex` runs); the time
of both is reported. With --work-dir the filled directories are kept there and
used again by later runs. A directory of 20 images filled the same way is the
baseline, measured in the same run.

For each size and for 1 and 2 workers it starts its own redis-server (a
database flushed before each start) and `uvicorn asgilook.asgi:app`, and
measures: start-up to the first 200 of GET /images?limit=1; p50 and p99 of
sequential GET /images?limit=100 (the first page and one near the end) while
another client uploads 10 small images a second; GET /images/{id}.jpeg and
cached thumbnails a second (`wrk -t1 -c16`, over 20 images spread through the
store, alternating with the 20-image server: best of the rounds); uploads a
second (4 clients); and the peak RSS (VmHWM) of each worker process. Images
uploaded by the benchmark are deleted before each server stops.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import PIL.Image
import redis

from asgilook import pages

from . import filling, load, processes

BASELINE = 20
PAGE_SIZE = 100
SPREAD = 20
TARGET_IMAGES = 1_000_000
STARTUP_TARGET_SECONDS = 2.0
PAGE_P50_TARGET_SECONDS = 0.005
PAGE_P99_TARGET_SECONDS = 0.020
RATE_TARGET_RATIO = 0.9
RSS_TARGET_MIB = 64
STEADY_UPLOADS_PER_SECOND = 10
UPLOAD_CLIENTS = 4
CONNECTIONS = 16


@dataclasses.dataclass
class Figures:
    """What one server over one storage directory measured."""

    images: int
    startups: list[float] = dataclasses.field(default_factory=list)
    reindexed_at_start: bool = False
    first: tuple[float, float, float] = (0.0, 0.0, 0.0)
    deep: tuple[float, float, float] = (0.0, 0.0, 0.0)
    steady_uploads: float = 0.0
    full: float = 0.0
    thumbnail: float = 0.0
    upload: float = 0.0
    rss: list[float] = dataclasses.field(default_factory=list)
    # The 20-image server's rates and RSS, measured alongside these.
    paired: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def startup(self) -> float:
        return statistics.median(self.startups)


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
        self.server: processes.Uvicorn | None = None
        self.figures = Figures(store.images)
        count = filling.read_catalog(store, 'SELECT count(*) FROM images')[0][0]
        self.figures.images = count
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
        self.deep_page = f'/images?limit={PAGE_SIZE}&after={pages.encode_cursor(deep)}'

    def start(self, starts: int) -> None:
        """Start the server starts times (keeping the last); record each start-up."""
        for number in range(starts):
            self._flush_redis()
            log = self._logs / f'{self.store.images}-{self.workers}w-{number}.log'
            server = processes.Uvicorn(
                self.store.directory,
                f'redis://127.0.0.1:{self._redis_port}/{self._database}',
                self.workers,
                log,
                '/images?limit=1',
            )
            self.figures.startups.append(server.startup_seconds)
            if processes.log_mentions(log, 'reindexed'):
                self.figures.reindexed_at_start = True
            if number < starts - 1:
                server.stop()
        self.server = server
        self.uploads = load.Uploads(server.base_url)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def image_paths(self) -> list[str]:
        return [f'/images/{image_id}.jpeg' for image_id in self.ids]

    def thumbnail_paths(self) -> list[str]:
        width, height = (side // 2 for side in filling.SIZE)
        return [f'/thumbnails/{i}/{width}x{height}.jpeg' for i in self.ids]

    def peak_rss(self) -> list[float]:
        pids = self.server.workers(self.workers)
        return [processes.peak_rss_mib(pid) for pid in pids]

    def _flush_redis(self) -> None:
        client = redis.Redis(port=self._redis_port, db=self._database)
        try:
            client.flushdb()
        finally:
            client.close()


def measure_pages(served: Served, small: bytes, settings: Settings) -> None:
    """Time the first page and a deep one while another client uploads."""
    figures = served.figures
    with httpx.Client(base_url=served.server.base_url, timeout=60) as http:
        first = http.get(served.first_page)
        first.raise_for_status()
        expected = min(PAGE_SIZE, figures.images)
        if len(first.json()) != expected:
            raise RuntimeError(f'the first page holds {len(first.json())} images')
        if figures.images > PAGE_SIZE:
            following = first.links['next']['url']
            if len(http.get(following).json()) != min(
                PAGE_SIZE, figures.images - PAGE_SIZE
            ):
                raise RuntimeError(f'{following} is not the second page')
        with served.uploads.steady(small, STEADY_UPLOADS_PER_SECOND):
            for path in (served.first_page, served.deep_page):
                load.latencies(http, path, 10)
            figures.first = load.latencies(http, served.first_page, settings.samples)
            figures.deep = load.latencies(http, served.deep_page, settings.samples)
        figures.steady_uploads = served.uploads.steady_rate


def measure_rates(served: Served, baseline: Served, settings: Settings) -> None:
    """Reads and uploads a second, rounds alternating with the 20-image server."""
    figures = served.figures
    for one in (served, baseline):
        load.warm(one.server.base_url, one.image_paths() + one.thumbnail_paths())
    body = (served.store.directory.parent / 'sources' / '0.jpeg').read_bytes()
    best: dict[tuple[str, int], float] = {}
    for _ in range(settings.rounds):
        for kind in ('full', 'thumbnail', 'upload'):
            for number, one in enumerate((served, baseline)):
                if kind == 'upload':
                    value = one.uploads.rate(body, settings.seconds, UPLOAD_CLIENTS)
                else:
                    paths = (
                        one.image_paths() if kind == 'full' else one.thumbnail_paths()
                    )
                    value = load.rate(
                        one.server.base_url, paths, settings.seconds, CONNECTIONS
                    )
                best[kind, number] = max(best.get((kind, number), 0.0), value)
    figures.full, figures.thumbnail, figures.upload = (
        best[kind, 0] for kind in ('full', 'thumbnail', 'upload')
    )
    figures.paired = {kind: best[kind, 1] for kind in ('full', 'thumbnail', 'upload')}


def run_workers(
    workers: int,
    baseline_store: filling.Filled,
    stores: list[filling.Filled],
    redis_port: int,
    logs: Path,
    settings: Settings,
) -> tuple[Figures, list[Figures]]:
    small = _small_png()
    baseline = Served(baseline_store, redis_port, 0, workers, logs)
    results = []
    try:
        _progress(f'{workers} worker(s), {BASELINE} images: start-up, pages')
        baseline.start(settings.starts)
        measure_pages(baseline, small, settings)
        for store in stores:
            started = time.perf_counter()
            served = Served(store, redis_port, 1, workers, logs)
            try:
                _progress(f'{workers} worker(s), {store.images} images: start-up')
                served.start(settings.starts)
                _progress('  pages while uploading')
                measure_pages(served, small, settings)
                _progress('  reads and uploads a second')
                measure_rates(served, baseline, settings)
                served.figures.rss = served.peak_rss()
                served.figures.paired['rss'] = max(baseline.peak_rss())
                _progress(f'  deleting {served.uploads.count} uploads')
                served.uploads.delete_all()
            finally:
                served.stop()
            results.append(served.figures)
            _progress(f'  done in {time.perf_counter() - started:.0f} s')
        baseline.figures.rss = baseline.peak_rss()
        baseline.uploads.delete_all()
    finally:
        baseline.stop()
    return baseline.figures, results


def report(
    baseline_store: filling.Filled,
    stores: list[filling.Filled],
    measured: dict[int, tuple[Figures, list[Figures]]],
) -> int:
    """Print the tables and the targets; return how many targets failed."""
    print(f'\nFilling (hard links to {filling.SOURCES} JPEGs) and reindexing')
    print(f'{"images":>10} {"fill":>9} {"reindex":>9} {"catalog":>10}')
    for store in [baseline_store, *stores]:
        size = store.catalog_path.stat().st_size / 2**20
        cached = '  (kept from an earlier run)' if store.reused else ''
        print(
            f'{store.images:>10,} {store.fill_seconds:>8.2f}s '
            f'{store.reindex_seconds:>8.2f}s {size:>7.1f}MiB{cached}'
        )
    for workers, (baseline, results) in measured.items():
        _table(workers, baseline, results)
    failed = 0
    for workers, (baseline, results) in measured.items():
        failed += _targets(workers, baseline, results[-1])
    return failed


_ROWS = [
    # label, value of figures, unit, format, higher is better
    ('start-up to first answer', lambda f: f.startup, 's', '.3f'),
    ('first page of 100, p50', lambda f: f.first[0] * 1000, 'ms', '.2f'),
    ('first page of 100, p99', lambda f: f.first[1] * 1000, 'ms', '.2f'),
    ('deep page of 100, p50', lambda f: f.deep[0] * 1000, 'ms', '.2f'),
    ('deep page of 100, p99', lambda f: f.deep[1] * 1000, 'ms', '.2f'),
    ('pages from Redis (Hit)', lambda f: (f.first[2] + f.deep[2]) * 50, '%', '.0f'),
    ('uploads meanwhile', lambda f: f.steady_uploads, '/s', '.1f'),
    ('GET /images/{id}.jpeg', lambda f: f.full, '/s', '.0f'),
    ('cached thumbnail', lambda f: f.thumbnail, '/s', '.0f'),
    ('uploads (4 clients)', lambda f: f.upload, '/s', '.1f'),
    ('peak RSS, largest worker', lambda f: max(f.rss), 'MiB', '.1f'),
]
_PAIRED = {
    'GET /images/{id}.jpeg': 'full',
    'cached thumbnail': 'thumbnail',
    'uploads (4 clients)': 'upload',
    'peak RSS, largest worker': 'rss',
}


def _table(workers: int, baseline: Figures, results: list[Figures]) -> None:
    print(f'\n{workers} worker{"s" * (workers > 1)}, {os.cpu_count()} CPUs')
    head = f'{"":28} {f"{baseline.images:,}":>10}'
    for figures in results:
        head += f' {f"{figures.images:,}":>12} {"ratio":>6}'
    print(head)
    for label, value, unit, spec in _ROWS:
        kind = _PAIRED.get(label)
        if kind is None:
            line = f'{label:28} {format(value(baseline), spec):>7}{unit:3}'
        else:
            # Against the 20-image server measured alongside each size.
            line = f'{label:28} {"":10}'
            alongside = f'{"  the 20-image server beside it":39}'
        for figures in results:
            ours = value(figures)
            theirs = value(baseline) if kind is None else figures.paired[kind]
            ratio = f'{ours / theirs:.2f}' if theirs else '-'
            line += f' {format(ours, spec):>9}{unit:3} {ratio:>6}'
            if kind is not None:
                alongside += f' {format(theirs, spec):>9}{unit:3} {"":6}'
        print(line)
        if kind is not None:
            print(alongside.rstrip())
    for figures in [baseline, *results]:
        if figures.reindexed_at_start:
            print(f'NOTE: a start over {figures.images:,} images reindexed the store')


def _targets(workers: int, baseline: Figures, figures: Figures) -> int:
    at = f'{figures.images:,} images, {workers} worker{"s" * (workers > 1)}'
    if figures.images < TARGET_IMAGES:
        at += f' (the targets are for {TARGET_IMAGES:,})'
    print(f'\nTargets at {at}')
    rss_limit = figures.paired['rss'] + RSS_TARGET_MIB
    checks = [
        (
            f'start-up {figures.startup:.3f} s < {STARTUP_TARGET_SECONDS} s',
            figures.startup < STARTUP_TARGET_SECONDS,
        ),
    ]
    for name, (p50, p99, _) in (('first', figures.first), ('deep', figures.deep)):
        checks.append(
            (
                f'{name} page p50 {p50 * 1000:.2f} ms < '
                f'{PAGE_P50_TARGET_SECONDS * 1000:g} ms',
                p50 < PAGE_P50_TARGET_SECONDS,
            )
        )
        checks.append(
            (
                f'{name} page p99 {p99 * 1000:.2f} ms < '
                f'{PAGE_P99_TARGET_SECONDS * 1000:g} ms',
                p99 < PAGE_P99_TARGET_SECONDS,
            )
        )
    for label, kind in (('full image', 'full'), ('cached thumbnail', 'thumbnail')):
        ratio = getattr(figures, kind) / figures.paired[kind]
        checks.append(
            (
                f'{label} rate {ratio:.2f} of the 20-image store >= '
                f'{RATE_TARGET_RATIO}',
                ratio >= RATE_TARGET_RATIO,
            )
        )
    for number, rss in enumerate(figures.rss):
        checks.append(
            (
                f'RSS of worker {number + 1} {rss:.1f} MiB <= {rss_limit:.1f} MiB '
                f'(20-image store + {RSS_TARGET_MIB})',
                rss <= rss_limit,
            )
        )
    for text, passed in checks:
        print(f'  {"PASS" if passed else "FAIL"}  {text}')
    return sum(not passed for _, passed in checks)


def _small_png() -> bytes:
    output = io.BytesIO()
    PIL.Image.new('RGB', (64, 48), 'crimson').save(output, 'PNG')
    return output.getvalue()


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        '--sizes',
        default='10000,100000,1000000',
        help='numbers of images, comma-separated (default: %(default)s)',
    )
    parser.add_argument(
        '--quick',
        action='store_true',
        help='10 000 images, fewer samples, one round of 3 s',
    )
    parser.add_argument('--workers', default='1,2', help='default: %(default)s')
    parser.add_argument('--samples', type=int, default=300, help='GETs of a page')
    parser.add_argument('--seconds', type=float, default=5, help='a rate round')
    parser.add_argument('--rounds', type=int, default=2, help='best of')
    parser.add_argument('--starts', type=int, default=3, help='median of')
    parser.add_argument(
        '--work-dir',
        type=Path,
        help='keep the filled storage directories (and server logs) here, '
        'and use those of earlier runs',
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(',')]
    settings = Settings(args.samples, args.seconds, args.rounds, args.starts)
    if args.quick:
        sizes = [10_000] if args.sizes == parser.get_default('sizes') else sizes
        settings = Settings(200, 3, 1, 2)
    workers = [int(count) for count in args.workers.split(',')]

    with contextlib.ExitStack() as stack:
        if args.work_dir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        else:
            work = args.work_dir.resolve()
            work.mkdir(parents=True, exist_ok=True)
        logs = work / 'logs'
        logs.mkdir(exist_ok=True)
        stores = []
        for images in [BASELINE, *sizes]:
            _progress(f'filling {images:,} images in {work}')
            store = filling.filled(work, images)
            _progress(
                f'  fill {store.fill_seconds:.2f} s, reindex '
                f'{store.reindex_seconds:.2f} s'
                + (' (kept from an earlier run)' if store.reused else '')
            )
            stores.append(store)
        redis_port = stack.enter_context(processes.redis_server(work))
        measured = {
            count: run_workers(count, stores[0], stores[1:], redis_port, logs, settings)
            for count in workers
        }
        failed = report(stores[0], stores[1:], measured)
        print(f'\n{failed} target(s) failed' if failed else '\nevery target met')


if __name__ == '__main__':
    main()
