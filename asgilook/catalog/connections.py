"""Connections to the catalog's SQLite database: WAL mode, transactions, error codes."""

from __future__ import annotations

import contextlib
import os
import pathlib
import sqlite3
import time
import urllib.parse
from collections.abc import Callable, Iterator


def connect(
    path: pathlib.Path,
    write_wait: float,
    check_same_thread: bool = True,
    create: bool = True,
) -> sqlite3.Connection:
    """Connect to the database at path (made if missing and create), in WAL mode.

    write_wait: how long a write waits for another process's write.
    """
    if create:
        # Its own users' only: it keeps the service key (keys.py).
        path.parent.mkdir(mode=0o700, exist_ok=True)
    connection = sqlite3.connect(
        f'file:{urllib.parse.quote(str(path))}?mode={"rwc" if create else "rw"}',
        uri=True,
        isolation_level=None,
        check_same_thread=check_same_thread,
        timeout=write_wait,
    )
    try:
        use_wal(connection, write_wait)
        # Committed before the 201 or 204 is sent: on disk, not only in
        # the operating system's memory.
        connection.execute('PRAGMA synchronous = FULL')
    except BaseException:
        connection.close()
        raise
    return connection


def use_wal(connection: sqlite3.Connection, write_wait: float) -> None:
    """Put the database in WAL mode (kept in the file: once is enough).

    Switching takes the database for a moment, and SQLite does not wait for
    that: workers opening a new catalog together take turns here.
    """
    deadline = time.monotonic() + write_wait
    while True:
        try:
            if connection.execute('PRAGMA journal_mode').fetchone()[0] != 'wal':
                connection.execute('PRAGMA journal_mode = WAL')
            return
        except sqlite3.OperationalError as ex:
            if error_code(ex) != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def checkpoint(writer: sqlite3.Connection) -> None:
    """Copy the WAL into the database, and start it anew."""
    writer.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone()


def error_code(ex: sqlite3.Error) -> int:
    """Return the primary result code of an SQLite error (0 if it has none)."""
    code: int = getattr(ex, 'sqlite_errorcode', 0)
    return code & 0xFF


@contextlib.contextmanager
def transaction(
    connection: sqlite3.Connection,
    begin: str = 'BEGIN',
    before_commit: Callable[[], None] | None = None,
) -> Iterator[None]:
    """Run a block in a transaction: committed at its end, unless it did.

    before_commit is called first (it may raise: then nothing is committed).
    """
    connection.execute(begin)
    try:
        yield
        if connection.in_transaction:
            if before_commit is not None:
                before_commit()
            connection.execute('COMMIT')
    except BaseException:
        if connection.in_transaction:
            connection.execute('ROLLBACK')
        raise


def make_private(directory: pathlib.Path) -> None:
    """Make the catalog's directory its owner's alone (it keeps the service key)."""
    with contextlib.suppress(OSError):
        os.chmod(directory, 0o700)
