"""What a reindex reads: the directory's files, compared with the catalog, apart."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple

from .. import blocking
from ..errors import CatalogError
from ..storage import files
from . import connections
from . import record as records
from . import sql as catalog_sql
from .record import Record, read_record

# A row of temp.found or temp.adopted (six columns).
_Row = tuple[str, str, int, int, int, int] | tuple[str, int, int, int, int, str]
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


class Scan:
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
async def scanning(path: pathlib.Path, write_wait: float) -> AsyncIterator[Scan]:
    """Connect to the catalog in a thread of the reindex's own, until the block ends."""
    thread = ThreadPoolExecutor(1, thread_name_prefix='asgilook-reindex')
    try:
        reader = await _in_thread(thread, _connect, path, write_wait)
        try:
            yield Scan(thread, reader)
        finally:
            await _in_thread(thread, reader.close)
    finally:
        thread.shutdown(wait=False)


def _connect(path: pathlib.Path, write_wait: float) -> sqlite3.Connection:
    # Not made if it is gone meanwhile: the catalog says so (faults.py).
    reader = connections.connect(path, write_wait, create=False)
    reader.executescript(_TABLES)
    return reader


async def _in_thread(
    thread: ThreadPoolExecutor, function: Callable[[*_Ts], _T], *args: *_Ts
) -> _T:
    try:
        return await blocking.run(thread, function, *args)
    except sqlite3.Error as ex:
        raise CatalogError(str(ex)) from ex


def read_if_changed(
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
        connections.transaction(reader),
        _batches(reader, 'temp.found', batch) as found,
        os.scandir(directory) as items,
    ):
        for item in items:
            if item.name.startswith(files.TEMPORARY_PREFIX):
                leftovers.append(item.name)
                continue
            # A file removed while the directory is read is not listed.
            with contextlib.suppress(FileNotFoundError):
                record, reason = read_record(item)
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


def compare(reader: sqlite3.Connection) -> list[tuple[str, str]]:
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
    with connections.transaction(reader):
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


def choose(
    directory: pathlib.Path, batch: int, reader: sqlite3.Connection
) -> list[tuple[str, str]]:
    """Put into temp.adopted the newest file of each new id whose content holds.

    Return the files passed over, and why.
    """
    ignored = []
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with (
            connections.transaction(reader),
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
        return records.check_jpeg(descriptor, name, record)
    except FileNotFoundError:
        # Removed since the directory was read (deleted, say): passed over.
        return None
    except OSError as ex:
        return f'cannot be read: {ex.strerror}'
