"""Every path of asgilook against the ceiling of this machine, in one run.

Run from the repository root (needs `wrk`: apt-get install wrk):

    python -m bench.speed

It starts its own redis-server, `uvicorn asgilook.asgi:app` and, under the same
uvicorn (1 worker, uvloop, httptools, no access log), the bare ASGI app of
`bench/bare.py` answering the same bytes. Its 20 images are uploaded; the
images of the cold thumbnails are hard links to the first, listed by
`python -m asgilook reindex` while the server runs, after the cached paths are
measured; the cached thumbnail also against an asgilook with its metrics off
(bench/costs.py). Load comes from wrk on loopback
(`-t2 -c32`, a few seconds a path). For the cold thumbnail, the ceiling is the
render itself (`asgilook.imaging.convert.resize` of the stored file) called in this
process on 2 threads; for the upload, Pillow converting the same JPEG, the
least work of that path. It prints, for each path, asgilook's rate, the
ceiling's rate and their ratio (measured in this run: absolute rates drift
between runs), the latency percentiles and the server's peak RSS. Cold
thumbnails are measured in each format (JPEG, WebP, AVIF: `.webp` and `.avif`
URLs of the same copies), with the bytes and rate of each against JPEG's.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import functools
import io
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import PIL.Image

from asgilook.config import Config
from asgilook.imaging import convert, formats

from . import filling, load, pictures, processes, wrk
from .costs import measure_metrics
from .figures import Columns, Rate, best_of, milliseconds

ROUNDS = 3
UPLOADS = 20
TARGETS = {
    'cached thumbnail': 0.8,
    'cached thumbnail, metrics on/off': 0.95,
    'GET /images (20, cached)': 0.8,
    'full image': 0.8,
    'cold thumbnail': 0.9,
    'cold WebP thumbnail': 0.9,
    'cold AVIF thumbnail': 0.9,
    'upload': 0.9,
}
# The cold thumbnails' rows, by the format (extension) they are asked in.
COLD_ROWS = {
    'jpeg': 'cold thumbnail',
    'webp': 'cold WebP thumbnail',
    'avif': 'cold AVIF thumbnail',
}
_COLD_SIZE = '960x540 of a 1920x1080 photo'
# The bytes of one cold thumbnail of each format, by extension.
Lengths = dict[str, int]
_COLUMNS = Columns((26, 11, 10, 6, 6, 8, 8))

Work = Callable[[bytes], bytes]


@dataclasses.dataclass
class Served:
    """asgilook serving the benchmark's images, and what the run asks of it."""

    args: argparse.Namespace
    work: Path
    redis_url: str
    server: processes.Uvicorn
    first: dict[str, Any] = dataclasses.field(default_factory=dict)
    thumbnail: str = ''
    stored: Path = Path()

    @property
    def storage(self) -> Path:
        return self.work / 'images'

    def wrk_get(self, base_url: str, path: str) -> Rate:
        return wrk.get(base_url + path, self.args.seconds, self.args.connections)


def upload_images(served: Served) -> None:
    """Upload the images, and keep the bytes the ceiling answers in files."""
    with httpx.Client(base_url=served.server.base_url, timeout=60) as http:
        images = [
            http.post('/images', content=pictures.photo((1920, 1080), seed)).json()
            for seed in range(1, UPLOADS + 1)
        ]
        served.first = first = images[0]
        served.thumbnail = first['thumbnails'][0]
        length = len(http.get(first['image']).content)
        served.stored = served.storage / filling.file_name(
            first['id'], _size(first['size']), length
        )
        load.warm(served.server.base_url, ['/images', served.thumbnail, first['image']])
        (served.work / 'thumbnail').write_bytes(http.get(served.thumbnail).content)
        (served.work / 'list').write_bytes(http.get('/images').content)


