"""Reconcile the catalog with the files of the storage directory.

What asgilook changes itself is in the catalog the moment it is answered;
what is changed behind its back (files copied in or removed by hand, a
process killed between moving a file and committing its row, a storage
directory from a release before the catalog) is found by reading the whole
directory. That costs about a second per 100 000 files, so it is done:

- at start-up, only when the directory's time is not the one the catalog
  recorded at its last change (a file was added, removed or renamed since);
- on `python -m asgilook reindex`, always.

The directory, the catalog and the files named as images but not listed
(their JPEG frame must be the size their name says) are read in a
connection and a thread of the reindex's own, under no lock: uploads and
deletes go on meanwhile. What was found is then applied in transactions of
at most `reindex_batch` rows, each row checked again under the write lock:
a row is removed only if its file is still missing, a file listed (oldest
first) only if its id is still not and the file is still there. The
directory's time recorded at the end is the one read before the directory
was: what changed while it ran is looked for again at the next start.
Everything found is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import functools
import logging
import os
import pathlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple

from .. import blocking
from ..auth import signing
from ..config import Config
from ..errors import CatalogError, ServiceKeyError
from ..storage import files
from . import Catalog, Record
from . import sql as catalog_sql

logger = logging.getLogger('asgilook.reindex')

# Each of adopted, removed, ignored and redated is logged by name up to this many.
_LOGGED_BY_NAME = 20
# A row of temp.found or temp.adopted (six columns).
_Row = tuple[str, str, int, int, int, int] | tuple[str, int, int, int, int, str]
# What a reindex awaits after reading the directory and before each batch.
Pause = Callable[[], Awaitable[None]]
_T = TypeVar('_T')
_Ts = TypeVarTuple('_Ts')

# What the reindex's connection holds: the files named as images, the rows
# whose file was not found, the files of ids not listed, those to list.
_TABLES = """
CREATE TEMP TABLE found (name TEXT PRIMARY KEY, id TEXT, width INTEGER,
    height INTEGER, length INTEGER, modified_ns INTEGER);
CREATE TEMP TABLE missing (id TEXT PRIMARY KEY, name TEXT);
CREATE TEMP TABLE candidates (name TEXT, id TEXT, width INTEGER,
    height INTEGER, length INTEGER, modified_ns INTEGER);
CREATE TEMP TABLE adopted (id TEXT, width INTEGER, height INTEGER,
    length INTEGER, modified_ns INTEGER, name TEXT);
