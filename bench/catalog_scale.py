"""Start-up and GET /images latency of a live uvicorn over 10 000 stored images.

Run from the repository root:

    python -m bench.catalog_scale

The storage directory is filled with copies of one small JPEG under the names
the catalog gives images (no upload work is timed). For an empty directory (the
baseline) and for the full one, measured in the same run, it reports the time
from starting `uvicorn asgilook.asgi:app` to its first answer of GET /images
(start-up reads the catalog), and the median latency of GET /images when the
answer must be computed (Miss) and when Redis has it (Hit).
"""

import argparse
import io
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import PIL.Image
import redis

from asgilook.catalog import file_name
from tests import servers


def fill(directory: Path, count: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    output = io.BytesIO()
    PIL.Image.new('RGB', (640, 480), 'teal').save(output, 'JPEG')
    data = output.getvalue()
    start = time.time_ns() - count * 10**9
    for number in range(count):
        path = directory / file_name(str(uuid.uuid4()), (640, 480), len(data))
        path.write_bytes(data)
        moment = start + number * 10**9
        os.utime(path, ns=(moment, moment))


def measure(storage: Path, redis_url: str, samples: int) -> dict:
    port = servers.free_port()
    started = time.perf_counter()
    process = servers.start_uvicorn(storage, redis_url, port)
    ready = time.perf_counter() - started
    cache = redis.Redis.from_url(redis_url)
    try:
        with httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=60) as http:
            misses, hits = [], []
            for _ in range(samples):
                cache.delete('asgilook:/images')
                misses.append(_timed(http, 'Miss'))
            for _ in range(samples * 4):
                hits.append(_timed(http, 'Hit'))
            count = len(http.get('/images').json())
    finally:
        cache.close()
        servers.stop(process)
    return {
        'images': count,
        'ready': ready,
        'miss': statistics.median(misses),
        'hit': statistics.median(hits),
    }


def _timed(http: httpx.Client, expected: str) -> float:
    started = time.perf_counter()
    resp = http.get('/images')
    elapsed = time.perf_counter() - started
    assert resp.headers['X-ASGILook-Cache'] == expected, resp.headers
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=10_000)
    parser.add_argument('--samples', type=int, default=20)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, servers.redis_server(tmp) as redis_url:
        empty, full = Path(tmp, 'empty'), Path(tmp, 'full')
        empty.mkdir()
        fill(full, args.images)
        baseline = measure(empty, redis_url, args.samples)
        loaded = measure(full, redis_url, args.samples)

    heading = f'{loaded["images"]} images'
    print(f'{"":28} {"empty":>10} {heading:>14} {"ratio":>7}')
    rows = [
        ('start-up to first GET /images', 'ready', 1),
        ('GET /images, Miss (p50)', 'miss', 1000),
        ('GET /images, Hit (p50)', 'hit', 1000),
    ]
    for label, key, scale in rows:
        unit = 's' if scale == 1 else 'ms'
        print(
            f'{label:28} {baseline[key] * scale:>8.3f}{unit:2} '
            f'{loaded[key] * scale:>12.3f}{unit:2} {loaded[key] / baseline[key]:>7.1f}'
        )


if __name__ == '__main__':
    main()
