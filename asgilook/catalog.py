"""The catalog: which complete images the storage directory holds, in SQLite.

Image bytes are files of the storage directory, named after what the
catalog needs to know (`{id}.{width}x{height}.{bytes}.jpeg`); the catalog
is a SQLite database beside them (`.catalog/catalog.sqlite3`, in WAL mode),
shared by every worker process of the host:

- `images`: one row per listed image, numbered (`seq`) in the order the
  uploads were committed: the order of the list and of its pages;
- `changes`: the change log, one row per image added or removed, numbered
  across the service; its last number is the catalog's version;
- `settings`: the digest of what the catalog lists (its version: the XOR of
  a hash of each entry, moved by each change), and the storage directory's
  time as the catalog last left it.

A change is one transaction that also moves the file: an upload's file is
renamed into place, a deleted image's file out of the way (to `.incoming/`),
inside the transaction that adds or removes its row, under SQLite's write
lock. Whatever process dies wherever, a file is served only if its row is
committed, and a listed row lost its file only if the directory's time moved
after the catalog recorded it, which the next start notices (and then reads
the whole directory: see reindex.py).

Other workers learn of a change from SQLite's `PRAGMA data_version`, a read
of shared memory (see `token`). Reads and writes run in one thread each, off
the event loop.

A server database for several hosts would implement the same methods (see
the README's storage section).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import enum
import hashlib
import itertools
import logging
import mmap
import os
import pathlib
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from . import files
from .errors import CatalogError, CatalogFullError
from .files import Entry, file_name

__all__ = [
    'Catalog',
    'CatalogError',
    'CatalogFullError',
    'Entry',
    'Page',
    'Removal',
    'file_name',
]

logger = logging.getLogger(__name__)

CATALOG_DIRECTORY = '.catalog'
DATABASE_NAME = 'catalog.sqlite3'
# The change log keeps at least this many of the last changes.
RETAINED_CHANGES = 100_000
# How long a write waits for another process's write (a reindex, say).
WRITE_WAIT_SECONDS = 60.0
# Entries of images remembered between changes, by id.
REMEMBERED_ENTRIES = 10_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    length INTEGER NOT NULL,
    modified_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('created', 'deleted')),
    image_id TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value NOT NULL
) WITHOUT ROWID;
"""
_COLUMNS = 'id, width, height, length, modified_ns'


def file_name_sql(table: str) -> str:
    """Return the SQL of the file name of a row of table, as file_name() makes it."""
    return (
        f"{table}.id || '.' || {table}.width || 'x' || {table}.height || '.' "
        f"|| {table}.length || '.jpeg'"
    )


_T = TypeVar('_T')

# Moves whenever another connection commits a change (SQLite's own counter).
_DATA_VERSION = 'PRAGMA data_version'
# The WAL index of the database (shared memory of every connection), and the
# size of the first copy of its header, which every commit rewrites (it holds
# a counter of transactions: https://www.sqlite.org/walformat.html).
_SHM_SUFFIX = '-shm'
_WAL_INDEX_HEADER = 48

# Each opening of the catalog gives its tokens a prefix of its own: what was
# kept under one never passes for current under another.
_epochs = itertools.count(1)


