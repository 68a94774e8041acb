"""Two hosts over PostgreSQL and SeaweedFS against one host over SQLite, one run.

Run from the repository root (needs wrk, redis-server, PostgreSQL and the
test extra's `weed`):

    python -m bench.hosts

One side is one host of 2 workers over SQLite and the storage directory;
the other is two hosts of 1 worker each (`python -m asgilook`, separate
storage directories) over one PostgreSQL database and one SeaweedFS bucket,
both sides with their own Redis, on this machine. The same load comes
from wrk on loopback: 32 connections to the one host, 16 to each of the
two; each cold thumbnail (COLD_IMAGES) is asked once, 8 at a time. Each
path's rate on two hosts is divided by its rate on one (best of ROUNDS
each). Then the time from a 201 on one host to the event on a
subscriber of the other, and from a DELETE's 204 on one host to a 404 on
the other. Last, where the CPU went (bench/spent.py): each part's
milliseconds an operation of each path, on each side, in the rounds above.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx

from tests import engines, seaweed

from . import pictures, processes, spent, wrk
from .figures import Columns, Rate, milliseconds, percentiles

ROUNDS = 3
# What two hosts' rate must reach, as a share of one host's.
TARGETS = {
    'cached thumbnail': 0.9,
    'list page': 0.8,
    'cold thumbnail': 0.8,
    'upload': 0.7,
    'full image': 0.6,
}
# The most a change may take to reach the other host, in seconds.
LATENCY_TARGET = 0.1
COLD_IMAGES = 300
_COLUMNS = Columns((18, 11, 11, 6, 7, 9, 9))
_PARTS = Columns((18, 4, 9, 11, 10, 6, 7, 6, 7), left=2)


@dataclasses.dataclass
class Measured:
    """A path's rate on one side, and the CPU each part spent an operation (ms)."""

    rate: Rate
    parts: dict[str, float]


