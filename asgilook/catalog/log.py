"""The change log: every image listed or unlisted, numbered across the service.

The `changes` table gets a row in the transaction of each change (see
sql.py): its `serial` numbers the service's events, in the order the
changes were committed (one writer at a time), the same in every process.
A row of a listed image holds its record, so that its event can be told
after the image is gone. The log keeps the last `retained_changes` rows.

Every function blocks: the catalog runs them in its threads.
"""

from __future__ import annotations

import dataclasses
import sqlite3

from . import connections, sql
from .record import Record


@dataclasses.dataclass(frozen=True)
class Change:
    """One row of the change log."""

    serial: int
    kind: str
    image_id: str
    # What was listed; None if the change unlisted the image.
    record: Record | None


@dataclasses.dataclass(frozen=True)
class Span:
    """Which changes the log can tell: every one after `first_after`, to `last`."""

    first_after: int
    last: int

    def holds(self, serial: int) -> bool:
        """Whether every change after serial is in the log (or none came yet)."""
        return self.first_after <= serial <= self.last


def upgrade(writer: sqlite3.Connection) -> None:
    """Give a log of asgilook 0.5 or older the columns of the records.

    Its rows have none: the log tells changes from the upgrade on.
    """
    columns = {row[1] for row in writer.execute('PRAGMA table_info(changes)')}
    if set(sql.RECORD_DETAILS) <= columns:
        return
    with connections.transaction(writer, 'BEGIN IMMEDIATE'):
        for column in sql.RECORD_DETAILS:
            writer.execute(f'ALTER TABLE changes ADD COLUMN {column} INTEGER')
        sql.set_setting(writer, 'changes_told_after', sql.last_serial(writer))


def after(reader: sqlite3.Connection, serial: int, limit: int) -> list[Change]:
    """Return up to limit changes that follow serial, oldest first."""
    rows = reader.execute(
        f'SELECT serial, kind, {sql.CHANGE_COLUMNS} '
        'FROM changes WHERE serial > ? '
        # A listing logged before the log held records cannot be told.
        "AND (kind = 'deleted' OR width IS NOT NULL) "
        'ORDER BY serial LIMIT ?',
        (serial, limit),
    )
    return [
        Change(serial, kind, image_id, _record(image_id, details))
        for serial, kind, image_id, *details in rows
    ]


def span(reader: sqlite3.Connection) -> Span:
    """Return which changes the log can tell now."""
    with connections.transaction(reader):
        last = sql.last_serial(reader)
        oldest = reader.execute('SELECT min(serial) FROM changes').fetchone()[0]
        told_after = sql.setting(reader, 'changes_told_after') or 0
    first_after = last if oldest is None else oldest - 1
    return Span(max(first_after, told_after), last)


def _record(image_id: str, details: list[int | None]) -> Record | None:
    width, height, length, modified_ns = details
    if width is None or height is None or length is None or modified_ns is None:
        return None
    return Record(image_id, (width, height), length, modified_ns)