class Removal(enum.Enum):
    """What removing an image found."""

    REMOVED = 'removed'
    # Its file was gone: only its row was removed.
    FILE_GONE = 'file gone'
    NOT_LISTED = 'not listed'


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of the catalog, and the seq after which the next one starts."""

    entries: list[Entry]
    next_after: int | None


class Catalog:
    """Know which images the storage directory holds, and change it with them.

    Every method but `token` runs its SQL in a thread. sqlite3's errors are
    raised as CatalogError, except OSError of the file operations, which are
    raised as they are (a full disk, a read-only one).
    """

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self.incoming = directory / files.TEMPORARY_DIRECTORY
        self.path = directory / CATALOG_DIRECTORY / DATABASE_NAME
        self._reads = ThreadPoolExecutor(1, thread_name_prefix='asgilook-catalog')
        self._writes = ThreadPoolExecutor(1, thread_name_prefix='asgilook-changes')
        self._reader: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        # Asked on the event loop at every request (see token()).
        self._watch: sqlite3.Connection | None = None
        self._opening = asyncio.Lock()
        self._inode = 0
        self._epoch = b''
        self._wal_index: mmap.mmap | None = None
        # Entries (None: no such image) and the version, as of _known_token.
        self._known: dict[str, Entry | None] = {}
        self._known_version: str | None = None
        self._known_token: bytes | None = None

    # -- opening and closing

    async def open(self) -> bool:
        """Connect to the catalog, making it if there is none.

        Return whether the storage directory changed since the catalog last
        recorded it (or the catalog is new): then it must be reindexed.
        """
        async with self._opening:
            if self._watch is not None:
                # Open since an earlier start of this store, in this process.
                return False
            self._writer = await self._run_write(self._connect)
            self._reader = await self._run_read(self._connect)
            changed = await self._run_write(self._prepare)
            self._inode = await self._run_read(lambda: os.stat(self.path).st_ino)
            watch = await self._run_read(self._connect, False)
            self._wal_index = await self._run_read(self._map_wal_index, watch)
            self._epoch = next(_epochs).to_bytes(8, 'little')
            # Last: a call that finds it set finds the catalog ready.
            self._watch = watch
            return changed

    async def close(self) -> None:
        """Disconnect (the next call connects again); let the threads go."""
        async with self._opening:
            watch, self._watch = self._watch, None
            wal_index, self._wal_index = self._wal_index, None
            if wal_index is not None:
                wal_index.close()
            if watch is not None:
                reader, writer = self._reader, self._writer
                self._reader = self._writer = None
                await self._run_read(reader.close)
                await self._run_write(writer.close)
                await self._run_read(watch.close)
            self._known.clear()
            self._known_token = None

    def shutdown(self) -> None:
        self._reads.shutdown(wait=False)
        self._writes.shutdown(wait=False)

    def _connect(self, check_same_thread: bool = True) -> sqlite3.Connection:
        self.path.parent.mkdir(exist_ok=True)
        connection = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=check_same_thread,
            timeout=WRITE_WAIT_SECONDS,
        )
        try:
            _use_wal(connection)
            # Committed before the 201 or 204 is sent: on disk, not only in
            # the operating system's memory.
            connection.execute('PRAGMA synchronous = FULL')
        except BaseException:
            connection.close()
            raise
        return connection

    def _prepare(self) -> bool:
        """Make the tables if there are none; return whether to reindex."""
        writer = self._writer
        with _transaction(writer):
            for statement in _SCHEMA.split(';')[:-1]:
                writer.execute(statement)
            recorded = _setting(writer, 'directory_mtime_ns')
            return recorded != os.stat(self.directory).st_mtime_ns

    # -- what the catalog holds

    def token(self) -> bytes | None:
        """Return bytes that change whenever any process changes the catalog.

        Asked on the event loop before every answer kept in memory is sent,
        so it must cost next to nothing: the header of SQLite's WAL index,
        read from this process's map of it (the `-shm` file, whose blocks
        SQLite allocates before mapping it: no SIGBUS on a full disk). Every
        commit of every connection rewrites it before the commit returns. The
        map stays valid while this process holds its connections: SQLite
        resets the file only when it opens the database first. Where it
        cannot be mapped, SQLite's `data_version` of a connection of this
        process says the same at a few microseconds a call. None when the
        catalog is not open (or cannot be read): nothing may be kept.
        """
        wal_index = self._wal_index
        if wal_index is not None:
            return self._epoch + wal_index[:_WAL_INDEX_HEADER]
        watch = self._watch
        if watch is None:
            return None
        try:
            version = watch.execute(_DATA_VERSION).fetchone()[0]
        except sqlite3.Error:
            return None
        return self._epoch + version.to_bytes(8, 'little')

    def _map_wal_index(self, watch: sqlite3.Connection) -> mmap.mmap | None:
        # A read of the database makes the file, if no connection has yet.
        watch.execute('SELECT count(*) FROM sqlite_master').fetchone()
        try:
            with open(f'{self.path}{_SHM_SUFFIX}', 'rb') as shm:
                return mmap.mmap(shm.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return None

    async def get(self, image_id: str) -> Entry | None:
        """Return the entry of an image, or None if the catalog lists none."""
        self._remembering()
        known = self._known
        if image_id in known:
            return known[image_id]
        entry = await self._read(self._select_entry, image_id)
        # Into the dict of the token read before: if a change came since,
        # the next call finds another token and starts a new dict.
        if len(known) >= REMEMBERED_ENTRIES:
            known.clear()
        known[image_id] = entry
        return entry

    async def version(self) -> str:
        """Return what the list shows, as a string that moves with every change."""
        token = self._remembering()
        version = self._known_version
        if version is None:
            version = await self._read(self._select_version)
            # Kept only if no change came meanwhile (nor is one unknowable).
            if token is not None and token == self.token():
                self._known_version = version
        return version

    async def listing(self) -> tuple[list[Entry], str]:
        """Return every image in upload order, and the version, of one moment."""
        return await self._read(self._select_all)

    async def page(self, after: int, limit: int) -> Page:
        """Return up to limit images that follow seq after, in upload order."""
        return await self._read(self._select_page, after, limit)

    def _remembering(self) -> bytes | None:
        token = self.token()
        if token != self._known_token or token is None:
            self._known = {}
            self._known_version = None
            self._known_token = token
        return token

    def _select_entry(self, image_id: str) -> Entry | None:
        return _find(self._reader, image_id)

    def _select_version(self) -> str:
        self._check_file()
        return _version(self._reader)

    def _select_all(self) -> tuple[list[Entry], str]:
        self._check_file()
        reader = self._reader
        with _transaction(reader, 'BEGIN'):
            version = _version(reader)
            rows = reader.execute(f'SELECT {_COLUMNS} FROM images ORDER BY seq')
            return [_entry(row) for row in rows], version

    def _select_page(self, after: int, limit: int) -> Page:
        self._check_file()
        rows = self._reader.execute(
            f'SELECT {_COLUMNS}, seq FROM images WHERE seq > ? ORDER BY seq LIMIT ?',
            (after, limit + 1),
        ).fetchall()
        entries = [_entry(row) for row in rows[:limit]]
        return Page(entries, rows[limit - 1][5] if len(rows) > limit else None)

    def _check_file(self) -> None:
        """Raise CatalogError if the database file is no longer the one open.

        Removed with its directory, say: what the open file still says is
        no longer the storage's.
        """
        try:
            inode = os.stat(self.path).st_ino
        except OSError as ex:
            gone = f'the catalog is gone: {ex.strerror}'
            raise sqlite3.OperationalError(gone) from ex
        if inode != self._inode:
            raise sqlite3.OperationalError(f'{self.path} was replaced')

    # -- changes

    async def add(
        self, image_id: str, size: tuple[int, int], length: int, temporary: pathlib.Path
    ) -> tuple[Entry, Entry | None]:
        """List a new image, renaming its written file into place.

        The image is dated now, in the order of the commits. Return its entry
        and that of the image it replaced (an id stored again), whose file
        is then removed.
        """
        entry, replaced = await self._write(
            self._insert, image_id, size, length, temporary
        )
        if replaced is not None and self._file(replaced) != self._file(entry):
            with contextlib.suppress(OSError):
                await self._run_write(os.remove, self._file(replaced))
        return entry, replaced

    async def remove(self, image_id: str, trash: pathlib.Path) -> Removal:
        """Unlist an image and remove its file (moved to trash, then removed).

        An image whose file is gone (removed by hand) is unlisted all the same.
        """
        return await self._write(self._delete, image_id, trash)

    def _insert(
        self, image_id: str, size: tuple[int, int], length: int, temporary: pathlib.Path
    ) -> tuple[Entry, Entry | None]:
        writer = self._writer
        with _transaction(writer, 'BEGIN IMMEDIATE'):
            replaced = _find(writer, image_id)
            if replaced is not None:
                delete_rows(writer, [image_id])
            before = os.stat(self.directory).st_mtime_ns
            # Dated inside the lock: the dates follow the order of the list.
            entry = Entry(image_id, size, length, time.time_ns())
            os.utime(temporary, ns=(entry.modified_ns, entry.modified_ns))
            insert_rows(writer, [entry])
            path = self._file(entry)
            os.replace(temporary, path)
            self._commit_moved(writer, before, path, temporary)
        return entry, replaced

    def _delete(self, image_id: str, trash: pathlib.Path) -> Removal:
        writer = self._writer
        with _transaction(writer, 'BEGIN IMMEDIATE'):
            listed = _find(writer, image_id)
            if listed is None:
                return Removal.NOT_LISTED
            delete_rows(writer, [image_id])
            path = self._file(listed)
            before = os.stat(self.directory).st_mtime_ns
            try:
                os.replace(path, trash)
            except FileNotFoundError:
                # Removed by hand: the row goes too.
                self._record_directory(writer, before)
                return Removal.FILE_GONE
            self._commit_moved(writer, before, trash, path)
        with contextlib.suppress(OSError):
            os.remove(trash)
        return Removal.REMOVED

    def _commit_moved(
        self,
        writer: sqlite3.Connection,
        before: int,
        moved: pathlib.Path,
        origin: pathlib.Path,
    ) -> None:
        """Commit a change whose file was moved from origin; move it back if not."""
        try:
            self._record_directory(writer, before)
            writer.execute('COMMIT')
        except BaseException:
            os.replace(moved, origin)
            raise

    def _record_directory(
        self, writer: sqlite3.Connection, before: int | None = None
    ) -> None:
        """Record the directory's time as this change leaves it.

        before: the directory's time before this change's own move of a file.
        If it is not the time recorded, something else changed the directory
        since (a file copied in or removed by hand, a process that died between
        its move and its commit): the old time stays, and the next start
        reindexes. Without it (a reindex), the time is recorded.
        """
        recorded = _setting(writer, 'directory_mtime_ns')
        if before is None or before == recorded:
            _set(writer, 'directory_mtime_ns', os.stat(self.directory).st_mtime_ns)
        _trim_changes(writer)

    def _file(self, entry: Entry) -> pathlib.Path:
        return self.directory / file_name(*_named(entry))

    # -- threads

    async def _read(self, function: Callable[..., _T], *args: Any) -> _T:
        await self._connected()
        return await self._run_read(function, *args)

    async def _write(self, function: Callable[..., _T], *args: Any) -> _T:
        await self._connected()
        return await self._run_write(function, *args)

    async def _connected(self) -> None:
        if self._watch is None:
            await self.open()

    async def _run_read(self, function: Callable[..., _T], *args: Any) -> _T:
        return await _run(self._reads, function, *args)

    async def _run_write(self, function: Callable[..., _T], *args: Any) -> _T:
        return await _run(self._writes, function, *args)

    # For reindex.py: SQL in the write thread, under the write lock.

    async def locked(
        self, function: Callable[[sqlite3.Connection], _T | None]
    ) -> _T | None:
        """Run function(connection) under the write lock, in one transaction.

        What it changed is committed, with the directory's time, if it returns
        something; if it returns None, nothing is written.
        """
        await self._connected()

        def run() -> _T | None:
            writer = self._writer
            with _transaction(writer, 'BEGIN IMMEDIATE'):
                result = function(writer)
                if result is None:
                    writer.execute('ROLLBACK')
                else:
                    self._record_directory(writer)
            return result

        return await self._run_write(run)


def _use_wal(connection: sqlite3.Connection) -> None:
    """Put the database in WAL mode (kept in the file: once is enough).

    Switching takes the database for a moment, and SQLite does not wait for
    that: workers opening a new catalog together take turns here.
    """
    deadline = time.monotonic() + WRITE_WAIT_SECONDS
    while True:
        try:
            if connection.execute('PRAGMA journal_mode').fetchone()[0] != 'wal':
                connection.execute('PRAGMA journal_mode = WAL')
            return
        except sqlite3.OperationalError as ex:
            busy = getattr(ex, 'sqlite_errorcode', 0) & 0xFF == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


async def _run(executor: ThreadPoolExecutor, function: Callable[..., _T], *args) -> _T:
    loop = asyncio.get_running_loop()
    try:
        return await loop.run_in_executor(executor, function, *args)
    except sqlite3.Error as ex:
        full = getattr(ex, 'sqlite_errorcode', 0) & 0xFF == sqlite3.SQLITE_FULL
        raise (CatalogFullError if full else CatalogError)(str(ex)) from ex


@contextlib.contextmanager
def _transaction(connection: sqlite3.Connection, begin: str = 'BEGIN'):
    """Run a block in a transaction: committed at its end, unless it did."""
    connection.execute(begin)
    try:
        yield
        if connection.in_transaction:
            connection.execute('COMMIT')
    except BaseException:
        if connection.in_transaction:
            connection.execute('ROLLBACK')
        raise


def insert_rows(writer: sqlite3.Connection, entries: list[Entry]) -> None:
    """List entries (in this order) and log their creation; inside a transaction."""
    _move_digest(writer, entries)
    writer.executemany(
        f'INSERT INTO images ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)',
        [(e.image_id, e.size[0], e.size[1], e.length, e.modified_ns) for e in entries],
    )
    writer.executemany(
        "INSERT INTO changes (kind, image_id) VALUES ('created', ?)",
        [(entry.image_id,) for entry in entries],
    )


def insert_table(writer: sqlite3.Connection, table: str) -> int:
    """List the entries of a table with the columns of images, oldest first.

    Inside a transaction; return how many. The table is read, never held.
    """
    rows = writer.execute(f'SELECT {_COLUMNS} FROM {table}')
    _move_digest(writer, (_entry(row) for row in rows))
    order = 'ORDER BY modified_ns, id'
    count = writer.execute(
        f'INSERT INTO images ({_COLUMNS}) SELECT {_COLUMNS} FROM {table} {order}'
    ).rowcount
    writer.execute(
        'INSERT INTO changes (kind, image_id) '
        f"SELECT 'created', id FROM {table} {order}"
    )
    return count


def delete_rows(writer: sqlite3.Connection, image_ids: list[str]) -> None:
    """Unlist images and log their removal; inside a transaction."""
    ids = [(image_id,) for image_id in image_ids]
    removed = [_find(writer, image_id) for image_id in image_ids]
    _move_digest(writer, [entry for entry in removed if entry is not None])
    writer.executemany('DELETE FROM images WHERE id = ?', ids)
    writer.executemany(
        "INSERT INTO changes (kind, image_id) VALUES ('deleted', ?)", ids
    )


def _move_digest(writer: sqlite3.Connection, entries: Iterable[Entry]) -> None:
    """Add or take entries out of the catalog's digest (the same XOR)."""
    digest = int(_setting(writer, 'digest') or '0', 16)
    for entry in entries:
        identity = f'{file_name(*_named(entry))}@{entry.modified_ns}'.encode()
        digest ^= int.from_bytes(hashlib.blake2b(identity, digest_size=16).digest())
    _set(writer, 'digest', f'{digest:032x}')


