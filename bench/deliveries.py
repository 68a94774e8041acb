"""What bench.events found, judged against the targets of issue 15, as a table.

The client processes' reports are checked here: every subscriber must have
seen every uploaded image's event, with the same ids in the same order,
and each delivery is timed from the 201 of its upload.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import os
from typing import Any

from .figures import Columns, Rate, machine, milliseconds, percentiles

LATENCY_P99_SECONDS = 0.25
RSS_PER_SUBSCRIBER_KIB = 50
RATE_RATIO = 0.95
EXIT_SECONDS = 5.0
GOING_AWAY = 'the server is going away'
_COLUMNS = Columns((44, 26, 10, 4))


@dataclasses.dataclass
class Delivery:
    """The uploads (201 time by image id) and what each client process saw."""

    arrived: dict[str, float]
    reports: list[dict[str, Any]]
    client_cpu: list[float]
    worker_cpu: list[float]
    # The worker (its index) holding each stream, by the stream's client port.
    holders: dict[int, int]

    def __post_init__(self) -> None:
        self.images: dict[int, str] = {}
        self.conflicts = sum(report['mismatches'] for report in self.reports)
        for report in self.reports:
            for serial, image_id in report['images'].items():
                if self.images.setdefault(serial, image_id) != image_id:
                    self.conflicts += 1
        serial_of = {image_id: serial for serial, image_id in self.images.items()}
        self.unseen = [image for image in self.arrived if image not in serial_of]
        self.expected = sorted(serial_of[image] for image in self.arrived)

    def streams(self, worker: int | None = None) -> list[tuple[list[int], list[float]]]:
        """Each stream's event ids and delivery times (of one worker's streams)."""
        return [
            (serials, times)
            for report in self.reports
            for port, serials, times in zip(
                report['ports'], report['serials'], report['times'], strict=True
            )
            if worker is None or self.holders.get(port) == worker
        ]

    def held(self) -> list[int]:
        """How many streams each worker holds."""
        counts = collections.Counter(self.holders.values())
        return [counts[worker] for worker in range(len(self.worker_cpu))]

    def complete(self) -> int:
        """How many subscribers saw exactly the expected ids, in order."""
        return sum(serials == self.expected for serials, _ in self.streams())

    def latencies(self, worker: int | None = None) -> list[float]:
        """Every delivery's time since the 201 of its upload (s), or one worker's."""
        arrived, images = self.arrived, self.images
        return [
            time - arrived[images[serial]]
            for serials, times in self.streams(worker)
            for serial, time in zip(serials, times, strict=True)
            if images[serial] in arrived
        ]

    def firsts(self) -> list[float]:
        """Each upload's time from its 201 to its first delivery (s)."""
        first: dict[int, float] = {}
        for serials, times in self.streams():
            for serial, time in zip(serials, times, strict=True):
                first[serial] = min(time, first.get(serial, time))
        arrived, images = self.arrived, self.images
        return [
            time - arrived[images[serial]]
            for serial, time in first.items()
            if images[serial] in arrived
        ]

    def lags(self) -> tuple[float, float]:
        """p99 and max of how late the clients' event loops woke (s)."""
        lags = [lag for report in self.reports for lag in report['lags']]
        return percentiles(lags)[1], max(lags)


@dataclasses.dataclass(frozen=True)
class Shutdown:
    """How the streams ended after the SIGTERM."""

    ended: int
    going_away: int
    last_end_seconds: float


def shutdown_verdict(
    ends: list[tuple[float | None, str]], signalled: float
) -> Shutdown:
    """Count the streams that ended, and those the server ended as going away."""
    times = [ended_at - signalled for ended_at, _ in ends if ended_at is not None]
    return Shutdown(
        len(times),
        sum(ending == GOING_AWAY for _, ending in ends),
        max(times, default=float('nan')),
    )


@dataclasses.dataclass
class Results:
    """Everything measured, filled in as the run goes."""

    args: argparse.Namespace
    rss_per_subscriber_kib: float = 0.0
    without: list[Rate] = dataclasses.field(default_factory=list)
    with_idle: list[Rate] = dataclasses.field(default_factory=list)
    # The workers' CPU time per request of each round (s), which other
    # processes of the machine do not sway as much as the rate.
    cpu_without: list[float] = dataclasses.field(default_factory=list)
    cpu_with: list[float] = dataclasses.field(default_factory=list)
    delivery: Delivery | None = None
    exit_seconds: float = float('nan')
    shutdown: Shutdown | None = None
    # Other work on the machine (1-minute load average) when the run started.
    load_at_start: float = dataclasses.field(default_factory=lambda: _load())


