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
    """The catalog's files at its path are not those this process has open.

    gone: the database is not there; wal: its WAL is not the one open (what
    was committed into the one open is in no other).
    """

    def __init__(
        self, path: pathlib.Path, what: str, gone: bool = False, wal: bool = False
    ) -> None:
        super().__init__(f'{path} {what}')
        self.gone = gone
        self.wal = wal


@dataclasses.dataclass(frozen=True)
class Identity:
    """The database and WAL index files of an open catalog (their inodes)."""

    path: pathlib.Path
    database: int
    # None where there are none (a database not in WAL mode).
    wal_index: int | None
    wal: int | None

    @classmethod
    def of(cls, path: pathlib.Path) -> Identity:
        """Return the identity of the files at path now."""
        return cls(
            path,
            os.stat(path).st_ino,
            _inode(wal_index_path(path)),
            _inode(_wal_path(path)),
        )

    def replaced(self) -> bool:
        """Whether another database is at the path now."""
        return os.stat(self.path).st_ino != self.database

    def check(self) -> None:
        """Raise MovedError unless the files at the path are still these."""
        try:
            database = os.stat(self.path).st_ino
        except FileNotFoundError as ex:
            raise MovedError(self.path, 'is gone', gone=True) from ex
        if database != self.database:
            raise MovedError(self.path, 'was replaced')
        if self.wal is not None and _inode(_wal_path(self.path)) != self.wal:
            raise MovedError(self.path, 'had its WAL (-wal) removed', wal=True)
        if (
            self.wal_index is not None
            and _inode(wal_index_path(self.path)) != self.wal_index
        ):
            raise MovedError(self.path, 'had its WAL index (-shm) removed')


def wal_index_path(path: pathlib.Path) -> pathlib.Path:
    """The WAL index of the database at path."""
    return path.with_name(path.name + '-shm')


def _wal_path(path: pathlib.Path) -> pathlib.Path:
    return path.with_name(path.name + '-wal')


def _inode(path: pathlib.Path) -> int | None:
    try:
        return os.stat(path).st_ino
    except FileNotFoundError:
        return None
