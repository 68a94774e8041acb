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

from __future__ import annotations

import argparse
import collections
import dataclasses
from pathlib import Path

import httpx

from . import load, pictures, processes
from .figures import Columns, milliseconds, percentiles

_COLUMNS = Columns((32, 8, 9, 9, 10))


@dataclasses.dataclass(frozen=True)
class Crowd:
    """How a crowd at one cold thumbnail was answered."""

    states: dict[str, int]
    p50: float
    p99: float

    @property
    def renders(self) -> int:
        # A response computed for the request that asked: one render.
        return self.states.get('Miss', 0) + self.states.get('Bypass', 0)


def measure(workdir: Path, redis_url: str, workers: int, size: int) -> Crowd:
    """Crowds at the thumbnails of one photo, then at a cold one of another."""
    storage = workdir / f'images-{processes.free_port()}'
    with processes.Uvicorn(storage, redis_url, workers=workers) as server:
        base_url = server.base_url
        with httpx.Client(base_url=base_url, timeout=60) as http:
            warm_up = http.post('/images', content=pictures.photo(seed=2))
            upload = http.post('/images', content=pictures.photo())
        for uri in warm_up.json()['thumbnails']:
            load.crowd(base_url, size, 'GET', uri)
        uri = upload.json()['thumbnails'][0]
        answers = load.crowd(base_url, size, 'GET', uri)
    counted = collections.Counter(
        resp.headers['X-ASGILook-Cache'] for resp, _ in answers
    )
    p50, p99 = percentiles([elapsed for _, elapsed in answers])
    return Crowd(dict(counted), p50, p99)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    parser.add_argument('--requests', type=int, default=64)
    args = parser.parse_args()

    with processes.temporary_redis() as (workdir, redis_url):
        absent = processes.redis_url(processes.free_port())
        runs = [
            (
                '1 worker, no Redis (baseline)',
                measure(workdir, absent, 1, args.requests),
            ),
            ('1 worker, Redis', measure(workdir, redis_url, 1, args.requests)),
            ('2 workers, Redis', measure(workdir, redis_url, 2, args.requests)),
        ]

    print(f'{args.requests} concurrent GETs of one cold 960x540 thumbnail')
    print(_COLUMNS.line('', 'renders', 'p50', 'p99', 'p50 ratio'))
    baseline = runs[0][1].p50
    for label, run in runs:
        print(
            _COLUMNS.line(
                label,
                run.renders,
                milliseconds(run.p50),
                milliseconds(run.p99),
                f'{run.p50 / baseline:.2f}',
                f' {run.states}',
            )
        )


if __name__ == '__main__':
    main()
