"""A crowd at one cold thumbnail: how many renders, and how long the crowd waits.

Run from the repository root:

    python -m bench.stampede

It starts its own redis-server and `uvicorn asgilook.asgi:app`, uploads a
1920x1080 photo and fires 64 concurrent GETs, each on a connection of its own,
at the largest thumbnail before anyone has asked for it. Before that, a crowd
at the thumbnails of another photo starts the render processes of the
workers (each worker starts its own at its first render). A response computed
for the request that asked (`X-ASGILook-Cache: Miss`, or `Bypass` without
Redis) is one render; a `Hit` was served from another's render. Measured in the
same run: the baseline without Redis, where nothing is shared and every
request renders; then one worker and two workers with Redis.
"""

import argparse
import asyncio
import collections
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests import servers
from tests.images import photo


async def crowd(base_url: str, uri: str, size: int) -> tuple[list, list]:
    # A connection each, so that any worker process may take it.
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=60, limits=limits) as http:

        async def one() -> tuple[str, float]:
            started = time.perf_counter()
            resp = await http.get(uri)
            elapsed = time.perf_counter() - started
            assert resp.status_code == 200, resp.status_code
            return resp.headers['X-ASGILook-Cache'], elapsed

        answers = await asyncio.gather(*(one() for _ in range(size)))
    return [state for state, _ in answers], sorted(t for _, t in answers)


def measure(workdir: Path, redis_url: str, workers: int, size: int) -> dict:
    port = servers.free_port()
    process = servers.start_uvicorn(
        workdir / f'images-{port}', redis_url, port, '--workers', str(workers)
    )
    base_url = f'http://127.0.0.1:{port}'
    try:
        warm_up = httpx.post(f'{base_url}/images', content=photo(seed=2), timeout=60)
        upload = httpx.post(f'{base_url}/images', content=photo(), timeout=60)
        for uri in warm_up.json()['thumbnails']:
            asyncio.run(crowd(base_url, uri, size))
        uri = upload.json()['thumbnails'][0]
        states, latencies = asyncio.run(crowd(base_url, uri, size))
    finally:
        servers.stop(process)
    counted = collections.Counter(states)
    return {
        'renders': counted['Miss'] + counted['Bypass'],
        'p50': statistics.median(latencies),
        'p99': latencies[max(0, round(len(latencies) * 0.99) - 1)],
        'states': dict(counted),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--requests', type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, servers.redis_server(tmp) as redis_url:
        workdir = Path(tmp)
        absent = f'redis://127.0.0.1:{servers.free_port()}'
        runs = [
            (
                '1 worker, no Redis (baseline)',
                measure(workdir, absent, 1, args.requests),
            ),
            ('1 worker, Redis', measure(workdir, redis_url, 1, args.requests)),
            ('2 workers, Redis', measure(workdir, redis_url, 2, args.requests)),
        ]

    print(f'{args.requests} concurrent GETs of one cold 960x540 thumbnail')
    print(f'{"":32} {"renders":>8} {"p50":>9} {"p99":>9} {"p50 ratio":>10}')
    baseline = runs[0][1]['p50']
    for label, run in runs:
        print(
            f'{label:32} {run["renders"]:>8} {run["p50"] * 1000:>7.1f}ms '
            f'{run["p99"] * 1000:>7.1f}ms {run["p50"] / baseline:>10.2f}  '
            f'{run["states"]}'
        )


if __name__ == '__main__':
    main()