def _load() -> float:
    return os.getloadavg()[0]


def _row(label: str, value: object, target: str = '', ok: bool | None = None) -> None:
    verdict = '' if ok is None else 'PASS' if ok else 'FAIL'
    print(_COLUMNS.line(label, value, target, verdict))


def _rates(rates: list[Rate]) -> str:
    return ' '.join(f'{rate.rate:.0f}' for rate in rates)


def _slash(values: list[Any]) -> str:
    return ' / '.join(str(value) for value in values)


def _shares(shares: list[float]) -> str:
    return _slash([f'{share:.0%}' for share in shares])


def report(results: Results, open_files: int) -> None:
    """Print the table: each measure, its target and PASS or FAIL."""
    args = results.args
    print(
        f'\nasgilook events, {machine()}; {args.subscribers} SSE subscribers '
        f'from {args.clients} client processes, 2 workers, '
        f'{args.rate:g} uploads/s for {args.upload_seconds:g}s, '
        f'wrk -t2 -c{args.connections} -d{args.seconds}s x{args.rounds}, '
        f'open files limit {open_files}; load average {results.load_at_start:.1f} '
        f'at the start, {_load():.1f} at the end'
    )
    _row('measure', 'value', 'target')
    assert results.delivery is not None
    _row('streams held by each worker', _slash(results.delivery.held()))
    _report_delivery(results.args.subscribers, results.delivery)
    kib = results.rss_per_subscriber_kib
    _row(
        'workers RSS per idle subscriber',
        f'{kib:.1f} KiB',
        f'< {RSS_PER_SUBSCRIBER_KIB} KiB',
        kib < RSS_PER_SUBSCRIBER_KIB,
    )
    _report_rates(results)
    _report_shutdown(results)


def _report_delivery(subscribers: int, delivery: Delivery) -> None:
    complete, uploads = delivery.complete(), len(delivery.arrived)
    _row(
        f'every event ({uploads} uploads), same order',
        f'{complete}/{subscribers} got {len(delivery.expected)}',
        'all',
        complete == subscribers and not delivery.unseen and not delivery.conflicts,
    )
    latencies = delivery.latencies()
    p50, p99 = percentiles(latencies)
    _row(f'201 to delivery p50 ({len(latencies)} deliveries)', milliseconds(p50))
    limit = LATENCY_P99_SECONDS
    _row(
        '201 to delivery p99',
        milliseconds(p99),
        f'< {milliseconds(limit)}',
        p99 < limit,
    )
    _row('201 to delivery max', milliseconds(max(latencies)))
    by_worker = [
        milliseconds(percentiles(delivery.latencies(worker))[1])
        for worker in range(len(delivery.worker_cpu))
    ]
    _row('201 to delivery p99 by worker', _slash(by_worker))
    first50, first99 = percentiles(delivery.firsts())
    _row(
        '201 to first delivery p50, p99',
        f'{milliseconds(first50)}, {milliseconds(first99)}',
    )
    lag_p99, lag_max = delivery.lags()
    _row(
        'clients: CPU each; loop lag p99, max',
        f'{_shares(delivery.client_cpu)}; {milliseconds(lag_p99)}, '
        f'{milliseconds(lag_max)}',
    )
    _row('workers: CPU each while uploading', _shares(delivery.worker_cpu))


def _report_rates(results: Results) -> None:
    best_without = max(rate.rate for rate in results.without)
    best_with = max(rate.rate for rate in results.with_idle)
    _row('cached thumbnail/s, no subscribers', _rates(results.without))
    _row('cached thumbnail/s, all idle subscribers', _rates(results.with_idle))
    cpu = [
        f'{min(found) * 1e6:.0f}' for found in (results.cpu_without, results.cpu_with)
    ]
    _row('workers CPU us/request (least), without / with', _slash(cpu))
    ratio = best_with / best_without
    _row(
        'ratio, best with / best without',
        f'{ratio:.2f}',
        f'>= {RATE_RATIO}',
        ratio >= RATE_RATIO,
    )


def _report_shutdown(results: Results) -> None:
    shutdown = results.shutdown
    assert shutdown is not None
    exited = results.exit_seconds
    _row(
        'SIGTERM to every process exited',
        f'{exited:.2f}s',
        f'< {EXIT_SECONDS:g}s',
        exited < EXIT_SECONDS,
    )
    streams = results.args.subscribers
    _row(
        f'streams ended (last at {shutdown.last_end_seconds:.2f}s)',
        f'{shutdown.ended}/{streams}, {shutdown.going_away} told going away',
        'all',
        shutdown.going_away == streams,
    )
