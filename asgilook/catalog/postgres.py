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
from collections.abc import AsyncIterator
from typing import Any

import psycopg_pool

from ..limits import CatalogLimits
from ..storage.objects import Objects
from . import pgsql
from .bounded import Bounded, bounded, faults
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
        self.bounded = Bounded(TIMEOUT)
        # How every host's changes are heard of.
        self._notices = Notices(url, self.where)
        # What was read since the last change heard of.
        self._known = Known()

    async def open(self) -> None:
        """Connect, make the tables if they are missing, and listen for changes."""
        if self._notices.listening:
            return
        with faults():
            await self._pool.open(wait=True, timeout=TIMEOUT)
            async with self._connection() as connection:
                await pgsql.make_schema(connection)
        await self._notices.start()

    async def close(self) -> None:
        """Stop listening and let the connections go."""
        await self._notices.stop()
        await self.bounded.close()
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
        record = await self._find(image_id)
        self._known.remember(token, image_id, record, self.limits.remembered_records)
        return record

    @bounded
    async def _find(self, image_id: str) -> Record | None:
        async with self._connection() as connection:
            return await pgsql.find(connection, image_id)

    @bounded
    async def check(self) -> None:
        """Ask the database a question that costs nothing; CatalogError if it fails."""
        async with self._connection() as connection:
            await connection.execute('SELECT 1')

    @bounded
    async def version(self) -> str:
        async with self._connection() as connection:
            return await pgsql.version(connection)

    @bounded
    async def listing(self, at_most: int) -> tuple[list[Record] | None, str]:
        """Return every image in upload order, and the version, of one moment."""
        async with self._connection() as connection, pgsql.repeatable(connection):
            version = await pgsql.version(connection)
            return await pgsql.select_all(connection, at_most), version

    @bounded
    async def snapshot(self) -> Snapshot:
        """Open a snapshot of every image (close it when done)."""
        with faults():
            connection = await self._pool.getconn()
        snapshot = Snapshot(connection)
        try:
            with faults():
                await snapshot.begin()
        except BaseException:
            await self._pool.putconn(connection)
            raise
        return snapshot

    @bounded
    async def read_snapshot(self, snapshot: Snapshot, size: int) -> list[Record]:
        with faults():
            return await snapshot.batch(size)

    @bounded
    async def close_snapshot(self, snapshot: Snapshot) -> None:
        try:
            with faults():
                await snapshot.end()
        finally:
            await self._pool.putconn(snapshot.connection)

    @bounded
    async def page(self, after: int, limit: int, newest: bool = False) -> Page:
        async with self._connection() as connection:
            records, next_after = await pgsql.select_page(
                connection, after, limit, newest
            )
        return Page(records, next_after)

    @bounded
    async def changes(self, after: int, limit: int) -> list[Change]:
        async with self._connection() as connection:
            return await pgsql.changes_after(connection, after, limit)

    @bounded
    async def change_span(self) -> Span:
        async with self._connection() as connection:
            return await pgsql.span(connection)

    @bounded
    async def setting(self, name: str) -> Any:
        async with self._connection() as connection:
            return await pgsql.setting(connection, name)

    @bounded
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
        record = await self._insert(image_id, size, length)
        if record is None:
            await self._taken(image_id, name)
        return record

    @bounded
    async def _insert(
        self, image_id: str, size: tuple[int, int], length: int
    ) -> Record | None:
        async with self._changing() as connection:
            # Dated inside the lock: the dates follow the order of the list.
            record = Record(image_id, size, length, time.time_ns())
            return record if await pgsql.insert(connection, record) else None

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

    async def _taken(self, image_id: str, name: str) -> None:
        """Take back the object of an upload whose id another host took meanwhile."""
        listed = await self.get(image_id)
        if listed is not None and listed.name == name:
            # The same name: the object is the other host's now.
            logger.error(
                'two uploads were given the id %s at once: the image listed '
                "under it may hold the other one's bytes; the id generator "
                'must give a new id at each call',
                image_id,
            )
            return
        await self._objects.remove(name)

    async def rows_after(self, image_id: str, limit: int) -> list[Record]:
        """Return up to limit records whose id follows image_id, by id's bytes."""
        async with self._connection() as connection:
            return await pgsql.rows_after(connection, image_id, limit)

    async def unlist(self, image_id: str) -> Removal:
        """Unlist an image, then remove its object (see remove)."""
        record = await self._delete(image_id)
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

    @bounded
    async def _delete(self, image_id: str) -> Record | None:
        async with self._changing() as connection:
            return await pgsql.delete(connection, image_id)

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[pgsql.Connection]:
        """A connection of the pool, every statement bounded by TIMEOUT."""
        with faults():
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
