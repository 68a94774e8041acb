"""The catalog's change token: bytes that move whenever any process commits.

Asked on the event loop before every answer kept in memory is sent, so it
must cost next to nothing. Two ways to read it, tried in the order the
settings give (`Config.change_token_sources`):

- `wal-index`: the header of SQLite's WAL index (the database's `-shm` file,
  the shared memory of every connection), read from this process's map of
  it. SQLite allocates the file's blocks before mapping it (no SIGBUS on a
  full disk), and every commit of every connection rewrites the first copy
  of its header (which holds a counter of transactions:
  https://www.sqlite.org/walformat.html) before the commit returns. The map
  stays valid while this process holds its connections: SQLite resets the
  file only when it opens the database first.

  The file stays open as long as the map: POSIX drops every lock a process
  holds on a file when the process closes any descriptor of it, and SQLite's
  connections hold one on this file that tells other processes it is in use.
  Were it dropped, the next process to open the catalog (a starting worker)
  would take the WAL index for abandoned and reset it under this process's
  connections: a worker killed by SIGBUS, and commits unseen by the others.
  So the watch lets it go last, after the connections of this process.
- `data-version`: SQLite's `PRAGMA data_version` of a connection of this
  process, which moves whenever another connection commits: a few
  microseconds a call.

Every `identity.CHECK_INTERVAL` seconds the token also checks that the
catalog's files are those its connections opened: once they moved (the
WAL index removed, the database replaced), it is None for good, and the
catalog, asked, opens the files there now (identity.py).
"""

from __future__ import annotations

import itertools
import mmap
import os
import pathlib
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterable

from .identity import CHECK_INTERVAL, Identity, MovedError, wal_index_path

WAL_INDEX = 'wal-index'
DATA_VERSION = 'data-version'
SOURCES = (WAL_INDEX, DATA_VERSION)

# The size of the first copy of the WAL index's header.
_WAL_INDEX_HEADER = 48

# Each opening of a catalog gives its tokens a prefix of its own: what was
# kept under one never passes for current under another.
_epochs = itertools.count(1)


class Watch:
    """Read the change token of one open catalog, through one connection."""

    def __init__(
        self,
        connection: sqlite3.Connection,
        wal_index: WalIndex | None,
        data_version: bool,
        identity: Identity,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._connection = connection
        self._wal_index = wal_index
        self._data_version = data_version
        self._epoch = next(_epochs).to_bytes(8, 'little')
        self._identity = identity
        self._clock = clock
        self._next_check = clock() + CHECK_INTERVAL
        self._moved = False

    def token(self) -> bytes | None:
        """Return the token now; None if it cannot be read (nothing may be kept)."""
        if self._clock() >= self._next_check:
            self._check()
        if self._moved:
            return None
        if self._wal_index is not None:
            return self._epoch + self._wal_index.header()
        if not self._data_version:
            return None
        try:
            row = self._connection.execute('PRAGMA data_version').fetchone()
        except sqlite3.Error:
            return None
        version: int = row[0]
        return self._epoch + version.to_bytes(8, 'little')

    def _check(self) -> None:
        # Two stats of local files, once an interval: on the event loop.
        self._next_check = self._clock() + CHECK_INTERVAL
        try:
            self._identity.check()
        except (MovedError, OSError):
            self._moved = True

    def close(self) -> None:
        """Let the connection and the map go (in the thread that may block).

        Call it after this process closed its other connections to the
        catalog (see the module's docstring).
        """
        self._connection.close()
        if self._wal_index is not None:
            self._wal_index.close()


class WalIndex:
    """A read-only map of a WAL index, and the open file under it."""

    def __init__(self, descriptor: int) -> None:
        self._map = mmap.mmap(descriptor, 0, access=mmap.ACCESS_READ)
        # Closed when closed, or when the catalog is let go unclosed (its
        # connections go the same way).
        self._close_file = weakref.finalize(self, os.close, descriptor)

    def header(self) -> bytes:
        """Return the first copy of the index's header."""
        return self._map[:_WAL_INDEX_HEADER]

    def close(self) -> None:
        """Unmap, then close the file (which drops this process's locks on it)."""
        self._map.close()
        self._close_file()


def watch(
    connection: sqlite3.Connection,
    identity: Identity,
    sources: Iterable[str],
    clock: Callable[[], float] = time.monotonic,
) -> Watch:
    """Return the watch of a database, through a connection usable in any thread.

    Blocking (it reads the database): run it off the event loop.
    """
    sources = tuple(sources)
    mapped = WAL_INDEX in sources
    wal_index = map_wal_index(connection, identity.path) if mapped else None
    return Watch(connection, wal_index, DATA_VERSION in sources, identity, clock)


def map_wal_index(
    connection: sqlite3.Connection, database: pathlib.Path
) -> WalIndex | None:
    """Map the WAL index of a database; None where there is none to map."""
    # A read of the database makes the file, if no connection has yet.
    connection.execute('SELECT count(*) FROM sqlite_master').fetchone()
    try:
        descriptor = os.open(wal_index_path(database), os.O_RDONLY)
    except OSError:
        return None
    try:
        return WalIndex(descriptor)
    except (OSError, ValueError):
        os.close(descriptor)
        return None
