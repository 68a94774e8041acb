"""Reconcile the catalog with the files of the storage directory.

What asgilook changes itself is in the catalog the moment it is answered;
what is changed behind its back (files copied in or removed by hand, a
process killed between moving a file and committing its row, a storage
directory from a release before the catalog) is found by reading the whole
directory. That costs about a second per 100 000 files, so it is done:

- at start-up, only when the directory's time is not the one the catalog
  recorded at its last change (a file was added, removed or renamed since);
- on `python -m asgilook reindex`, always.

It runs under the catalog's write lock (changes by other workers wait for
it). Files named as images but not listed are checked (their JPEG frame
must be the size their name says) and listed, oldest first; rows whose file
is gone are removed; everything found is logged.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import os
import pathlib
import sqlite3
from collections.abc import Iterator

from . import blocking, files, signing
from .catalog import Catalog, Record
from .catalog import sql as catalog_sql
from .config import Config
from .errors import CatalogError, ServiceKeyError

logger = logging.getLogger(__name__)

# Each of adopted, removed, ignored and redated is logged by name up to this many.
_LOGGED_BY_NAME = 20
# A row of the reindex's temporary tables (six columns).
_Row = tuple[str, str, int, int, int, int] | tuple[str, int, int, int, int, str]


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


async def reindex(catalog: Catalog, force: bool = True) -> Report | None:
    """Reconcile the catalog with its directory; log and return what was found.

    Unless forced, only if the directory changed since the catalog recorded
    it (None otherwise: nothing was read).
    """
    batch = catalog.limits.reindex_batch
    report = await catalog.locked(
        lambda writer: _reconcile(writer, catalog.directory, force, batch)
    )
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


def _reconcile(
    writer: sqlite3.Connection, directory: pathlib.Path, force: bool, batch: int
) -> Report | None:
    recorded = writer.execute(
        "SELECT value FROM settings WHERE name = 'directory_mtime_ns'"
    ).fetchone()
    if (
        not force
        and recorded is not None
        and recorded[0] == catalog_sql.directory_time(directory)
    ):
        # Another worker reconciled it while this one waited for the lock.
        return None
    writer.execute(
        'CREATE TEMP TABLE IF NOT EXISTS found (name TEXT PRIMARY KEY, id TEXT, '
        'width INTEGER, height INTEGER, length INTEGER, modified_ns INTEGER)'
    )
    writer.execute('DELETE FROM temp.found')
    try:
        report = Report()
        report.ignored, report.redated = _read_directory(writer, directory, batch)
        _remove_missing(writer, report)
        _adopt_new(writer, directory, report, batch)
        report.listed = writer.execute('SELECT count(*) FROM images').fetchone()[0]
    finally:
        writer.execute('DELETE FROM temp.found')
    return report


def _read_directory(
    writer: sqlite3.Connection, directory: pathlib.Path, batch: int
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Put the files named as images into temp.found; return the strays.

    And the files whose time the catalog cannot hold, and the date they get.
    """
    strays = []
    redated = []
    leftovers = []
    with _batches(writer, 'temp.found', batch) as found, os.scandir(directory) as items:
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
                        redated.append((item.name, reason))
                elif reason:
                    strays.append((item.name, reason))
    # Temporary files of releases before 0.3, beside the images.
    strays += files.clear_leftovers(directory, leftovers)
    return strays, redated


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


def _remove_missing(writer: sqlite3.Connection, report: Report) -> None:
    rows = writer.execute(
        'SELECT id FROM images WHERE NOT EXISTS (SELECT 1 FROM temp.found '
        f'WHERE name = {catalog_sql.file_name_sql("images")})'
    )
    report.removed = [image_id for (image_id,) in rows]
    catalog_sql.delete_rows(writer, report.removed)


def _adopt_new(
    writer: sqlite3.Connection, directory: pathlib.Path, report: Report, batch: int
) -> None:
    """List the files no row names, once their content holds; oldest first.

    Of files with one id, the newest whose content holds is listed. The
    files are read in a stream and what holds waits in temp.adopted: a
    reindex of a million files holds a batch of them at a time.
    """
    writer.execute(
        'CREATE TEMP TABLE IF NOT EXISTS adopted (id TEXT, width INTEGER, '
        'height INTEGER, length INTEGER, modified_ns INTEGER, name TEXT)'
    )
    writer.execute('DELETE FROM temp.adopted')
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with _batches(writer, 'temp.adopted', batch) as adopted:
            _choose(writer, descriptor, report, adopted)
    finally:
        os.close(descriptor)
    for (name,) in writer.execute(
        'SELECT f.name FROM temp.found AS f JOIN images AS i ON i.id = f.id '
        f'WHERE f.name != {catalog_sql.file_name_sql("i")}'
    ):
        report.ignored.append((name, 'another file of this image is listed'))
    _list_adopted(writer, report)


def _choose(
    writer: sqlite3.Connection, descriptor: int, report: Report, adopted: _Batches
) -> None:
    """Put into adopted the newest file of each new id whose content holds."""
    candidates = writer.execute(
        'SELECT name, id, width, height, length, modified_ns FROM temp.found AS f '
        'WHERE NOT EXISTS (SELECT 1 FROM images AS i WHERE i.id = f.id) '
        'ORDER BY id, modified_ns DESC'
    )
    chosen = None
    for name, image_id, width, height, length, modified_ns in candidates:
        if image_id == chosen:
            report.ignored.append((name, 'a newer file has its id'))
            continue
        record = Record(image_id, (width, height), length, modified_ns)
        reason = _check(descriptor, name, record)
        if reason:
            report.ignored.append((name, reason))
            continue
        chosen = image_id
        adopted.append((*catalog_sql.row(record), name))


def _list_adopted(writer: sqlite3.Connection, report: Report) -> None:
    """List the files of temp.adopted, and name the first few in the report."""
    report.adopted = catalog_sql.insert_table(writer, 'temp.adopted')
    report.adopted_names = [
        name
        for (name,) in writer.execute(
            'SELECT name FROM temp.adopted ORDER BY modified_ns, id LIMIT ?',
            (_LOGGED_BY_NAME,),
        )
    ]
    writer.execute('DELETE FROM temp.adopted')


def _check(descriptor: int, name: str, record: Record) -> str:
    try:
        return files.check(descriptor, name, record)
    except OSError as ex:
        return f'cannot be read: {ex.strerror}'


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
