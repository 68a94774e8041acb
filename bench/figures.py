"""What the benchmarks measure and print: rates, percentiles, best rounds, tables.

And the machine they ran on (CPU model, SIMD flags, cores).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

T = TypeVar('T')


@dataclasses.dataclass(frozen=True)
class Rate:
    """Requests (or calls) a second, and their latencies (s) where measured."""

    rate: float
    p50: float = math.nan
    p99: float = math.nan
    requests: int = 0


def percentiles(times: Sequence[float]) -> tuple[float, float]:
    """Return the median and the 99th percentile of times (interpolated)."""
    cuts = statistics.quantiles(times, n=100, method='inclusive')
    return statistics.median(times), cuts[98]


def best_of(
    measures: Sequence[Callable[[], T]], rounds: int, key: Callable[[T], float]
) -> list[T]:
    """Run the measures in turn, rounds times; return each one's best by key.

    The machine's speed drifts within a run; taking turns gives every side
    the same weather, and the best of each the same luck.
    """
    results: list[list[T]] = [[] for _ in measures]
    for _ in range(rounds):
        for measure, found in zip(measures, results, strict=True):
            found.append(measure())
    return [max(found, key=key) for found in results]


def ratio(ours: float, theirs: float) -> str:
    """ours / theirs to two decimals; '-' when theirs is nothing."""
    return f'{ours / theirs:.2f}' if theirs else '-'


def milliseconds(seconds: float) -> str:
    return f'{seconds * 1000:.1f}ms'


@dataclasses.dataclass(frozen=True)
class Columns:
    """The widths of a table's columns; the first `left` align left, the rest right.

    Cells past the last width follow as they are, after a space.
    """

    widths: tuple[int, ...]
    left: int = 1

    def line(self, *cells: object) -> str:
        parts = []
        for number, cell in enumerate(cells):
            if number >= len(self.widths):
                parts.append(str(cell))
            elif number < self.left:
                parts.append(f'{cell!s:<{self.widths[number]}}')
            else:
                parts.append(f'{cell!s:>{self.widths[number]}}')
        return ' '.join(parts)


def calls_per_second(call: Callable[[], object], seconds: float) -> float:
    """How often call runs a second, over at least `seconds`, after one warm-up."""
    call()  # Files in the page cache, lazy imports done.
    count = 0
    started = time.perf_counter()
    while True:
        call()
        count += 1
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return count / elapsed


def machine() -> str:
    """The CPU model, its SIMD flags and the core count, from /proc/cpuinfo."""
    model, flags = 'unknown CPU', set()
    with contextlib.suppress(OSError):
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            key, _, value = line.partition(':')
            if key.strip() == 'model name':
                model = value.strip()
            elif key.strip() == 'flags':
                flags = set(value.split())
    wanted = ('sse4_1', 'sse4_2', 'avx2', 'avx512f')
    shown = ' '.join(flag if flag in flags else f'no-{flag}' for flag in wanted)
    return f'{model}, {os.cpu_count()} cores, {shown}'
