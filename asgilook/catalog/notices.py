"""Notices: how a host hears of every host's changes, and what it knows between.

Each change of the shared catalog notifies `pgsql.CHANNEL` with its serial as
it commits; a host's token is the last serial it heard. While it hears
nothing (the database away), its token is None: nothing is served from
memory, and it listens again every RELISTEN_DELAY.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg

from .. import logs
from . import pgsql
from .record import Record

logger = logging.getLogger('asgilook.catalog')

# How long a host waits before listening again once the database went away.
RELISTEN_DELAY = 1.0
# How long connecting may take.
CONNECT_TIMEOUT = 2


class Notices:
    """Listen to the change log of a shared catalog; the last serial heard."""

    def __init__(self, url: str, where: str) -> None:
        self._url = url
        self.where = where
        self.token: bytes | None = None
        self._listener: asyncio.Task[None] | None = None
        self._heard = asyncio.Event()
        # A database away is said once a minute, not at every try.
        self._lost = logs.Throttle()

    @property
    def listening(self) -> bool:
        return self._listener is not None

    async def start(self) -> None:
        """Listen; return once the token is read (or the first try failed)."""
        self._heard.clear()
        self._listener = asyncio.create_task(self._listen())
        await self._heard.wait()

    async def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
        self.token = None

    async def _listen(self) -> None:
        """Follow the changes of every host: the token is the last serial said."""
        while True:
            try:
                await self._follow()
            except (psycopg.Error, OSError, TimeoutError) as ex:
                more = self._lost.take()
                if more is not None:
                    logger.warning(
                        'lost the changes of the other hosts from %s (%s): '
                        'listening again every %s s%s',
                        self.where,
                        ex,
                        RELISTEN_DELAY,
                        more,
                    )
            # Nothing is kept in memory while no change can be heard of.
            self.token = None
            self._heard.set()
            await asyncio.sleep(RELISTEN_DELAY)

    async def _follow(self) -> None:
        async with await psycopg.AsyncConnection.connect(
            self._url, autocommit=True, connect_timeout=CONNECT_TIMEOUT
        ) as connection:
            await connection.execute(f'LISTEN {pgsql.CHANNEL}')
            # Read once listening: no change falls between the two.
            self.token = (await pgsql.version(connection)).encode()
            self._heard.set()
            async for notice in connection.notifies():
                self.token = notice.payload.encode()


class Known:
    """Records read since the token last moved.

    Between two changes heard of, an image's lookup costs no trip to the
    database. What is read under one token is kept only while the token is
    still that one (a change may come during the read).
    """

    def __init__(self) -> None:
        self._token: bytes | None = None
        self._records: dict[str, Record | None] = {}

    def records(self, token: bytes | None) -> dict[str, Record | None]:
        """The records known as of token (none if the token cannot say)."""
        self._move(token)
        return self._records

    def remember(
        self, token: bytes | None, image_id: str, record: Record | None, most: int
    ) -> None:
        if token is None or token != self._token:
            return
        if len(self._records) >= most:
            self._records.clear()
        self._records[image_id] = record

    def forget(self) -> None:
        """Forget everything (this host changed the catalog)."""
        self._token = None
        self._records = {}

    def _move(self, token: bytes | None) -> None:
        if token is None or token != self._token:
            self.forget()
            self._token = token
