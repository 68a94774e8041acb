"""PostgresCatalog: the catalog of several hosts, in PostgreSQL (see pgsql.py).

Every host reads and changes the same tables through a small pool of
connections (psycopg 3 and psycopg_pool), and listens for the changes of
the others (notices.py): its token is the serial the last one said, so
that its memory tier and its event streams follow every host's changes. An
upload's object is put in the object store (storage/objects.py) inside the
transaction that lists it, before the commit; a delete commits, then
removes the object. A database that fails or does not answer within
`TIMEOUT` raises CatalogError: the store answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import psycopg_pool

from ..errors import CatalogError
from ..limits import CatalogLimits
from ..storage.objects import Objects
from . import pgsql
from .changes import Removal
from .log import Change, Span
from .notices import Known, Notices
from .pgsql import Snapshot
from .record import Page, Record, file_name

logger = logging.getLogger('asgilook.catalog')

# How long a request waits for a connection, or a statement for its answer.
TIMEOUT = 2.0
# Connections a worker holds at most (a long list holds one while it is sent).
POOL_SIZE = 8


class PostgresCatalog:
    """List the images of every host in PostgreSQL; follow the others' changes."""

    variable = 'ASGI_LOOK_DATABASE_URL'

    def __init__(
        self, url: str, objects: Objects, limits: CatalogLimits | None = None
    ) -> None:
        self._url = url
        parts = urllib.parse.urlsplit(url)
        # Said in errors and logs: never its password.
        self.where = f'postgresql://{parts.hostname}:{parts.port or 5432}{parts.path}'
        self._objects = objects
        self.limits = limits or CatalogLimits()
        self._pool = self._new_pool()
        # How every host's changes are heard of.
        self._notices = Notices(url, self.where)
        # What was read since the last change heard of.
        self._known = Known()

    async def open(self) -> None:
        """Connect, make the tables if they are missing, and listen for changes."""
        if self._notices.listening:
            return
        with _faults():
            await self._pool.open(wait=True, timeout=TIMEOUT)
            async with self._connection() as connection:
                await pgsql.make_schema(connection)
        await self._notices.start()

    async def close(self) -> None:
        """Stop listening and let the connections go."""
        await self._notices.stop()
        pool, self._pool = self._pool, self._new_pool()
        await pool.close()

    async def release(self) -> None:
        """What a server that stops lets go: its connections (see close)."""
        await self.close()

    def _new_pool(self) -> psycopg_pool.AsyncConnectionPool[Any]:
        return psycopg_pool.AsyncConnectionPool(
            self._url,
            min_size=1,
            max_size=POOL_SIZE,
            open=False,
            timeout=TIMEOUT,
            kwargs={'autocommit': True, 'connect_timeout': int(TIMEOUT)},
            # A connection the database dropped (restarted, say) is replaced
            # as it is taken, not found broken by a request.
            check=psycopg_pool.AsyncConnectionPool.check_connection,
        )

    def shutdown(self) -> None:
        """Nothing left to let go: the catalog runs no threads of its own."""

    def token(self) -> bytes | None:
        """The serial of the last change any host said; None while not listening."""
        return self._notices.token

    async def get(self, image_id: str) -> Record | None:
        """The record listed under an id, or None: remembered until a change."""
        token = self.token()
        known = self._known.records(token)
        if image_id in known:
            return known[image_id]
        async with self._connection() as connection:
            record = await pgsql.find(connection, image_id)
        self._known.remember(token, image_id, record, self.limits.remembered_records)
        return record

    async def check(self) -> None:
        """Ask the database a question that costs nothing; CatalogError if it fails."""
        async with self._connection() as connection:
            await connection.execute('SELECT 1')

    async def version(self) -> str:
        async with self._connection() as connection:
            return await pgsql.version(connection)

    async def listing(self, at_most: int) -> tuple[list[Record] | None, str]:
        """Return every image in upload order, and the version, of one moment."""
        async with self._connection() as connection, _repeatable(connection):
            version = await pgsql.version(connection)
            return await pgsql.select_all(connection, at_most), version

    async def snapshot(self) -> Snapshot:
        """Open a snapshot of every image (close it when done)."""
        with _faults():
            connection = await self._pool.getconn()
        snapshot = Snapshot(connection)
        try:
            with _faults():
                await snapshot.begin()
        except BaseException:
            await self._pool.putconn(connection)
            raise
        return snapshot

    async def read_snapshot(self, snapshot: Snapshot, size: int) -> list[Record]:
        with _faults():
            return await snapshot.batch(size)

    async def close_snapshot(self, snapshot: Snapshot) -> None:
        try:
            with _faults():
                await snapshot.end()
        finally:
            await self._pool.putconn(snapshot.connection)

    async def page(self, after: int, limit: int, newest: bool = False) -> Page:
        async with self._connection() as connection:
            records, next_after = await pgsql.select_page(
                connection, after, limit, newest
            )
        return Page(records, next_after)

    async def changes(self, after: int, limit: int) -> list[Change]:
        async with self._connection() as connection:
            return await pgsql.changes_after(connection, after, limit)

    async def change_span(self) -> Span:
        async with self._connection() as connection:
            return await pgsql.span(connection)

    async def setting(self, name: str) -> Any:
        async with self._connection() as connection:
            return await pgsql.setting(connection, name)

    async def keep_setting(self, name: str, value: object) -> Any:
        async with self._connection() as connection:
            return await pgsql.keep_setting(connection, name, value)

    async def add(
        self, image_id: str, size: tuple[int, int], length: int, temporary: pathlib.Path
    ) -> Record | None:
        """List a new image dated now, its object written before the row commits.

        None if an image is listed under its id already (nothing is listed).
        The object is written before the lock that orders every host's
        changes is taken, so that uploads are not written one at a time.
        """
        if await self.get(image_id) is not None:
            return None
        name = file_name(image_id, size, length)
        await self._objects.put(name, temporary)
        async with self._changing() as connection:
            # Dated inside the lock: the dates follow the order of the list.
            record = Record(image_id, size, length, time.time_ns())
            if await pgsql.insert(connection, record):
                return record
        await self._taken(record)
        return None

    async def adopt(self, record: Record, source: pathlib.Path) -> bool:
        """List an image as it was listed elsewhere (its date kept), from a file.

        False if its id is listed already (nothing is written). The object
        is put before the row commits, as an upload's.
        """
        async with self._changing() as connection:
            if not await pgsql.insert(connection, record):
                return False
            await self._objects.put(record.name, source)
        return True

    async def remove(self, image_id: str, trash: pathlib.Path) -> Removal:
        """Unlist an image, then remove its object (a reindex removes one left)."""
        return await self.unlist(image_id)

    async def _taken(self, record: Record) -> None:
        """Take back the object of an upload whose id another host took meanwhile."""
        listed = await self.get(record.image_id)
        if listed is not None and listed.name == record.name:
            # The same name: the object is the other host's now.
            logger.error(
                'two uploads were given the id %s at once: the image listed '
                "under it may hold the other one's bytes; the id generator "
                'must give a new id at each call',
                record.image_id,
            )
            return
        await self._objects.remove(record.name)

    async def rows_after(self, image_id: str, limit: int) -> list[Record]:
        """Return up to limit records whose id follows image_id, by id's bytes."""
        async with self._connection() as connection:
            return await pgsql.rows_after(connection, image_id, limit)

    async def unlist(self, image_id: str) -> Removal:
        """Unlist an image, then remove its object (see remove)."""
        async with self._changing() as connection:
            record = await pgsql.delete(connection, image_id)
        if record is None:
            return Removal.NOT_LISTED
        try:
            await self._objects.remove(record.name)
        except OSError as ex:
            logger.warning(
                'image %s is unlisted but its object stays in %s (%s): '
                'python -m asgilook reindex removes it',
                image_id,
                self._objects.where,
                ex,
            )
        return Removal.REMOVED

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[pgsql.Connection]:
        """A connection of the pool, every statement bounded by TIMEOUT."""
        with _faults():
            async with asyncio.timeout(TIMEOUT), self._pool.connection() as connection:
                yield connection

    @contextlib.asynccontextmanager
    async def _changing(self) -> AsyncIterator[pgsql.Connection]:
        """One change: a transaction under the lock that orders every host's."""
        async with self._connection() as connection, connection.transaction():
            await connection.execute(
                'SELECT pg_advisory_xact_lock(%s)', (pgsql.WRITES,)
            )
            yield connection
            await pgsql.trim(connection, self.limits.retained_changes)
        # This host's change, before the others' notices say it.
        self._known.forget()


@contextlib.asynccontextmanager
async def _repeatable(connection: pgsql.Connection) -> AsyncIterator[None]:
    """A read transaction that sees one moment."""
    async with connection.transaction():
        await connection.execute('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ')
        yield


@contextlib.contextmanager
def _faults() -> Iterator[None]:
    """Say a failing or silent database as CatalogError."""
    try:
        yield
    except (psycopg.Error, psycopg_pool.PoolTimeout, TimeoutError) as ex:
        raise CatalogError(f'the catalog database failed: {ex}') from ex
