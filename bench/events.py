"""2 000 SSE subscribers of GET /events over two workers, in one run.

Run from the repository root (needs `wrk`: apt-get install wrk):

    python -m bench.events

It starts its own redis-server and `python -m asgilook --workers 2` (or,
with `--uvicorn`, `uvicorn asgilook.asgi:app --workers 2`: uvloop, httptools,
no access log) and opens 2 000 streams of GET /events
from 2 client processes (bench/subscribers.py); the kernel gives each to
either worker, and /proc tells which holds it. It measures, against the
targets of issue 15: the workers' RSS per idle subscriber; the cached
thumbnail's rate (wrk) with no subscribers and with all of them idle,
taking turns A/B/A/B; uploads at 10 a second, each on a new connection,
and the time from each 201 to its event at every subscriber (every
subscriber must see every event, in the same order); then SIGTERM to
uvicorn with every stream open: how long until every process exited, and
whether every stream was ended by the server.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import resource
import signal
import time
from pathlib import Path

import httpx

from . import load, pictures, processes, wrk
from .deliveries import Delivery, Results, report, shutdown_verdict
from .figures import Rate
from .subscribers import Subscribers

_SETTLE_SECONDS = 2.0
_UPLOAD_SIZE = (640, 480)


def raise_open_files() -> int:
    """Raise this process's soft limit of open files to its hard one (inherited)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def holders(workers: list[int], port: int) -> dict[int, int]:
    """Which worker (its index) holds the connection from each client port.

    From /proc: the inodes of the established sockets of port, and each
    worker's file descriptors.
    """
    inodes = {}
    for line in Path('/proc/net/tcp').read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if state == '01' and int(local.split(':')[1], 16) == port:
            inodes[f'socket:[{inode}]'] = int(remote.split(':')[1], 16)
    found = {}
    for number, pid in enumerate(workers):
        for fd in Path(f'/proc/{pid}/fd').iterdir():
            with contextlib.suppress(OSError):  # Closed meanwhile.
                client_port = inodes.get(os.readlink(fd))
                if client_port is not None:
                    found[client_port] = number
    return found


def rss_mib(pids: list[int]) -> float:
    return sum(processes.memory_mib(pid, 'VmRSS') for pid in pids)


def upload_steadily(
    base_url: str, per_second: float, seconds: float
) -> dict[str, float]:
    """Upload per_second images a second; the time each 201 arrived, by image id.

    A new connection each time, so that either worker may take it.
    """
    bodies = [pictures.photo(_UPLOAD_SIZE, seed) for seed in range(1, 11)]
    arrived: dict[str, float] = {}
    limits = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=base_url, timeout=60, limits=limits) as http:
        next_at = started = time.monotonic()
        while next_at < started + seconds:
            resp = http.post('/images', content=bodies[len(arrived) % len(bodies)])
            now = time.monotonic()
            if resp.status_code != 201:
                raise RuntimeError(f'upload answered {resp.status_code}: {resp.text}')
            arrived[resp.json()['id']] = now
            next_at += 1 / per_second
            time.sleep(max(0.0, next_at - time.monotonic()))
    return arrived


@dataclasses.dataclass
class Bench:
    """The run: its arguments, the server, its workers and the subscribers."""

    args: argparse.Namespace
    server: processes.Uvicorn
    workers: list[int]
    subscribers: Subscribers
    thumbnail: str = ''

    def wrk(self, cpu: list[float] | None = None) -> Rate:
        """wrk on the cached thumbnail; append the workers' CPU s per request."""
        before = sum(processes.cpu_seconds(pid) for pid in self.workers)
        url = self.server.base_url + self.thumbnail
        rate = wrk.get(url, self.args.seconds, self.args.connections)
        used = sum(processes.cpu_seconds(pid) for pid in self.workers) - before
        if cpu is not None:
            cpu.append(used / rate.requests)
        return rate

    def open(self) -> None:
        opened = sum(self.subscribers.ask('open'))
        if opened != self.args.subscribers:
            raise RuntimeError(f'{opened} streams of {self.args.subscribers} opened')
        time.sleep(_SETTLE_SECONDS)

    def close(self) -> None:
        self.subscribers.ask('close')
        time.sleep(_SETTLE_SECONDS)