class Side:
    """The hosts of one side, and how wrk loads them together."""

    def __init__(self, urls: list[str], pids: list[int], connections: int) -> None:
        self.urls = urls
        # Their process groups' leaders: where their CPU is counted.
        self.pids = pids
        self._connections = connections // len(urls)

    def get(self, paths: list[str], seconds: float) -> Rate:
        """GET paths for seconds from every host at once."""
        threads = max(1, 2 // len(self.urls))
        return _together(
            [
                functools.partial(
                    wrk.get_paths, url, paths, seconds, self._connections, threads
                )
                for url in self.urls
            ]
        )

    def post(self, body: bytes, seconds: float) -> Rate:
        return _together(
            [
                functools.partial(
                    wrk.post, url + '/images', body, seconds, self._connections
                )
                for url in self.urls
            ]
        )


def _together(runs: list[Callable[[], Rate]]) -> Rate:
    """Run wrk against each host at once; the sum of rates, the worst latency."""
    with concurrent.futures.ThreadPoolExecutor(len(runs)) as pool:
        rates = list(pool.map(lambda run: run(), runs))
    return Rate(
        sum(rate.rate for rate in rates),
        max(rate.p50 for rate in rates),
        max(rate.p99 for rate in rates),
        sum(rate.requests for rate in rates),
    )


@contextlib.contextmanager
def one_host(work: Path) -> Iterator[tuple[list[str], list[int]]]:
    with (
        processes.redis_server(work) as port,
        processes.Uvicorn(
            work / 'one', processes.redis_url(port), workers=2, launcher=True
        ) as host,
    ):
        yield [host.base_url], [host.pid]


@contextlib.contextmanager
def two_hosts(work: Path) -> Iterator[tuple[list[str], list[int]]]:
    with contextlib.ExitStack() as stack:
        postgres = stack.enter_context(engines.postgres_server())
        store = stack.enter_context(seaweed.seaweed_server())
        port = stack.enter_context(processes.redis_server(work))
        env = {
            'ASGI_LOOK_DATABASE_URL': postgres.create_database(),
            'ASGI_LOOK_STORAGE_URL': f's3://{store.create_bucket()}/images',
            **store.environ,
        }
        hosts = [
            stack.enter_context(
                processes.Uvicorn(
                    work / f'host-{number}',
                    processes.redis_url(port),
                    launcher=True,
                    env=env,
                )
            )
            for number in range(2)
        ]
        yield [host.base_url for host in hosts], [host.pid for host in hosts]


def upload(urls: list[str], count: int, size: tuple[int, int]) -> list[dict[str, Any]]:
    """Upload count photos, in turn to each host; their JSON."""
    images = []
    with httpx.Client(timeout=60) as http:
        for number in range(count):
            url = urls[number % len(urls)]
            body = pictures.photo(size, number + 1)
            images.append(http.post(url + '/images', content=body).json())
    return images


def measure(side: Side, seconds: float) -> dict[str, Measured]:
    """Every path's rate on one side (each measure once: see main's rounds).

    With the CPU each part of the machine spent an operation of it.
    """
    first, *_ = upload(side.urls, 20, (1920, 1080))
    thumbnail, image = first['thumbnails'][0], first['image']
    for url in side.urls:
        with httpx.Client(base_url=url) as http:
            for path in (thumbnail, image, '/images?limit=20'):
                http.get(path).raise_for_status()
    fresh = upload(side.urls, COLD_IMAGES, (1920, 1080))
    cold_paths = [image['thumbnails'][0] for image in fresh]
    runs: dict[str, Callable[[], Rate]] = {
        'cached thumbnail': lambda: side.get([thumbnail], seconds),
        'list page': lambda: side.get(['/images?limit=20'], seconds),
        'full image': lambda: side.get([image], seconds),
        'cold thumbnail': lambda: asyncio.run(cold(side.urls, cold_paths)),
        'upload': lambda: side.post(pictures.photo((1920, 1080)), seconds),
    }
    measured = {}
    for label, run in runs.items():
        before = spent.spent(side.pids)
        rate = run()
        parts = spent.per_operation(before, spent.spent(side.pids), rate.requests)
        measured[label] = Measured(rate, parts)
    return measured


async def cold(urls: list[str], paths: list[str], connections: int = 8) -> Rate:
    """Each thumbnail asked once (none rendered before), the hosts in turn."""
    asked = [(urls[number % len(urls)], path) for number, path in enumerate(paths)]
    times: list[float] = []
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(timeout=60, limits=limits) as http:

        async def ask() -> None:
            while asked:
                url, path = asked.pop()
                started = time.perf_counter()
                (await http.get(url + path)).raise_for_status()
                times.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(ask() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    p50, p99 = percentiles(times)
    return Rate(len(times) / elapsed, p50, p99, len(times))


async def latencies(urls: list[str], count: int) -> tuple[list[float], list[float]]:
    """Seconds from a 201 on one host to the event on the other; from a 204 to a 404."""
    first, second = urls
    to_event, to_gone = [], []
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream('GET', second + '/events') as events,
    ):
        lines = events.aiter_lines()
        for number in range(count):
            body = pictures.photo((320, 200), number + 1)
            resp = await http.post(first + '/images', content=body)
            created = time.perf_counter()
            image = resp.json()
            async for line in lines:
                if line.startswith('data: ') and image['id'] in line:
                    break
            to_event.append(time.perf_counter() - created)
            await http.get(second + image['image'])
            headers = {'Authorization': f'Bearer {image["delete_token"]}'}
            await http.delete(first + image['image'], headers=headers)
            deleted = time.perf_counter()
            while (await http.get(second + image['image'])).status_code != 404:
                pass
            to_gone.append(time.perf_counter() - deleted)
    return to_event, to_gone


def report(
    rows: dict[str, tuple[Measured, Measured]],
    to_event: list[float],
    to_gone: list[float],
) -> None:
    print('\ntwo hosts (PostgreSQL + SeaweedFS) vs one host of 2 workers (SQLite)')
    print(
        _COLUMNS.line(
            'path', 'one host/s', 'two hosts/s', 'ratio', 'target', 'p50', 'p99'
        )
    )
    for label, (one, two) in rows.items():
        ratio = two.rate.rate / one.rate.rate
        print(
            _COLUMNS.line(
                label,
                f'{one.rate.rate:.1f}',
                f'{two.rate.rate:.1f}',
                f'{ratio:.2f}',
                TARGETS[label],
                milliseconds(two.rate.p50),
                milliseconds(two.rate.p99),
                'PASS' if ratio >= TARGETS[label] else 'FAIL',
            )
        )
    for label, times in [('201 -> event', to_event), ('204 -> 404', to_gone)]:
        p50 = statistics.median(times)
        p99 = statistics.quantiles(times, n=100)[98]
        verdict = 'PASS' if p99 < LATENCY_TARGET else 'FAIL'
        print(
            f'{label} on the other host: p50 {milliseconds(p50)}, '
            f'p99 {milliseconds(p99)} (target p99 < 100 ms) {verdict}'
        )
    report_parts(rows)


def report_parts(rows: dict[str, tuple[Measured, Measured]]) -> None:
    """Where the CPU went: each part's milliseconds an operation, on each side."""
    print('\nCPU ms an operation, by part of the machine (2 CPUs shared by all)')
    print(_PARTS.line('path', 'side', *spent.PARTS, 'all'))
    for label, sides in rows.items():
        for side, found in zip(('one', 'two'), sides, strict=True):
            parts = [found.parts[part] for part in spent.PARTS]
            print(
                _PARTS.line(
                    label, side, *(f'{ms:.2f}' for ms in parts), f'{sum(parts):.2f}'
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    parser.add_argument('--seconds', type=int, default=5)
    parser.add_argument('--connections', type=int, default=32)
    parser.add_argument('--changes', type=int, default=50)
    args = parser.parse_args()
    wrk.require()
    measured: dict[str, dict[str, list[Measured]]] = {'one': {}, 'two': {}}
    to_event: list[float] = []
    to_gone: list[float] = []
    with tempfile.TemporaryDirectory() as temporary:
        for turn in range(ROUNDS):
            # Taking turns: both sides meet the machine's same weather.
            for name, hosts in (('one', one_host), ('two', two_hosts)):
                work = Path(temporary, f'{name}-{turn}')
                work.mkdir()
                with hosts(work) as (urls, pids):
                    side = Side(urls, pids, args.connections)
                    for label, found in measure(side, args.seconds).items():
                        measured[name].setdefault(label, []).append(found)
                    if name == 'two' and not to_event:
                        to_event, to_gone = asyncio.run(latencies(urls, args.changes))
    rows = {
        label: (
            max(measured['one'][label], key=_rate),
            max(measured['two'][label], key=_rate),
        )
        for label in TARGETS
    }
    report(rows, to_event, to_gone)


def _rate(result: Measured) -> float:
    return result.rate.rate


if __name__ == '__main__':
    main()
