"""Tallies: the counts of every answer and cache lookup, as plain numbers.

Counted on every request, the fast path's Hit included: a prometheus_client
counter and histogram took 2.4 microseconds an answer (4.7 when workers
share their values through files), 5-10% of a cached thumbnail's time; a
tally takes a few additions. They become Prometheus metrics when scraped
(families), and are added up across workers from a file each (shared.py).
"""

from __future__ import annotations

import bisect
import collections
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.utils import floatToGoString

# The methods that get a label of their own; any other is counted as OTHER,
# so that a client sending made-up methods makes no new series.
METHODS = frozenset(
    {'GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'CONNECT', 'TRACE'}
)
OTHER = 'OTHER'
# Seconds: a cached answer takes well under a millisecond, a cold render tens.
DURATION_BUCKETS = (
    *(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05),
    *(0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

REQUESTS = (
    'asgilook_http_requests',
    'HTTP requests answered, by route (URI template), method and status',
)
DURATIONS = (
    'asgilook_http_request_duration_seconds',
    'Time from a request to its answer, by route (URI template)',
)
LOOKUPS = (
    'asgilook_cache_lookups',
    'Answers looked up in a tier of the cache (memory, flight, redis)',
)

# What tallies hold, as a file keeps them (JSON): the answers, each
# [route, method, status, count, seconds, buckets], and the lookups, each
# [tier, result, count].
Snapshot = dict[str, list[list[Any]]]


class Answered:
    """The answers of one route, method and status: how many, how long."""

    __slots__ = ('buckets', 'count', 'seconds')

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        # One per bound of DURATION_BUCKETS, and one past the last (+Inf).
        self.buckets = [0] * (len(DURATION_BUCKETS) + 1)


class Tallies:
    """What one worker answered and looked up, since it started."""

    def __init__(self) -> None:
        self._answers: dict[tuple[str, str, int], Answered] = {}
        self._lookups: collections.Counter[tuple[str, bool]] = collections.Counter()

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count an answer of a route (its URI template) and how long it took."""
        tally = self._answers.get((route, method, status))
        if tally is None:
            tally = self._answered(route, method, status)
        tally.count += 1
        tally.seconds += seconds
        tally.buckets[bisect.bisect_left(DURATION_BUCKETS, seconds)] += 1

    def _answered(self, route: str, method: str, status: int) -> Answered:
        key = (route, method if method in METHODS else OTHER, status)
        tally = self._answers.get(key)
        if tally is None:
            tally = self._answers[key] = Answered()
        return tally

    def looked_up(self, tier: str, hit: bool) -> None:
        """Count a lookup of a tier of the cache."""
        self._lookups[tier, hit] += 1

    def snapshot(self) -> Snapshot:
        """Return the tallies as they are now, as plain lists."""
        return {
            'answers': [
                [*key, tally.count, tally.seconds, list(tally.buckets)]
                for key, tally in self._answers.items()
            ],
            'lookups': [
                [tier, 'hit' if hit else 'miss', count]
                for (tier, hit), count in self._lookups.items()
            ],
        }


def families(snapshots: Iterable[Snapshot]) -> Iterator[Metric]:
    """The Prometheus metrics of tallies, those of every worker added up."""
    requests: collections.Counter[tuple[str, str, str]] = collections.Counter()
    seconds: collections.Counter[str] = collections.Counter()
    buckets: dict[str, list[int]] = {}
    lookups: collections.Counter[tuple[str, str]] = collections.Counter()
    for snapshot in snapshots:
        for route, method, status, count, spent, counts in snapshot['answers']:
            requests[route, method, str(status)] += count
            seconds[route] += spent
            added = buckets.setdefault(route, [0] * len(counts))
            added[:] = map(sum, zip(added, counts, strict=True))
        for tier, result, count in snapshot['lookups']:
            lookups[tier, result] += count
    answers = CounterMetricFamily(*REQUESTS, labels=['route', 'method', 'status'])
    for answer, count in sorted(requests.items()):
        answers.add_metric(answer, count)
    yield answers
    durations = HistogramMetricFamily(*DURATIONS, labels=['route'])
    for route, counts in sorted(buckets.items()):
        durations.add_metric([route], _cumulative(counts), seconds[route])
    yield durations
    tiers = CounterMetricFamily(*LOOKUPS, labels=['tier', 'result'])
    for lookup, count in sorted(lookups.items()):
        tiers.add_metric(lookup, count)
    yield tiers


def _cumulative(counts: list[int]) -> list[tuple[str, float]]:
    """A histogram's buckets as Prometheus has them: each counts those below it."""
    bounds = [*map(floatToGoString, DURATION_BUCKETS), '+Inf']
    below = 0
    cumulative: list[tuple[str, float]] = []
    for bound, count in zip(bounds, counts, strict=True):
        below += count
        cumulative.append((bound, below))
    return cumulative
