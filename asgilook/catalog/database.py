"""SqliteCatalog: what the catalog in SQLite answers and remembers, and its two threads.

Reads and writes run in one thread each, off the event loop (a SQLite
connection belongs to one thread); only the change token is read on the
loop (see watch.py).
"""

from __future__ import annotations

import pathlib
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar, TypeVarTuple

from ..errors import CatalogFullError
from ..limits import CatalogLimits
from ..storage.files import TEMPORARY_DIRECTORY
from . import connections, log, reserve, sql, watch
from .changes import Changes, Removal
from .identity import Identity
from .record import Page, Record
from .snapshot import Snapshot
from .threads import CatalogThreads, Open

CATALOG_DIRECTORY = '.catalog'
DATABASE_NAME = 'catalog.sqlite3'

_T = TypeVar('_T')
_Ts = TypeVarTuple('_Ts')


class SqliteCatalog(CatalogThreads):
    """Know which images the storage directory holds, and change it with them.

    Every method but `token` runs its SQL in a thread. sqlite3's errors are
    raised as CatalogError (CatalogFullError when the disk is full), OSError
    of the file operations as they are (a full disk, a read-only one); each
    kind of fault is logged once (faults.py). A catalog whose files moved
    while open (identity.py) is opened again where it can be; `on_reopened`
    is then awaited (the storage reconciles it with the directory).
    """

    variable = 'ASGI_LOOK_STORAGE_PATH'

    def __init__(
        self,
        directory: pathlib.Path,
        limits: CatalogLimits | None = None,
        token_sources: Iterable[str] = watch.SOURCES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(directory / CATALOG_DIRECTORY / DATABASE_NAME)
        self.directory = directory
        self.limits = limits or CatalogLimits()
        self.incoming = directory / TEMPORARY_DIRECTORY
        self._reserve = directory / CATALOG_DIRECTORY / reserve.NAME
        # Whether this process gave up the reserve, or found no room for it.
        self._reserve_missing = False
        self._token_sources = tuple(token_sources)
        self._clock = clock
        # The snapshots of long lists read their batches in turn here, not
        # in the file pool, whose other work they would hold up.
        self._lists = ThreadPoolExecutor(1, thread_name_prefix='asgilook-lists')
        # Records (None: no such image) and the version, as of _known_token.
        self._known: dict[str, Record | None] = {}
        self._known_version: str | None = None
        self._known_token: bytes | None = None

    # -- opening and closing

    async def open(self, create: bool = True) -> bool:
        """Connect to the catalog, making it if there is none (if create).

        Return whether the storage directory changed since the catalog last
        recorded it (or the catalog is new): then it must be reindexed.
        """
        async with self._opening:
            if self._open is not None:
                # Open since an earlier start of this store, in this process.
                return False
            wait = self.limits.write_wait
            writer = await self._run_write(connections.connect, self.path, wait, create)
            reader = await self._run_read(connections.connect, self.path, wait)
            # Its own users' only: it keeps the service key (keys.py); one
            # of asgilook 0.8 or older was made readable by all.
            await self._run_write(connections.make_private, self.path.parent)
            changed = await self._run_write(sql.prepare, writer, self.directory)
            await self._run_write(log.upgrade, writer)
            # Room for removals on a full disk, made if missing (reserve.py).
            self._reserve_missing = self.limits.reserve > 0
            await self._keep_reserve()
            identity = await self._run_read(Identity.of, self.path)
            watching = await self._run_read(self._watch, identity)
            changes = Changes(
                writer, self.directory, self.limits.retained_changes, identity
            )
            # Last: a call that finds it set finds the catalog ready.
            self._open = Open(reader, changes, watching, identity)
            return changed

    @property
    def where(self) -> str:
        """The storage directory, as a log line says it."""
        return str(self.directory)

    async def release(self) -> None:
        """Nothing: closing the last connection checkpoints the WAL (20 ms).

        A lifespan may start again in the same process (falcon.testing starts
        one per request); the end of the process closes it.
        """

    async def close(self) -> None:
        """Disconnect (the next call connects again); let the threads go."""
        async with self._opening:
            await self._disconnect()

    async def _disconnect(self) -> None:
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
        self._lists.shutdown(wait=False)

    def _watch(self, identity: Identity) -> watch.Watch:
        connection = connections.connect(
            self.path, self.limits.write_wait, False, False
        )
        return watch.watch(connection, identity, self._token_sources, self._clock)

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
        record = await self._read_checked(lambda reader: sql.find(reader, image_id))
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
        return await self._on_files(
            lambda opened: self._run(
                self._lists, Snapshot, opened.identity, self.limits.write_wait
            )
        )

    async def read_snapshot(self, snapshot: Snapshot, size: int) -> list[Record]:
        """Return the next size records of a snapshot."""
        return await self._run(self._lists, snapshot.batch, size)

    async def close_snapshot(self, snapshot: Snapshot) -> None:
        await self._run(self._lists, snapshot.close)

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
        return await self._read_checked(lambda reader: sql.setting(reader, name))

    async def keep_setting(self, name: str, value: object) -> Any:
        """Give a setting value if it has none (atomically); return its value."""
        return await self._on_files(
            lambda opened: self._run_write(opened.changes.keep, name, value)
        )

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
        record = await self._on_files(
            lambda opened: self._run_write(
                opened.changes.insert, image_id, size, length, temporary
            )
        )
        await self._keep_reserve()
        return record

    async def remove(self, image_id: str, trash: pathlib.Path) -> Removal:
        """Unlist an image and remove its file (moved to trash, then removed).

        An image whose file is gone (removed by hand) is unlisted all the same.
        On a full disk, the room kept in reserve is given up for it (see
        reserve.py).
        """

        def delete(opened: Open) -> Awaitable[Removal]:
            return self._run_write(opened.changes.delete, image_id, trash)

        try:
            removal = await self._on_files(delete)
        except CatalogFullError:
            self._reserve_missing = True
            if not await self._run_write(reserve.release, self._reserve):
                raise
            removal = await self._on_files(delete)
        await self._keep_reserve()
        return removal

    async def locked(
        self, function: Callable[[sqlite3.Connection], _T], scanned: int | None = None
    ) -> _T:
        """Run function(writer) under the write lock, in one transaction.

        For catalog/reindex.py, a batch at a time; committed with the directory's time
        the reindex read before it read the directory: scanned, or none while
        what it found is not all applied (see sql.record_reindexed).
        """
        return await self._on_files(
            lambda opened: self._run_write(opened.changes.locked, function, scanned)
        )

    async def _keep_reserve(self) -> None:
        """Make the reserve again if it is missing, after a change found room."""
        if self._reserve_missing:
            size = self.limits.reserve
            made = await self._run_write(reserve.make, self._reserve, size)
            self._reserve_missing = not made
