"""What `bench.catalog_scale` measured of a server, and its tables and targets."""

from __future__ import annotations

import dataclasses
import os
import statistics
from collections.abc import Callable

from . import filling
from .figures import ratio

BASELINE = 20
TARGET_IMAGES = 1_000_000
STARTUP_TARGET_SECONDS = 2.0
PAGE_P50_TARGET_SECONDS = 0.005
PAGE_P99_TARGET_SECONDS = 0.020
RATE_TARGET_RATIO = 0.9
RSS_TARGET_MIB = 64


@dataclasses.dataclass
class Figures:
    """What one server over one storage directory measured."""

    images: int
    startups: list[float] = dataclasses.field(default_factory=list)
    reindexed_at_start: bool = False
    first: tuple[float, float, float] = (0.0, 0.0, 0.0)
    deep: tuple[float, float, float] = (0.0, 0.0, 0.0)
    steady_uploads: float = 0.0
    full: float = 0.0
    thumbnail: float = 0.0
    upload: float = 0.0
    rss: list[float] = dataclasses.field(default_factory=list)
    # The 20-image server's rates and RSS, measured alongside these.
    paired: dict[str, float] = dataclasses.field(default_factory=dict)

    @property
    def startup(self) -> float:
        return statistics.median(self.startups)


Measured = dict[int, tuple[Figures, list[Figures]]]
Check = tuple[str, bool]


def report(
    baseline_store: filling.Filled, stores: list[filling.Filled], measured: Measured
) -> int:
    """Print the tables and the targets; return how many targets failed."""
    print(f'\nFilling (hard links to {filling.SOURCES} JPEGs) and reindexing')
    print(f'{"images":>10} {"fill":>9} {"reindex":>9} {"catalog":>10}')
    for store in [baseline_store, *stores]:
        size = store.catalog_path.stat().st_size / 2**20
        cached = '  (kept from an earlier run)' if store.reused else ''
        print(
            f'{store.images:>10,} {store.fill_seconds:>8.2f}s '
            f'{store.reindex_seconds:>8.2f}s {size:>7.1f}MiB{cached}'
        )
    for workers, (baseline, results) in measured.items():
        _table(workers, baseline, results)
    failed = 0
    for workers, (_, results) in measured.items():
        failed += _targets(workers, results[-1])
    return failed


_ROWS: list[tuple[str, Callable[[Figures], float], str, str]] = [
    # label, value of figures, unit, format
    ('start-up to first answer', lambda f: f.startup, 's', '.3f'),
    ('first page of 100, p50', lambda f: f.first[0] * 1000, 'ms', '.2f'),
    ('first page of 100, p99', lambda f: f.first[1] * 1000, 'ms', '.2f'),
    ('deep page of 100, p50', lambda f: f.deep[0] * 1000, 'ms', '.2f'),
    ('deep page of 100, p99', lambda f: f.deep[1] * 1000, 'ms', '.2f'),
    ('pages from Redis (Hit)', lambda f: (f.first[2] + f.deep[2]) * 50, '%', '.0f'),
    ('uploads meanwhile', lambda f: f.steady_uploads, '/s', '.1f'),
    ('GET /images/{id}.jpeg', lambda f: f.full, '/s', '.0f'),
    ('cached thumbnail', lambda f: f.thumbnail, '/s', '.0f'),
    ('uploads (4 clients)', lambda f: f.upload, '/s', '.1f'),
    ('peak RSS, largest worker', lambda f: max(f.rss), 'MiB', '.1f'),
]
_PAIRED = {
    'GET /images/{id}.jpeg': 'full',
    'cached thumbnail': 'thumbnail',
    'uploads (4 clients)': 'upload',
    'peak RSS, largest worker': 'rss',
}


def _table(workers: int, baseline: Figures, results: list[Figures]) -> None:
    print(f'\n{workers} worker{"s" * (workers > 1)}, {os.cpu_count()} CPUs')
    head = f'{"":28} {f"{baseline.images:,}":>10}'
    for figures in results:
        head += f' {f"{figures.images:,}":>12} {"ratio":>6}'
    print(head)
    for row in _ROWS:
        for line in _row(row, baseline, results):
            print(line)
    for figures in [baseline, *results]:
        if figures.reindexed_at_start:
            print(f'NOTE: a start over {figures.images:,} images reindexed the store')


def _row(
    row: tuple[str, Callable[[Figures], float], str, str],
    baseline: Figures,
    results: list[Figures],
) -> list[str]:
    """A row of the table, and for a paired row the 20-image server's beside it."""
    label, value, unit, spec = row
    kind = _PAIRED.get(label)
    if kind is None:
        line = f'{label:28} {format(value(baseline), spec):>7}{unit:3}'
    else:
        # Against the 20-image server measured alongside each size.
        line = f'{label:28} {"":10}'
        alongside = f'{"  the 20-image server beside it":39}'
    for figures in results:
        ours = value(figures)
        theirs = value(baseline) if kind is None else figures.paired[kind]
        line += f' {format(ours, spec):>9}{unit:3} {ratio(ours, theirs):>6}'
        if kind is not None:
            alongside += f' {format(theirs, spec):>9}{unit:3} {"":6}'
    return [line] if kind is None else [line, alongside.rstrip()]


def _targets(workers: int, figures: Figures) -> int:
    at = f'{figures.images:,} images, {workers} worker{"s" * (workers > 1)}'
    if figures.images < TARGET_IMAGES:
        at += f' (the targets are for {TARGET_IMAGES:,})'
    print(f'\nTargets at {at}')
    checks = [
        (
            f'start-up {figures.startup:.3f} s < {STARTUP_TARGET_SECONDS} s',
            figures.startup < STARTUP_TARGET_SECONDS,
        ),
        *_page_checks(figures),
        *_rate_checks(figures),
        *_rss_checks(figures),
    ]
    for text, passed in checks:
        print(f'  {"PASS" if passed else "FAIL"}  {text}')
    return sum(not passed for _, passed in checks)


def _page_checks(figures: Figures) -> list[Check]:
    checks = []
    for name, (p50, p99, _) in (('first', figures.first), ('deep', figures.deep)):
        checks += [
            (
                f'{name} page p50 {p50 * 1000:.2f} ms < '
                f'{PAGE_P50_TARGET_SECONDS * 1000:g} ms',
                p50 < PAGE_P50_TARGET_SECONDS,
            ),
            (
                f'{name} page p99 {p99 * 1000:.2f} ms < '
                f'{PAGE_P99_TARGET_SECONDS * 1000:g} ms',
                p99 < PAGE_P99_TARGET_SECONDS,
            ),
        ]
    return checks


def _rate_checks(figures: Figures) -> list[Check]:
    checks = []
    for label, kind in (('full image', 'full'), ('cached thumbnail', 'thumbnail')):
        share = getattr(figures, kind) / figures.paired[kind]
        checks.append(
            (
                f'{label} rate {share:.2f} of the 20-image store >= '
                f'{RATE_TARGET_RATIO}',
                share >= RATE_TARGET_RATIO,
            )
        )
    return checks


def _rss_checks(figures: Figures) -> list[Check]:
    limit = figures.paired['rss'] + RSS_TARGET_MIB
    return [
        (
            f'RSS of worker {number + 1} {rss:.1f} MiB <= {limit:.1f} MiB '
            f'(20-image store + {RSS_TARGET_MIB})',
            rss <= limit,
        )
        for number, rss in enumerate(figures.rss)
    ]