def measure_cached(served: Served) -> dict[str, tuple[Rate, Rate]]:
    """The cached paths against a bare ASGI app answering the same bytes."""
    env = {
        'BENCH_THUMBNAIL': str(served.work / 'thumbnail'),
        'BENCH_LIST': str(served.work / 'list'),
        'BENCH_IMAGE': str(served.stored),
    }
    base = served.server.base_url
    rows = {}
    with processes.Uvicorn(
        served.storage,
        served.redis_url,
        app='bench.bare:app',
        ready_path='/list',
        env=env,
    ) as bare:
        for label, ours, theirs in [
            ('cached thumbnail', served.thumbnail, '/thumbnail'),
            ('GET /images (20, cached)', '/images', '/list'),
            ('full image', served.first['image'], '/image'),
        ]:
            mine, ceiling = best_of(
                [
                    functools.partial(served.wrk_get, base, ours),
                    functools.partial(served.wrk_get, bare.base_url, theirs),
                ],
                ROUNDS,
                key=_rate,
            )
            rows[label] = mine, ceiling
    return rows


def measure_cold(
    served: Served, ids: list[str], extension: str
) -> tuple[Rate, Rate, int]:
    """Thumbnails nobody asked for before, against Pillow making them.

    In one format (the extension of their URLs); with the bytes of one.
    """
    cold = served.args.cold
    size = _size(served.thumbnail.rsplit('/', 1)[1].partition('.')[0].split('x'))
    quality = formats.quality(Config(), extension)
    rounds = iter(range(ROUNDS))
    base = served.server.base_url

    def paths(first: int) -> list[str]:
        return [
            f'/thumbnails/{i}/{size[0]}x{size[1]}.{extension}'
            for i in ids[first : first + cold]
        ]

    def ours() -> Rate:
        # Thumbnails no round has asked for, in this format.
        asked = paths(next(rounds) * cold)
        result = wrk.get_paths(base, asked, served.args.seconds, 8, threads=2)
        if result.requests > len(asked):
            raise RuntimeError('not enough cold thumbnails: raise --cold')
        return result

    # The ceiling does the very work of a render: asgilook.imaging.convert.resize of
    # the stored file, which reads, checks, decodes and encodes it.
    stored = served.stored

    def work(_: bytes) -> bytes:
        return convert.resize(stored, size, quality, extension)

    mine, ceiling = best_of(
        [ours, lambda: pillow_rate(work, b'', served.args.seconds)], ROUNDS, key=_rate
    )
    length = len(httpx.get(base + paths(0)[0], timeout=60).content)
    return mine, ceiling, length


def measure_upload(served: Served, quality: int) -> tuple[Rate, Rate]:
    """Uploads against Pillow converting the same JPEG."""
    body = pictures.photo((1920, 1080))
    url = served.server.base_url + '/images'
    args = served.args
    mine, ceiling = best_of(
        [
            lambda: wrk.post(url, body, args.seconds, args.connections),
            lambda: pillow_rate(pillow_convert(quality), body, args.seconds),
        ],
        ROUNDS,
        key=_rate,
    )
    return mine, ceiling


