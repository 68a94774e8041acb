"""asgilook over 10 000 to 1 000 000 images against 20, one and two workers.

Run from the repository root (needs redis-server; uses wrk if installed):

    python -m bench.catalog_scale                  # 10 000, 100 000, 1 000 000
    python -m bench.catalog_scale --quick          # 10 000 only, about a minute
    python -m bench.catalog_scale --sizes 100000 --work-dir /var/tmp/scale

Each storage directory is filled without uploads: hard links to four real
640x480 JPEGs under the names the catalog gives images, then cataloged by
`python -m asgilook reindex`; the time of both is reported (the reindex's from
the command's start to its exit). With --work-dir the filled directories are
kept there and used again by later runs. A directory of 20 images filled the
same way is the baseline, measured in the same run.

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
import sys
import tempfile
import time
from pathlib import Path

from . import filling, pictures, processes
from .catalog_report import BASELINE, Figures, Measured, report
from .catalog_served import Served, Settings, measure_pages, measure_rates


def run_workers(
    workers: int,
    stores: list[filling.Filled],
    redis_port: int,
    logs: Path,
    settings: Settings,
) -> tuple[Figures, list[Figures]]:
    """Measure the 20-image store (the first), then each other beside it."""
    small = pictures.small_png()
    baseline = Served(stores[0], redis_port, 0, workers, logs)
    results = []
    try:
        _progress(f'{workers} worker(s), {BASELINE} images: start-up, pages')
        baseline.start(settings.starts)
        measure_pages(baseline, small, settings)
        for store in stores[1:]:
            served = Served(store, redis_port, 1, workers, logs)
            results.append(measure_store(served, baseline, small, settings))
        baseline.figures.rss = baseline.peak_rss()
        baseline.uploads.delete_all()
    finally:
        baseline.stop()
    return baseline.figures, results


def measure_store(
    served: Served, baseline: Served, small: bytes, settings: Settings
) -> Figures:
    """Start-up, pages, rates and memory of one store's server."""
    started = time.perf_counter()
    try:
        _progress(f'{served.workers} worker(s), {served.store.images} images: start-up')
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
    _progress(f'  done in {time.perf_counter() - started:.0f} s')
    return served.figures


def fill(work: Path, sizes: list[int]) -> list[filling.Filled]:
    """The 20-image store and one of each size, filled unless kept in work."""
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
    return stores


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
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
    if args.quick and args.sizes == parser.get_default('sizes'):
        args.sizes = '10000'
    return args


def main() -> None:
    args = _arguments()
    sizes = [int(size) for size in args.sizes.split(',')]
    settings = Settings(args.samples, args.seconds, args.rounds, args.starts)
    if args.quick:
        settings = Settings(200, 3, 1, 2)
    with contextlib.ExitStack() as stack:
        if args.work_dir is None:
            work = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        else:
            work = args.work_dir.resolve()
            work.mkdir(parents=True, exist_ok=True)
        logs = work / 'logs'
        logs.mkdir(exist_ok=True)
        stores = fill(work, sizes)
        redis_port = stack.enter_context(processes.redis_server(work))
        measured: Measured = {
            count: run_workers(count, stores, redis_port, logs, settings)
            for count in (int(count) for count in args.workers.split(','))
        }
        failed = report(stores[0], stores[1:], measured)
        print(f'\n{failed} target(s) failed' if failed else '\nevery target met')


if __name__ == '__main__':
    main()
