"""Which files an open catalog uses, and whether they are still those at its path.

A catalog removed, replaced (put back from a copy) or whose WAL index (the
`-shm` file, the shared memory of every connection) was removed while the
service ran leaves each process's open connections on files nobody else
uses: a worker started afterwards makes or opens others, and what one
writes the other never sees (in 0.8, 20 of 45 uploads answered 201 were
missing from the list, and event ids were given twice). So every read,
and every change just before it commits, checks that the files at the
path are the ones its connections use (two `stat`s); and the change token
does every CHECK_INTERVAL seconds.

Every function blocks but `Identity.of`'s result's fields.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import sqlite3

# How often the change token looks at the files (it is read at every request).
CHECK_INTERVAL = 0.1


class MovedError(sqlite3.OperationalError):
    """The catalog's files at its path are not those this process has open."""

    def __init__(self, path: pathlib.Path, gone: bool, what: str) -> None:
        super().__init__(f'{path} {what}')
        self.gone = gone


@dataclasses.dataclass(frozen=True)
class Identity:
    """The database and WAL index files of an open catalog (their inodes)."""

    path: pathlib.Path
    database: int
    # None where there is none (a database not in WAL mode).
    wal_index: int | None

    @classmethod
    def of(cls, path: pathlib.Path) -> Identity:
        """Return the identity of the files at path now."""
        database = os.stat(path).st_ino
        try:
            wal_index: int | None = os.stat(wal_index_path(path)).st_ino
        except FileNotFoundError:
            wal_index = None
        return cls(path, database, wal_index)

    def replaced(self) -> bool:
        """Whether another database is at the path now."""
        return os.stat(self.path).st_ino != self.database

    def check(self) -> None:
        """Raise MovedError unless the files at the path are still these."""
        try:
            database = os.stat(self.path).st_ino
        except FileNotFoundError as ex:
            raise MovedError(self.path, True, 'is gone') from ex
        if database != self.database:
            raise MovedError(self.path, False, 'was replaced')
        if self.wal_index is None:
            return
        try:
            wal_index = os.stat(wal_index_path(self.path)).st_ino
        except FileNotFoundError:
            wal_index = None
        if wal_index != self.wal_index:
            raise MovedError(self.path, False, 'had its WAL index (-shm) removed')


def wal_index_path(path: pathlib.Path) -> pathlib.Path:
    """The WAL index of the database at path."""
    return path.with_name(path.name + '-shm')
