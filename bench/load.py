"""Load for a live asgilook: request rates, latencies of one client, uploads."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx

from . import figures, wrk


def rate(base_url: str, paths: list[str], seconds: float, connections: int) -> float:
    """Return the GETs a second a server answers, connections asking the paths.

    With wrk (one thread) if it is installed, else with httpx.
    """
    if not wrk.installed():
        return asyncio.run(_httpx_rate(base_url, paths, seconds, connections))
    return wrk.get_paths(base_url, paths, seconds, connections, threads=1).rate


async def _httpx_rate(
    base_url: str, paths: list[str], seconds: float, connections: int
) -> float:
    limits = httpx.Limits(max_connections=connections)
    async with httpx.AsyncClient(base_url=base_url, limits=limits) as http:
        deadline = time.perf_counter() + seconds
        done = 0

        async def ask(offset: int) -> None:
            nonlocal done
            number = offset
            while time.perf_counter() < deadline:
                resp = await http.get(paths[number % len(paths)])
                resp.raise_for_status()
                number += 1
                done += 1

        started = time.perf_counter()
        await asyncio.gather(*(ask(offset) for offset in range(connections)))
        return done / (time.perf_counter() - started)


def crowd(
    base_url: str, count: int, method: str, uri: str, body: bytes | None = None
) -> list[tuple[httpx.Response, float]]:
    """Send count requests at once, each on a connection of its own.

    Return each response with its latency (s), and fail if one is not 2xx.
    A connection each, so that any worker process may take it.
    """
    return asyncio.run(_crowd(base_url, count, method, uri, body))


async def _crowd(
    base_url: str, count: int, method: str, uri: str, body: bytes | None
) -> list[tuple[httpx.Response, float]]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base_url, timeout=600, limits=limits) as http:

        async def one() -> tuple[httpx.Response, float]:
            started = time.perf_counter()
            resp = await http.request(method, uri, content=body)
            elapsed = time.perf_counter() - started
            resp.raise_for_status()
            return resp, elapsed

        return await asyncio.gather(*(one() for _ in range(count)))


def warm(base_url: str, paths: list[str]) -> None:
    """Ask for each path until it is served from the cache."""
    with httpx.Client(base_url=base_url, timeout=60) as http:
        for path in paths:
            for _ in range(50):
                resp = http.get(path)
                resp.raise_for_status()
                if resp.headers.get('X-ASGILook-Cache') == 'Hit':
                    break
            else:
                raise RuntimeError(f'{path} is never served from the cache')


def latencies(
    http: httpx.Client, path: str, samples: int
) -> tuple[float, float, float]:
    """Return p50 and p99 (s) of sequential GETs of path, and the share of Hits."""
    times, hits = [], 0
    for _ in range(samples):
        started = time.perf_counter()
        resp = http.get(path)
        times.append(time.perf_counter() - started)
        resp.raise_for_status()
        hits += resp.headers.get('X-ASGILook-Cache') == 'Hit'
    p50, p99 = figures.percentiles(times)
    return p50, p99, hits / samples


class Uploads:
    """Images uploaded during a benchmark, to be deleted at its end."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self._uploaded: list[dict[str, Any]] = []
        self.steady_rate = 0.0
        self._lock = threading.Lock()

    def post(self, http: httpx.Client, body: bytes) -> None:
        resp = http.post('/images', content=body)
        if resp.status_code != 201:
            raise RuntimeError(f'upload answered {resp.status_code}: {resp.text}')
        with self._lock:
            self._uploaded.append(resp.json())

    def rate(self, body: bytes, seconds: float, clients: int) -> float:
        """Return the uploads a second of clients uploading body for seconds."""
        counts = [0] * clients
        errors: list[BaseException] = []
        deadline = time.perf_counter() + seconds

        def client(number: int) -> None:
            try:
                with httpx.Client(base_url=self.base_url, timeout=60) as http:
                    while time.perf_counter() < deadline:
                        self.post(http, body)
                        counts[number] += 1
            except BaseException as ex:  # Raised in the main thread below.
                errors.append(ex)

        started = time.perf_counter()
        threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if errors:
            raise errors[0]
        return sum(counts) / (time.perf_counter() - started)

    @contextlib.contextmanager
    def steady(self, body: bytes, per_second: float) -> Iterator[None]:
        """Upload body per_second times a second while the block runs.

        A new connection each time, so that any worker process may take it.
        """
        stopping = threading.Event()
        errors: list[BaseException] = []

        def upload() -> None:
            limits = httpx.Limits(max_keepalive_connections=0)
            try:
                with httpx.Client(
                    base_url=self.base_url, timeout=60, limits=limits
                ) as http:
                    next_at = time.perf_counter()
                    while not stopping.is_set():
                        self.post(http, body)
                        next_at += 1 / per_second
                        stopping.wait(max(0.0, next_at - time.perf_counter()))
            except BaseException as ex:  # Raised in the main thread below.
                errors.append(ex)

        thread = threading.Thread(target=upload)
        before = self.count
        started = time.perf_counter()
        thread.start()
        try:
            yield
        finally:
            stopping.set()
            thread.join()
        if errors:
            raise errors[0]
        self.steady_rate = (self.count - before) / (time.perf_counter() - started)

    @property
    def count(self) -> int:
        return len(self._uploaded)

    def delete_all(self) -> None:
        """Delete every image uploaded through this object."""
        with httpx.Client(base_url=self.base_url, timeout=60) as http:
            for image in self._uploaded:
                headers: dict[str, str] = {}
                if 'delete_token' in image:
                    headers['Authorization'] = f'Bearer {image["delete_token"]}'
                resp = http.delete(image['image'], headers=headers)
                if resp.status_code not in (204, 404):
                    raise RuntimeError(
                        f'DELETE {image["image"]} answered {resp.status_code}'
                    )
        self._uploaded = []
