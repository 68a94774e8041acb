"""The threads of the SQLite catalog: its SQL off the event loop, its files watched.

Reads and writes run in one thread each (a SQLite connection belongs to
one thread). sqlite3's errors are raised as CatalogError (CatalogFullError
when the disk is full), each kind of fault logged once (faults.py); a
catalog whose files moved while open (identity.py) is opened again where
it can be, and `on_reopened` is then awaited.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import dataclasses
import pathlib
import sqlite3
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import TypeVar, TypeVarTuple

from .. import blocking
from ..errors import CatalogError, CatalogFullError
from . import connections, watch
from .changes import Changes
from .faults import Faults
from .identity import Identity, MovedError

_T = TypeVar('_T')
_Ts = TypeVarTuple('_Ts')


@dataclasses.dataclass(frozen=True)
class Open:
    """The connections of an open catalog."""

    reader: sqlite3.Connection
    changes: Changes
    watch: watch.Watch
    # The files they opened (see identity.py).
    identity: Identity


# The connections of catalogs whose database was replaced while they were
# open: never closed, since closing the last connection to a database
# checkpoints it, then removes its WAL by its path, now another's WAL.
_ABANDONED: list[Open] = []


class CatalogThreads(abc.ABC):
    """Run a catalog's SQL in its threads; open it again if its files moved."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._reads = ThreadPoolExecutor(1, thread_name_prefix='asgilook-catalog')
        self._writes = ThreadPoolExecutor(1, thread_name_prefix='asgilook-changes')
        self._open: Open | None = None
        self._opening = asyncio.Lock()
        self._faults = Faults(path)
        # How its files moved while open (None: they did not): they are opened
        # again at the next call.
        self._moved: MovedError | None = None
        self.on_reopened: Callable[[], Awaitable[object]] | None = None

    @abc.abstractmethod
    async def open(self, create: bool = True) -> bool:
        """Connect to the catalog; whether it must be reindexed."""

    @abc.abstractmethod
    async def _disconnect(self) -> None:
        """Close the connections (the next call connects again)."""

    async def check(self) -> None:
        """Ask the database a question that costs nothing; CatalogError if it fails."""
        await self._read_checked(_answer)

    async def _read_checked(self, select: Callable[[sqlite3.Connection], _T]) -> _T:
        return await self._on_files(
            lambda opened: self._run_read(
                checked, opened.identity, opened.reader, select
            )
        )

    async def _on_files(self, call: Callable[[Open], Awaitable[_T]]) -> _T:
        """Await call on the open catalog: once more if its files moved meanwhile.

        (A read or change on files that moved is refused: nothing of it was
        committed, and it is done again on the files there now.)
        """
        try:
            return await call(await self._opened())
        except CatalogError:
            if self._moved is None:
                raise
        return await call(await self._opened())

    async def _opened(self) -> Open:
        # Opened again if a close came between the opening and this call, or
        # its files moved.
        if self._moved is not None:
            await self._reopen()
        while (opened := self._open) is None:
            await self.open()
        return opened

    async def _reopen(self) -> None:
        """Let the connections to moved files go, and open those at the path.

        A process's connections to one database share its WAL index: those
        of a WAL index removed are closed first (another process that has
        the database open keeps its WAL from being removed at their close).
        Those of a database replaced are left open: their close would
        remove the WAL of the one there now. A WAL removed holds what was
        committed since the last checkpoint, and nothing else does: it is
        checkpointed into the database first, through the connection that
        still has it open.
        """
        async with self._opening:
            moved, self._moved = self._moved, None
            opened = self._open
            if moved is None or opened is None:
                return
            if moved.wal:
                with contextlib.suppress(CatalogError):
                    await self._run_write(connections.checkpoint, opened.changes.writer)
            elif await self._run_read(opened.identity.replaced):
                _ABANDONED.append(opened)
                self._open = None
            await self._disconnect()
        # Not made: gone, it stays gone until it is put back (faults.py).
        if await self.open(create=False) and self.on_reopened is not None:
            await self.on_reopened()

    async def _run_read(self, function: Callable[[*_Ts], _T], *args: *_Ts) -> _T:
        return await self._run(self._reads, function, *args)

    async def _run_write(self, function: Callable[[*_Ts], _T], *args: *_Ts) -> _T:
        return await self._run(self._writes, function, *args)

    async def _run(
        self, pool: Executor | None, function: Callable[[*_Ts], _T], *args: *_Ts
    ) -> _T:
        try:
            result = await blocking.run(pool, function, *args)
        except sqlite3.Error as ex:
            self._faults.failed(ex)
            if isinstance(ex, MovedError) and not ex.gone:
                self._moved = ex
            full = connections.error_code(ex) == sqlite3.SQLITE_FULL
            raise (CatalogFullError if full else CatalogError)(str(ex)) from ex
        self._faults.worked()
        return result


def _answer(reader: sqlite3.Connection) -> None:
    reader.execute('SELECT 1').fetchone()


def checked(
    identity: Identity,
    reader: sqlite3.Connection,
    select: Callable[[sqlite3.Connection], _T],
) -> _T:
    """Select from the database if its files are still those open (MovedError).

    Removed with its directory, say: what the open file still says is
    no longer the storage's.
    """
    identity.check()
    return select(reader)