def _trim_changes(writer: sqlite3.Connection) -> None:
    # A range of the primary key: one row, or none, at each change.
    writer.execute(
        'DELETE FROM changes WHERE serial <= ?', (_serial(writer) - RETAINED_CHANGES,)
    )


def _version(connection: sqlite3.Connection) -> str:
    """What the catalog shows: the XOR of its entries' digests, in hex."""
    return _setting(connection, 'digest') or f'{0:032x}'


def _serial(connection: sqlite3.Connection) -> int:
    row = connection.execute(
        "SELECT seq FROM sqlite_sequence WHERE name = 'changes'"
    ).fetchone()
    return 0 if row is None else row[0]


def _setting(connection: sqlite3.Connection, name: str) -> Any:
    row = connection.execute(
        'SELECT value FROM settings WHERE name = ?', (name,)
    ).fetchone()
    return None if row is None else row[0]


def _set(connection: sqlite3.Connection, name: str, value: Any) -> None:
    connection.execute(
        'INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)', (name, value)
    )


def _find(connection: sqlite3.Connection, image_id: str) -> Entry | None:
    row = connection.execute(
        f'SELECT {_COLUMNS} FROM images WHERE id = ?', (image_id,)
    ).fetchone()
    return None if row is None else _entry(row)


def _entry(row: tuple) -> Entry:
    return Entry(row[0], (row[1], row[2]), row[3], row[4])


def _named(entry: Entry) -> tuple[str, tuple[int, int], int]:
    return entry.image_id, entry.size, entry.length