CREATE INDEX temp.adopted_in_order ON adopted (modified_ns, id);
"""


@dataclasses.dataclass
class Report:
    """What a reindex found: files adopted, ids removed, files ignored."""

    listed: int = 0
    # How many files were adopted, and the first few of them (oldest first).
    adopted: int = 0
    adopted_names: list[str] = dataclasses.field(default_factory=list)
    removed: list[str] = dataclasses.field(default_factory=list)
    ignored: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    # Files whose time the catalog cannot hold, and the date it gives them.
    redated: list[tuple[str, str]] = dataclasses.field(default_factory=list)

    def summary(self, directory: pathlib.Path) -> str:
        return (
            f'reindexed {directory}: {self.listed} images listed, '
            f'{self.adopted} files adopted, {len(self.removed)} rows of '
            f'missing files removed, {len(self.ignored)} files ignored'
        )


async def reindex(
    catalog: Catalog, force: bool = True, pause: Pause | None = None
) -> Report | None:
    """Reconcile the catalog with its directory; log and return what was found.

    Unless forced, only if the directory changed since the catalog recorded
    it (None otherwise: nothing was read). pause: awaited after the
    directory is read and before each batch is applied (a test's seam).
    """
    # Its tables made, if it is new, before another connection reads them.
    await catalog.open()
    async with _scanning(catalog.path, catalog.limits.write_wait) as scan:
        report = await _reconcile(catalog, scan, force, pause or _go_on)
    if report is not None:
        _log(catalog.directory, report)
    return report


def run(config: Config) -> int:
    """`python -m asgilook reindex`: reconcile the catalog now; the exit status."""
    directory = pathlib.Path(os.path.abspath(os.fspath(config.storage_path)))
    try:
        if not directory.is_dir():
            raise FileNotFoundError(errno.ENOENT, 'no such directory')
        asyncio.run(_run(directory, config))
    except (OSError, CatalogError, ServiceKeyError) as ex:
        logger.error(
            'cannot reindex %s: %s', directory, getattr(ex, 'strerror', None) or ex
        )
        return 1
    return 0


async def _run(directory: pathlib.Path, config: Config) -> Report | None:
    # What a start makes in the directory is made first: the next start
    # then finds the directory as this reindex recorded it.
    incoming = directory / files.TEMPORARY_DIRECTORY
    await blocking.run(blocking.FILES, _make_directory, incoming)
    catalog = Catalog(directory, config.catalog_limits)
    try:
        await catalog.open()
        if config.secret is None:
            # Made here, if this is the directory's first catalog, as a start
            # makes it: the next start finds the directory as it stays.
            await signing.kept_secret(catalog)
        report = await reindex(catalog)
    finally:
        await catalog.close()
        catalog.shutdown()
    return report


def _make_directory(path: pathlib.Path) -> None:
    os.makedirs(path, exist_ok=True)


async def _go_on() -> None:
    pass


class _Scan:
    """The reindex's own connection to the catalog, in a thread of its own.

    Its temporary tables hold what the reindex found: a reindex of a million
    files holds a batch of them at a time in memory.
    """

    def __init__(self, thread: ThreadPoolExecutor, reader: sqlite3.Connection) -> None:
        self._thread = thread
        self._reader = reader

    async def run(self, function: Callable[[sqlite3.Connection], _T]) -> _T:
        """Return function(reader), run in the reindex's thread."""
        return await _in_thread(self._thread, function, self._reader)


@contextlib.asynccontextmanager
async def _scanning(path: pathlib.Path, write_wait: float) -> AsyncIterator[_Scan]:
    """Connect to the catalog in a thread of the reindex's own, until the block ends."""
    thread = ThreadPoolExecutor(1, thread_name_prefix='asgilook-reindex')
    try:
        reader = await _in_thread(thread, _connect, path, write_wait)
        try:
            yield _Scan(thread, reader)
        finally:
            await _in_thread(thread, reader.close)
    finally:
        thread.shutdown(wait=False)


def _connect(path: pathlib.Path, write_wait: float) -> sqlite3.Connection:
    # Not made if it is gone meanwhile: the catalog says so (faults.py).
    reader = catalog_sql.connect(path, write_wait, create=False)
    reader.executescript(_TABLES)
    return reader


async def _in_thread(
    thread: ThreadPoolExecutor, function: Callable[[*_Ts], _T], *args: *_Ts
) -> _T:
    try:
        return await blocking.run(thread, function, *args)
    except sqlite3.Error as ex:
        raise CatalogError(str(ex)) from ex


async def _reconcile(
    catalog: Catalog, scan: _Scan, force: bool, pause: Pause
) -> Report | None:
    directory = catalog.directory
    batch = catalog.limits.reindex_batch
    scanned = await scan.run(functools.partial(_scan, directory, force, batch))
    if scanned is None:
        return None
    scanned_ns, report = scanned
    await pause()
    report.ignored += await scan.run(_compare)
    report.ignored += await scan.run(functools.partial(_choose, directory, batch))
    await _apply(catalog, scan, pause, report)
    report.listed = await catalog.locked(_count, scanned_ns)
    return report


def _scan(
    directory: pathlib.Path, force: bool, batch: int, reader: sqlite3.Connection
) -> tuple[int, Report] | None:
    """Read the directory into temp.found: its time before, and the strays.

    Unless forced, only if that time is not the one recorded (None).
    """
    scanned = catalog_sql.directory_time(directory)
    if not force and scanned == catalog_sql.setting(reader, 'directory_mtime_ns'):
        # Another worker reconciled it since this one opened the catalog.
        return None
    report, leftovers = read_directory(reader, directory, batch)
    if leftovers and catalog_sql.directory_time(directory) != scanned:
        # The leftovers it removed may have moved the directory's time: read
        # it again from there (they are of releases before 0.3: once).
        scanned = catalog_sql.directory_time(directory)
        reader.execute('DELETE FROM temp.found')
        report, _ = read_directory(reader, directory, batch)
    return scanned, report


def read_directory(
    reader: sqlite3.Connection, directory: pathlib.Path, batch: int
) -> tuple[Report, bool]:
    """Put the files named as images into temp.found; report the strays.

    And say whether leftovers of releases before 0.3 were met (and removed).
    """
    report = Report()
    leftovers = []
    with (
        catalog_sql.transaction(reader),
        _batches(reader, 'temp.found', batch) as found,
        os.scandir(directory) as items,
    ):
        for item in items:
            if item.name.startswith(files.TEMPORARY_PREFIX):
                leftovers.append(item.name)
                continue
            # A file removed while the directory is read is not listed.
            with contextlib.suppress(FileNotFoundError):
                record, reason = files.read_record(item)
                if record is not None:
                    found.append((item.name, *catalog_sql.row(record)))
                    if reason:
                        report.redated.append((item.name, reason))
                elif reason:
                    report.ignored.append((item.name, reason))
    # Temporary files of releases before 0.3, beside the images.
    report.ignored += files.clear_leftovers(directory, leftovers)
    return report, bool(leftovers)


class _Batches:
    """Rows put into one of the reindex's temporary tables a batch at a time."""

    def __init__(self, writer: sqlite3.Connection, table: str, size: int) -> None:
        self._writer = writer
        self._table = table
        self._size = size
        self._rows: list[_Row] = []

    def append(self, row: _Row) -> None:
        self._rows.append(row)
        if len(self._rows) >= self._size:
            self.flush()

    def flush(self) -> None:
        self._writer.executemany(
            f'INSERT INTO {self._table} VALUES (?, ?, ?, ?, ?, ?)', self._rows
        )
        self._rows = []


@contextlib.contextmanager
def _batches(writer: sqlite3.Connection, table: str, size: int) -> Iterator[_Batches]:
    """Put rows into a table in batches; the last one when the block ends."""
    batches = _Batches(writer, table, size)
    yield batches
    batches.flush()


def _compare(reader: sqlite3.Connection) -> list[tuple[str, str]]:
    """Find the rows whose file was not read, and the files of ids not listed.

    In one read of the catalog, into temp.missing and temp.candidates (an id
    whose row is missing its file is not listed). Return the files of ids
    listed under another name.
    """
    name = catalog_sql.file_name_sql('images')
    listed = (
        'SELECT 1 FROM images WHERE images.id = f.id AND NOT EXISTS '
        '(SELECT 1 FROM temp.missing AS m WHERE m.id = images.id)'
    )
    with catalog_sql.transaction(reader):
        reader.execute(
            f'INSERT INTO temp.missing SELECT id, {name} FROM images WHERE NOT '
            f'EXISTS (SELECT 1 FROM temp.found WHERE temp.found.name = {name})'
        )
        reader.execute(
            'INSERT INTO temp.candidates SELECT * FROM temp.found AS f '
            f'WHERE NOT EXISTS ({listed}) ORDER BY id, modified_ns DESC'
        )
        others = reader.execute(
            f'SELECT f.name FROM temp.found AS f WHERE EXISTS ({listed} '
            f'AND f.name != {name})'
        ).fetchall()
    return [(other, 'another file of this image is listed') for (other,) in others]


def _choose(
    directory: pathlib.Path, batch: int, reader: sqlite3.Connection
) -> list[tuple[str, str]]:
    """Put into temp.adopted the newest file of each new id whose content holds.

    Return the files passed over, and why.
    """
    ignored = []
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with (
            catalog_sql.transaction(reader),
            _batches(reader, 'temp.adopted', batch) as adopted,
        ):
            chosen = None
            for name, image_id, width, height, length, modified_ns in reader.execute(
                'SELECT * FROM temp.candidates ORDER BY rowid'
            ):
                if image_id == chosen:
                    ignored.append((name, 'a newer file has its id'))
                    continue
                record = Record(image_id, (width, height), length, modified_ns)
                reason = _check(descriptor, name, record)
                if reason:
                    ignored.append((name, reason))
                elif reason is not None:
                    chosen = image_id
                    adopted.append((*catalog_sql.row(record), name))
    finally:
        os.close(descriptor)
    return ignored


def _check(descriptor: int, name: str, record: Record) -> str | None:
    """Return why a file is not the JPEG its name says, '', or None if gone."""
    try:
        return files.check(descriptor, name, record)
    except FileNotFoundError:
        # Removed since the directory was read (deleted, say): passed over.
        return None
    except OSError as ex:
        return f'cannot be read: {ex.strerror}'


async def _apply(catalog: Catalog, scan: _Scan, pause: Pause, report: Report) -> None:
    """Remove the rows of temp.missing, then list temp.adopted, a batch at a time."""
    directory = catalog.directory
    batch = catalog.limits.reindex_batch
    after = ''
    while missing := await scan.run(functools.partial(_missing_after, after, batch)):
        await pause()
        report.removed += await catalog.locked(
            functools.partial(_remove, directory, missing)
        )
        after = missing[-1][0]
    # Times are from 1970 (files.read_record), ids are not empty.
    last = (-1, '')
    while rows := await scan.run(functools.partial(_adopted_after, last, batch)):
        await pause()
        adopted, others = await catalog.locked(
            functools.partial(_adopt, directory, rows)
        )
        report.adopted += len(adopted)
        room = _LOGGED_BY_NAME - len(report.adopted_names)
        report.adopted_names += [record.name for record in adopted[:room]]
        report.ignored += others
        last = rows[-1][4], rows[-1][0]


# A row of temp.adopted: a row of images and the file's name.
_Adopted = tuple[str, int, int, int, int, str]


def _missing_after(
    after: str, batch: int, reader: sqlite3.Connection
) -> list[tuple[str, str]]:
    return reader.execute(
        'SELECT id, name FROM temp.missing WHERE id > ? ORDER BY id LIMIT ?',
        (after, batch),
    ).fetchall()


def _adopted_after(
    after: tuple[int, str], batch: int, reader: sqlite3.Connection
) -> list[_Adopted]:
    return reader.execute(
        'SELECT * FROM temp.adopted WHERE (modified_ns, id) > (?, ?) '
        'ORDER BY modified_ns, id LIMIT ?',
        (*after, batch),
    ).fetchall()


def _remove(
    directory: pathlib.Path, rows: list[tuple[str, str]], writer: sqlite3.Connection
) -> list[str]:
    """Unlist the rows whose file is still missing; return their ids."""
    gone = []
    for image_id, name in rows:
        record = catalog_sql.find(writer, image_id)
        # Not if it changed since (deleted, stored again), nor if its file is
        # there now (an upload committed while the directory was read).
        if record is None or record.name != name:
            continue
        if not files.holds(directory, record):
            gone.append(image_id)
    catalog_sql.delete_rows(writer, gone)
    return gone


def _adopt(
    directory: pathlib.Path, rows: list[_Adopted], writer: sqlite3.Connection
) -> tuple[list[Record], list[tuple[str, str]]]:
    """List the files whose id is still not listed, if they are still there.

    Return their records, and the files of ids listed since under another name.
    """
    adopted = []
    others = []
    for image_id, width, height, length, modified_ns, name in rows:
        record = Record(image_id, (width, height), length, modified_ns)
        listed = catalog_sql.find(writer, image_id)
        if listed is None and files.holds(directory, record):
            adopted.append(record)
        elif listed is not None and listed.name != name:
            others.append((name, 'another file of this image is listed'))
    catalog_sql.insert_rows(writer, adopted)
    return adopted, others


def _count(writer: sqlite3.Connection) -> int:
    count: int = writer.execute('SELECT count(*) FROM images').fetchone()[0]
    return count


def _log(directory: pathlib.Path, report: Report) -> None:
    for name in report.adopted_names:
        logger.warning('listed %s found in %s', name, directory)
    for image_id in report.removed[:_LOGGED_BY_NAME]:
        logger.warning(
            'unlisted image %s: its file is gone from %s', image_id, directory
        )
    for name, reason in report.ignored[:_LOGGED_BY_NAME]:
        logger.warning('ignoring %s in %s: %s', name, directory, reason)
    for name, reason in report.redated[:_LOGGED_BY_NAME]:
        logger.warning('dating %s in %s: %s', name, directory, reason)
    found = report.adopted or report.removed or report.ignored
    logger.log(logging.WARNING if found else logging.INFO, report.summary(directory))
