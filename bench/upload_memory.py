"""Peak memory and time of concurrent maximum-size uploads to a live uvicorn.

Run from the repository root:

    python -m bench.upload_memory

For each concurrency level a fresh `uvicorn asgilook.asgi:app` (against its own
redis-server) receives that many uploads of one maximum-size JPEG at once; the
server's peak RSS (VmHWM) is read from /proc. The baseline is the same server
with exactly image_workers uploads in flight (every worker busy), measured in
the same run; the ratios show that peak memory follows image_workers, not the
number of requests in flight.
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import os
import statistics
import time
from pathlib import Path

import PIL.Image

from asgilook.config import Config

from . import load, pictures, processes
from .figures import Columns

BYTES_PER_PIXEL_BOUND = 12
_COLUMNS = Columns((9, 9, 9, 7, 9, 7, 7), left=0)


@dataclasses.dataclass(frozen=True)
class Level:
    """A server's memory (MiB) and times (s) with `concurrency` uploads at once."""

    concurrency: int
    idle: float
    peak: float
    wall: float
    p50: float
    max: float

    @property
    def per_upload(self) -> float:
        return self.wall / self.concurrency


def measure(concurrency: int, body: bytes, redis_url: str, workdir: Path) -> Level:
    """Upload body concurrency times at once to a fresh server."""
    storage = workdir / f'images-{concurrency}'
    with processes.Uvicorn(storage, redis_url) as server:
        idle = processes.memory_mib(server.pid, 'VmRSS')
        started = time.perf_counter()
        answers = load.crowd(server.base_url, concurrency, 'POST', '/images', body)
        wall = time.perf_counter() - started
        peak = processes.memory_mib(server.pid, 'VmHWM')
    latencies = [elapsed for _, elapsed in answers]
    return Level(
        concurrency,
        idle,
        peak,
        wall,
        statistics.median(latencies),
        max(latencies),
    )


def report(config: Config, results: list[Level]) -> None:
    """Print each level's memory and times, and the bound peak memory keeps to."""
    baseline = results[0]
    bound = baseline.idle + (
        config.image_workers * config.max_image_pixels * BYTES_PER_PIXEL_BOUND / 2**20
    )
    print(
        _COLUMNS.line(
            'in flight', 'idle RSS', 'peak RSS', 'vs base', 's/upload', 'p50 s', 'max s'
        )
    )
    for result in results:
        print(
            _COLUMNS.line(
                result.concurrency,
                f'{result.idle:.0f}M',
                f'{result.peak:.0f}M',
                f'{result.peak / baseline.peak:.2f}',
                f'{result.per_upload:.2f}',
                f'{result.p50:.2f}',
                f'{result.max:.2f}',
            )
        )
    worst = max(result.peak for result in results)
    print(
        f'bound: idle + image_workers x max_image_pixels x '
        f'{BYTES_PER_PIXEL_BOUND} B = {bound:.0f}M; '
        f'worst peak {worst:.0f}M ({worst / bound:.2f} of the bound)'
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    parser.add_argument(
        '--levels', default='8,32', help='concurrency levels after the baseline'
    )
    args = parser.parse_args()
    config = Config()
    levels = [config.image_workers] + [int(n) for n in args.levels.split(',')]

    body = pictures.largest(config.max_image_pixels)
    with PIL.Image.open(io.BytesIO(body)) as image:
        width, height = image.size
    print(
        f'upload: {width}x{height} JPEG ({width * height:,} pixels, '
        f'{len(body) / 2**20:.1f} MiB); image_workers={config.image_workers}, '
        f'cpus={os.cpu_count()}'
    )
    with processes.temporary_redis() as (workdir, redis_url):
        results = [measure(level, body, redis_url, workdir) for level in levels]
    report(config, results)


if __name__ == '__main__':
    main()
