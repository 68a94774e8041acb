"""Changes of the catalog: each one transaction that also moves a file.

An upload's file is renamed into place, a deleted image's file out of the
way (to `.incoming/`), inside the transaction that adds or removes its row,
under SQLite's write lock: whatever process dies wherever, a file is served
only if its row is committed, and a listed row lost its file only if the
directory's time moved after the catalog recorded it, which the next start
notices (and then reads the whole directory: see catalog/reindex.py).

Every function blocks: the catalog runs them in its writer thread.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import os
import pathlib
import sqlite3
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from . import connections, sql
from .identity import Identity
from .record import Record

_T = TypeVar('_T')


class Removal(enum.Enum):
    """What removing an image found."""

    REMOVED = 'removed'
    # Its file was gone: only its row was removed.
    FILE_GONE = 'file gone'
    NOT_LISTED = 'not listed'


@dataclasses.dataclass(frozen=True)
class Changes:
    """Change the catalog of a directory through its writer connection."""

    writer: sqlite3.Connection
    directory: pathlib.Path
    retained_changes: int
    # The files the writer opened: each change checks them before it commits.
    identity: Identity

    def insert(
        self, image_id: str, size: tuple[int, int], length: int, temporary: pathlib.Path
    ) -> Record | None:
        """List a new image dated now, renaming its file into place.

        Return its record; None if an image is listed under its id already
        (then nothing is written, and the file stays where it is).
        """
        with self._writing() as writer:
            # Under the write lock: no other process takes the id meanwhile.
            if sql.find(writer, image_id) is not None:
                return None
            before = sql.directory_time(self.directory)
            # Dated inside the lock: the dates follow the order of the list.
            record = Record(image_id, size, length, time.time_ns())
            os.utime(temporary, ns=(record.modified_ns, record.modified_ns))
            sql.insert_rows(writer, [record])
            path = self.directory / record.name
            os.replace(temporary, path)
            self._commit_moved(before, path, temporary)
        return record

    def delete(self, image_id: str, trash: pathlib.Path) -> Removal:
        """Unlist an image, moving its file to trash, then removing it."""
        with self._writing() as writer:
            listed = sql.find(writer, image_id)
            if listed is None:
                return Removal.NOT_LISTED
            sql.delete_rows(writer, [image_id])
            path = self.directory / listed.name
            before = sql.directory_time(self.directory)
            try:
                os.replace(path, trash)
            except FileNotFoundError:
                # Removed by hand: the row goes too.
                self._record_directory(before)
                return Removal.FILE_GONE
            self._commit_moved(before, trash, path)
        with contextlib.suppress(OSError):
            os.remove(trash)
        return Removal.REMOVED

    def locked(
        self, function: Callable[[sqlite3.Connection], _T], scanned: int | None
    ) -> _T:
        """Run function(writer) under the write lock, in one transaction.

        Committed with the directory's time a reindex read before it read the
        directory: scanned, or none while what it found is not all applied.
        """
        with self._writing() as writer:
            result = function(writer)
            sql.record_reindexed(writer, scanned, self.retained_changes)
        return result

    def keep(self, name: str, value: object) -> Any:
        """Give a setting value if it has none; return the value it has then."""
        with self._writing() as writer:
            writer.execute(
                'INSERT OR IGNORE INTO settings (name, value) VALUES (?, ?)',
                (name, value),
            )
            return sql.setting(writer, name)

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """Run a change under the write lock, committed only to the files open.

        Removed or replaced meanwhile (identity.py), nothing is committed.
        """
        writer = self.writer
        with connections.transaction(writer, 'BEGIN IMMEDIATE', self.identity.check):
            yield writer

    def _commit_moved(
        self, before: int, moved: pathlib.Path, origin: pathlib.Path
    ) -> None:
        """Commit a change whose file was moved from origin; move it back if not."""
        try:
            self._record_directory(before)
            self.identity.check()
            self.writer.execute('COMMIT')
        except BaseException:
            os.replace(moved, origin)
            raise

    def _record_directory(self, before: int) -> None:
        sql.record_directory(self.writer, self.directory, self.retained_changes, before)
