"""The Catalog: what the catalog answers and remembers, and its two threads.

Reads and writes run in one thread each, off the event loop (a SQLite
connection belongs to one thread); only the change token is read on the
loop (see watch.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import pathlib
import sqlite3
from collections.abc import Callable, Iterable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Any, TypeVar, TypeVarTuple

from .. import blocking
from ..config import CatalogLimits
from ..errors import CatalogError, CatalogFullError
from ..files import TEMPORARY_DIRECTORY, Record
from . import log, sql, watch
from .changes import Changes, Removal
from .snapshot import Snapshot

CATALOG_DIRECTORY = '.catalog'
DATABASE_NAME = 'catalog.sqlite3'

_T = TypeVar('_T')
_Ts = TypeVarTuple('_Ts')


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of the catalog, and the seq after which the next one starts."""

    records: list[Record]
    next_after: int | None


@dataclasses.dataclass(frozen=True)
class _Open:
    """The connections of an open catalog."""

    reader: sqlite3.Connection
    changes: Changes
    watch: watch.Watch
    # The database file they opened (see _check_file).
    inode: int


class Catalog:
    """Know which images the storage directory holds, and change it with them.

    Every method but `token` runs its SQL in a thread. sqlite3's errors are
    raised as CatalogError (CatalogFullError when the disk is full), OSError
    of the file operations as they are (a full disk, a read-only one).
    """

    def __init__(
        self,
        directory: pathlib.Path,
        limits: CatalogLimits | None = None,
        token_sources: Iterable[str] = watch.SOURCES,
    ) -> None:
        self.directory = directory
        self.limits = limits or CatalogLimits()
        self.incoming = directory / TEMPORARY_DIRECTORY
        self.path = directory / CATALOG_DIRECTORY / DATABASE_NAME
        self._token_sources = tuple(token_sources)
        self._reads = ThreadPoolExecutor(1, thread_name_prefix='asgilook-catalog')
        self._writes = ThreadPoolExecutor(1, thread_name_prefix='asgilook-changes')
        self._open: _Open | None = None
        self._opening = asyncio.Lock()
        # Records (None: no such image) and the version, as of _known_token.
        self._known: dict[str, Record | None] = {}
        self._known_version: str | None = None
        self._known_token: bytes | None = None

    # -- opening and closing

    async def open(self) -> bool:
        """Connect to the catalog, making it if there is none.

        Return whether the storage directory changed since the catalog last
        recorded it (or the catalog is new): then it must be reindexed.
        """
        async with self._opening:
            if self._open is not None:
                # Open since an earlier start of this store, in this process.
                return False
            wait = self.limits.write_wait
            writer = await self._run_write(sql.connect, self.path, wait)
            reader = await self._run_read(sql.connect, self.path, wait)
            # Its own users' only: it keeps the service key (signing.py); one
            # of asgilook 0.8 or older was made readable by all.
            await self._run_write(_private, self.path.parent)
            changed = await self._run_write(sql.prepare, writer, self.directory)
            await self._run_write(log.upgrade, writer)
            inode = await self._run_read(self._inode)
            watching = await self._run_read(self._watch)
            changes = Changes(writer, self.directory, self.limits.retained_changes)
            # Last: a call that finds it set finds the catalog ready.
            self._open = _Open(reader, changes, watching, inode)
            return changed

    async def close(self) -> None:
        """Disconnect (the next call connects again); let the threads go."""
        async with self._opening:
            opened, self._open = self._open, None
            if opened is not None:
                await self._run_read(opened.reader.close)
                await self._run_write(opened.changes.writer.close)
                await self._run_read(opened.watch.close)
            self._known.clear()
            self._known_token = None

    def shutdown(self) -> None:
        """Let the threads go, without waiting for them."""
        self._reads.shutdown(wait=False)
        self._writes.shutdown(wait=False)

    def _inode(self) -> int:
        return os.stat(self.path).st_ino

    def _watch(self) -> watch.Watch:
        connection = sql.connect(self.path, self.limits.write_wait, False)
        return watch.watch(connection, self.path, self._token_sources)

    # -- what the catalog holds

    def token(self) -> bytes | None:
        """Return bytes that change whenever any process changes the catalog.

        Asked on the event loop before every answer kept in memory is sent:
        it costs next to nothing (see watch.py). None when the catalog is not
        open (or its token cannot be read): nothing may be kept.
        """
        opened = self._open
        return None if opened is None else opened.watch.token()

    async def get(self, image_id: str) -> Record | None:
        """Return the record of an image, or None if the catalog lists none."""
        self._remembering()
        known = self._known
        if image_id in known:
            return known[image_id]
        record = await self._read(sql.find, image_id)
        # Into the dict of the token read before: if a change came since,
        # the next call finds another token and starts a new dict.
        if len(known) >= self.limits.remembered_records:
            known.clear()
        known[image_id] = record
        return record

    async def version(self) -> str:
        """Return what the list shows, as a string that moves with every change."""
        token = self._remembering()
        version = self._known_version
        if version is None:
            version = await self._read_checked(sql.version)
            # Kept only if no change came meanwhile (nor is one unknowable).
            if token is not None and token == self.token():
                self._known_version = version
        return version

    async def listing(self, at_most: int) -> tuple[list[Record] | None, str]:
        """Return every image in upload order, and the version, of one moment.

        None for the images if there are more than at_most: read them from
        a snapshot.
        """
        return await self._read_checked(lambda reader: sql.select_all(reader, at_most))

    async def snapshot(self) -> Snapshot:
        """Open a snapshot of every image (close it when done)."""
        opened = await self._opened()
        return await _run(
            blocking.FILES, Snapshot, self.path, opened.inode, self.limits.write_wait
        )

    async def read_snapshot(self, snapshot: Snapshot, size: int) -> list[Record]:
        """Return the next size records of a snapshot."""
        return await _run(blocking.FILES, snapshot.batch, size)

    async def close_snapshot(self, snapshot: Snapshot) -> None:
        await _run(blocking.FILES, snapshot.close)

    async def page(self, after: int, limit: int, newest: bool = False) -> Page:
        """Return up to limit images that follow seq after, in upload order.

        Or newest first: then the images that precede seq after (0: all).
        """
        records, next_after = await self._read_checked(
            lambda reader: sql.select_page(reader, after, limit, newest)
        )
        return Page(records, next_after)

    async def setting(self, name: str) -> Any:
        """Return the value of one of the catalog's settings (None: none)."""
        return await self._read(sql.setting, name)

    async def keep_setting(self, name: str, value: object) -> Any:
        """Give a setting value if it has none (atomically); return its value."""
        changes = await self._changes()
        return await self._run_write(sql.keep_setting, changes.writer, name, value)

    async def changes(self, after: int, limit: int) -> list[log.Change]:
        """Return up to limit changes that follow serial after, oldest first."""
        return await self._read_checked(lambda reader: log.after(reader, after, limit))

    async def change_span(self) -> log.Span:
        """Return which changes the change log can tell now."""
        return await self._read_checked(log.span)

    def _remembering(self) -> bytes | None:
        token = self.token()
        if token != self._known_token or token is None:
            self._known = {}
            self._known_version = None
            self._known_token = token
        return token

    # -- changes

    async def add(
        self, image_id: str, size: tuple[int, int], length: int, temporary: pathlib.Path
    ) -> Record | None:
        """List a new image, renaming its written file into place.

        The image is dated now, in the order of the commits. Return its
        record; None if an image is listed under its id already (an upload
        never replaces one): then nothing is written.
        """
        changes = await self._changes()
        return await self._run_write(changes.insert, image_id, size, length, temporary)

    async def remove(self, image_id: str, trash: pathlib.Path) -> Removal:
        """Unlist an image and remove its file (moved to trash, then removed).

        An image whose file is gone (removed by hand) is unlisted all the same.
        """
        changes = await self._changes()
        return await self._run_write(changes.delete, image_id, trash)

    async def locked(
        self, function: Callable[[sqlite3.Connection], _T | None]
    ) -> _T | None:
        """Run function(writer) under the write lock, in one transaction.

        For reindex.py. What it changed is committed, with the directory's
        time, if it returns something; if it returns None, nothing is written.
        """
        changes = await self._changes()
        return await self._run_write(changes.locked, function)

    # -- threads

    async def _read(
        self, function: Callable[[sqlite3.Connection, *_Ts], _T], *args: *_Ts
    ) -> _T:
        opened = await self._opened()
        return await self._run_read(function, opened.reader, *args)

    async def _read_checked(self, select: Callable[[sqlite3.Connection], _T]) -> _T:
        opened = await self._opened()
        return await self._run_read(
            _checked, self.path, opened.inode, opened.reader, select
        )

    async def _changes(self) -> Changes:
        return (await self._opened()).changes

    async def _opened(self) -> _Open:
        # Opened again if a close came between the opening and this call.
        while (opened := self._open) is None:
            await self.open()
        return opened

    async def _run_read(self, function: Callable[[*_Ts], _T], *args: *_Ts) -> _T:
        return await _run(self._reads, function, *args)

    async def _run_write(self, function: Callable[[*_Ts], _T], *args: *_Ts) -> _T:
        return await _run(self._writes, function, *args)


async def _run(
    pool: Executor | None, function: Callable[[*_Ts], _T], *args: *_Ts
) -> _T:
    try:
        return await blocking.run(pool, function, *args)
    except sqlite3.Error as ex:
        full = sql.error_code(ex) == sqlite3.SQLITE_FULL
        raise (CatalogFullError if full else CatalogError)(str(ex)) from ex


def _private(directory: pathlib.Path) -> None:
    with contextlib.suppress(OSError):
        os.chmod(directory, 0o700)


def _checked(
    path: pathlib.Path,
    inode: int,
    reader: sqlite3.Connection,
    select: Callable[[sqlite3.Connection], _T],
) -> _T:
    """Select from the database if its file is still the one open.

    Removed with its directory, say: what the open file still says is
    no longer the storage's (CatalogError).
    """
    try:
        found = os.stat(path).st_ino
    except OSError as ex:
        gone = f'the catalog is gone: {ex.strerror}'
        raise sqlite3.OperationalError(gone) from ex
    if found != inode:
        raise sqlite3.OperationalError(f'{path} was replaced')
    return select(reader)
