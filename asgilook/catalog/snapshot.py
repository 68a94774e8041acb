"""A snapshot of the whole list: every record of one moment, a batch at a time.

The unpaged list of a large catalog is read this way (its records would
not fit in memory at once: a list of 1.26 million images took 2.3 GB of a
worker). A snapshot has a connection of its own, in one read transaction
held until it is closed: in WAL mode SQLite keeps showing it what it saw
however much is written meanwhile (the WAL grows until it is closed).

Every method blocks: the catalog runs them in the file pool.
"""

from __future__ import annotations

import sqlite3

from . import sql
from .identity import Identity
from .record import Record


class Snapshot:
    """Every listed record in upload order, as of the moment it was opened."""

    def __init__(self, identity: Identity, write_wait: float) -> None:
        self._connection = sqlite3.connect(
            identity.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=write_wait,
        )
        try:
            self._connection.execute('BEGIN')
            # Read, so that the transaction holds this moment from now on.
            self.version = sql.version(self._connection)
            identity.check()
            self.count: int = self._connection.execute(
                'SELECT count(*) FROM images'
            ).fetchone()[0]
            self._rows = self._connection.execute(
                f'SELECT {sql.COLUMNS} FROM images ORDER BY seq'
            )
        except BaseException:
            self._connection.close()
            raise

    def batch(self, size: int) -> list[Record]:
        """Return the next size records (fewer at the end, none after it)."""
        return [sql.record_of(row) for row in self._rows.fetchmany(size)]

    def close(self) -> None:
        """End the transaction and let the connection go."""
        # A statement read halfway would keep the connection, and its read
        # transaction, open until it is collected.
        self._rows.close()
        self._connection.close()