def prepare(bench: Bench) -> None:
    """Upload an image, cache its thumbnail in both workers, warm wrk's path."""
    with httpx.Client(base_url=bench.server.base_url, timeout=60) as http:
        image = http.post('/images', content=pictures.photo(seed=1)).json()
    bench.thumbnail = image['thumbnails'][0]
    for _ in range(4):  # New connections: either worker.
        load.warm(bench.server.base_url, [bench.thumbnail])
    bench.wrk()


def measure_idle(bench: Bench, results: Results) -> None:
    """RSS per idle subscriber, then the thumbnail's rate A/B/A/B."""
    without = rss_mib(bench.workers)
    bench.open()
    results.rss_per_subscriber_kib = (
        (rss_mib(bench.workers) - without) * 1024 / bench.args.subscribers
    )
    bench.close()
    for _ in range(bench.args.rounds):
        results.without.append(bench.wrk(results.cpu_without))
        bench.open()
        results.with_idle.append(bench.wrk(results.cpu_with))
        if len(results.with_idle) < bench.args.rounds:
            bench.close()


def measure_delivery(bench: Bench) -> Delivery:
    """Upload steadily with every stream open; every delivery's lateness."""
    clients, server = bench.subscribers.pids, bench.workers
    held = holders(server, bench.server.port)
    bench.subscribers.ask('probe')
    before = [processes.cpu_seconds(pid) for pid in clients + server]
    started = time.monotonic()
    arrived = upload_steadily(
        bench.server.base_url, bench.args.rate, bench.args.upload_seconds
    )
    elapsed = time.monotonic() - started
    after = [processes.cpu_seconds(pid) for pid in clients + server]
    time.sleep(_SETTLE_SECONDS)
    shares = [(b - a) / elapsed for a, b in zip(before, after, strict=True)]
    return Delivery(
        arrived,
        bench.subscribers.ask('report'),
        client_cpu=shares[: len(clients)],
        worker_cpu=shares[len(clients) :],
        holders=held,
    )


def measure_shutdown(bench: Bench, results: Results) -> None:
    """SIGTERM to uvicorn with every stream open: when it all exited and ended."""
    server = bench.server.process
    pids = processes.descendants(server.pid)
    started = time.monotonic()
    os.kill(server.pid, signal.SIGTERM)
    server.wait(timeout=60)
    while any(processes.running(pid) for pid in pids):
        time.sleep(0.005)
    results.exit_seconds = time.monotonic() - started
    ends = [end for answer in bench.subscribers.ask('ends', 10.0) for end in answer]
    results.shutdown = shutdown_verdict(ends, started)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or '').splitlines()[0])
    parser.add_argument('--subscribers', type=int, default=2000)
    parser.add_argument('--clients', type=int, default=2, help='client processes')
    parser.add_argument('--rate', type=float, default=10, help='uploads a second')
    parser.add_argument('--upload-seconds', type=float, default=20)
    parser.add_argument('--seconds', type=int, default=5, help='of each wrk round')
    parser.add_argument('--connections', type=int, default=32, help="wrk's")
    parser.add_argument('--rounds', type=int, default=3, help='wrk rounds A/B')
    parser.add_argument(
        '--uvicorn',
        action='store_true',
        help='serve with plain uvicorn, not python -m asgilook',
    )
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    wrk.require()
    limit = raise_open_files()
    results = Results(args)
    with (
        processes.temporary_redis() as (work, redis_url),
        processes.Uvicorn(
            work / 'images',
            redis_url,
            workers=2,
            log=work / 'uvicorn.log',
            launcher=not args.uvicorn,
        ) as server,
    ):
        workers = server.workers(2)
        subscribers = Subscribers(server.port, args.subscribers, args.clients)
        try:
            bench = Bench(args, server, workers, subscribers)
            prepare(bench)
            measure_idle(bench, results)
            results.delivery = measure_delivery(bench)
            measure_shutdown(bench, results)
        finally:
            subscribers.quit()
    report(results, limit)


if __name__ == '__main__':
    main()