def pillow_rate(work: Work, data: bytes, seconds: float) -> Rate:
    """Calls per second of work(data) on 2 threads, for about `seconds`."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        list(pool.map(work, [data] * 4))  # warm up
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            list(pool.map(work, [data] * 8))
            done += 8
        return Rate(done / (time.perf_counter() - started), requests=done)


def pillow_convert(quality: int) -> Work:
    def work(data: bytes) -> bytes:
        with PIL.Image.open(io.BytesIO(data)) as image:
            return pictures.encode(image.convert('RGB'), 'JPEG', quality=quality)

    return work


def measure_formats(served: Served) -> tuple[dict[str, tuple[Rate, Rate]], Lengths]:
    """Cold thumbnails in each format, on the same copies (each format's URLs cold)."""
    ids = add_copies(
        served.storage, served.stored, served.first, served.args.cold * ROUNDS
    )
    rows, lengths = {}, {}
    for extension, label in COLD_ROWS.items():
        mine, ceiling, lengths[extension] = measure_cold(served, ids, extension)
        rows[label] = mine, ceiling
    return rows, lengths


def add_copies(
    storage: Path, source: Path, image: dict[str, Any], count: int
) -> list[str]:
    """Store `count` more images with the bytes of one (hard links); their ids.

    They are listed by a reindex, as files copied in by hand are, while the
    server runs.
    """
    ids = []
    length = source.stat().st_size
    for _ in range(count):
        image_id = str(uuid.uuid4())
        name = filling.file_name(image_id, _size(image['size']), length)
        os.link(source, storage / name)
        ids.append(image_id)
    report = filling.reindexed(storage)
    if report.listed != UPLOADS + count or report.ignored:
        raise RuntimeError(f'the reindex did not list the copies: {report}')
    return ids


def report(
    args: argparse.Namespace,
    rows: dict[str, tuple[Rate, Rate]],
    lengths: Lengths,
    rss: list[float],
) -> None:
    """Print each path's rates, ratio and latencies, and the servers' memory."""
    print(
        f'\nasgilook vs the ceiling, {os.cpu_count()} CPUs, {sys.platform}, '
        f'wrk -t2 -c{args.connections} -d{args.seconds:g}s'
    )
    print(
        _COLUMNS.line(
            'path', 'asgilook/s', 'ceiling/s', 'ratio', 'target', 'p50', 'p99'
        )
    )
    for label, (ours, ceiling) in rows.items():
        ratio = ours.rate / ceiling.rate
        print(
            _COLUMNS.line(
                label,
                f'{ours.rate:.1f}',
                f'{ceiling.rate:.1f}',
                f'{ratio:.2f}',
                TARGETS[label],
                milliseconds(ours.p50),
                milliseconds(ours.p99),
                'ok' if ratio >= TARGETS[label] else 'BELOW',
            )
        )
    if lengths:
        _formats(rows, lengths)
    server, *helpers = rss
    print(
        f'peak RSS of the asgilook server: {server:.0f} MiB, and of the '
        f'{len(helpers)} processes it started (renders and their resource '
        f'tracker): {sum(helpers):.0f} MiB'
    )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    parser.add_argument('--seconds', type=int, default=5)
    parser.add_argument('--connections', type=int, default=32)
    parser.add_argument(
        '--cold', type=int, default=2000, help='cold thumbnails a round'
    )
    parser.add_argument('--metrics-only', action='store_true', help='that row alone')
    return parser.parse_args()


def _rate(result: Rate) -> float:
    return result.rate


def _size(sides: list[Any]) -> tuple[int, int]:
    width, height = sides
    return int(width), int(height)


def _formats(rows: dict[str, tuple[Rate, Rate]], lengths: Lengths) -> None:
    print(f'cold thumbnails by format ({_COLD_SIZE}), against JPEG:')
    jpeg_rate = rows[COLD_ROWS['jpeg']][0].rate
    for extension, length in lengths.items():
        rate = rows[COLD_ROWS[extension]][0].rate
        print(
            f'  {extension:<5} {length:>7} bytes ({length / lengths["jpeg"]:.2f} '
            f"of JPEG's), {rate:.1f}/s ({rate / jpeg_rate:.2f} of JPEG's)"
        )


def main() -> None:
    args = _arguments()
    wrk.require()
    quality = Config().jpeg_quality
    with (
        processes.temporary_redis() as (work, redis_url),
        processes.Uvicorn(work / 'images', redis_url) as server,
    ):
        served = Served(args, work, redis_url, server)
        upload_images(served)
        rows = {} if args.metrics_only else measure_cached(served)
        rows['cached thumbnail, metrics on/off'] = measure_metrics(served)
        lengths: Lengths = {}
        if not args.metrics_only:
            cold, lengths = measure_formats(served)
            rows.update(cold)
            rows['upload'] = measure_upload(served, quality)
        pids = [server.pid, *processes.descendants(server.pid)]
        rss = [processes.memory_mib(pid) for pid in pids]
    report(args, rows, lengths, rss)


if __name__ == '__main__':
    main()
