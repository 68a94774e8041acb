"""The catalog's SQL: its schema, connections, transactions, rows and digest.

- `images`: one row per listed image, numbered (`seq`) in the order the
  uploads were committed: the order of the list and of its pages;
- `changes`: the change log, one row per image added or removed, numbered
  across the service (see log.py);
- `settings`: the digest of what the catalog lists (its version: the XOR of
  a hash of each record, moved by each change), and the storage directory's
  time as the catalog last left it.

Every function blocks: the catalog runs them in its threads.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from .connections import transaction
from .record import Record

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    length INTEGER NOT NULL,
    modified_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    serial INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('created', 'deleted')),
    image_id TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    length INTEGER,
    modified_ns INTEGER
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value NOT NULL
) WITHOUT ROWID;
"""
# What a record holds besides its id (in images, and in the change log).
RECORD_DETAILS = ('width', 'height', 'length', 'modified_ns')
COLUMNS = ', '.join(('id', *RECORD_DETAILS))
# The same, in the change log.
CHANGE_COLUMNS = ', '.join(('image_id', *RECORD_DETAILS))
# SQLite's largest integer (its integers are signed 64-bit ones): no seq or
# serial is larger.
MAX_INTEGER = 2**63 - 1
# A row of the images table's columns (those of COLUMNS).
Row = tuple[str, int, int, int, int]
_EMPTY_DIGEST = f'{0:032x}'


def file_name_sql(table: str) -> str:
    """Return the SQL of the file name of a row of table, as file_name() makes it."""
    return (
        f"{table}.id || '.' || {table}.width || 'x' || {table}.height || '.' "
        f"|| {table}.length || '.jpeg'"
    )


def prepare(writer: sqlite3.Connection, directory: pathlib.Path) -> bool:
    """Make the tables if there are none; return whether to reindex.

    That is, whether the directory's time is not the one last recorded.
    """
    with transaction(writer, 'BEGIN IMMEDIATE'):
        made = writer.execute(
            "SELECT 1 FROM sqlite_master WHERE name = 'changes'"
        ).fetchone()
        for statement in SCHEMA.split(';')[:-1]:
            writer.execute(statement)
        if made is None and _served_before(directory):
            _number_from_now(writer)
        recorded = setting(writer, 'directory_mtime_ns')
        return bool(recorded != directory_time(directory))


def _served_before(directory: pathlib.Path) -> bool:
    """Whether a directory holds what another catalog's service left there."""
    with os.scandir(directory) as entries:
        return any(not entry.name.startswith(_OWN_DIRECTORIES) for entry in entries)


# What a start makes in a storage directory before its catalog (and what
# the root of a file system holds from its making).
_OWN_DIRECTORIES = ('.catalog', '.incoming', 'lost+found')


def _number_from_now(writer: sqlite3.Connection) -> None:
    """Number a new catalog's changes and uploads after the microseconds since 1970.

    A catalog made anew where another served (removed, damaged): the ids of
    its events are then above any the one before gave, so that a client
    resuming from one of those is told to read the list again (a reset),
    never given what follows as if nothing had changed. (Safe for a
    JavaScript number until the year 2255.)
    """
    now = time.time_ns() // 1000
    writer.executemany(
        'INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)',
        [('changes', now), ('images', now)],
    )


def directory_time(directory: pathlib.Path) -> int:
    """Return the directory's time (st_mtime_ns) as the catalog records it.

    Wrapped into SQLite's integers: a time past 2262 (a clock set far ahead,
    a `touch` by hand) is recorded too, and still moves when the time does.
    """
    return (directory.stat().st_mtime_ns + 2**63) % 2**64 - 2**63


def insert_rows(writer: sqlite3.Connection, records: list[Record]) -> None:
    """List records (in this order) and log their creation; inside a transaction."""
    _move_digest(writer, records)
    writer.executemany(
        f'INSERT INTO images ({COLUMNS}) VALUES (?, ?, ?, ?, ?)',
        [row(record) for record in records],
    )
    writer.executemany(
        f'INSERT INTO changes (kind, {CHANGE_COLUMNS}) '
        "VALUES ('created', ?, ?, ?, ?, ?)",
        [row(record) for record in records],
    )


def delete_rows(writer: sqlite3.Connection, image_ids: list[str]) -> None:
    """Unlist images and log their removal; inside a transaction."""
    ids = [(image_id,) for image_id in image_ids]
    removed = [find(writer, image_id) for image_id in image_ids]
    _move_digest(writer, [record for record in removed if record is not None])
    writer.executemany('DELETE FROM images WHERE id = ?', ids)
    writer.executemany(
        "INSERT INTO changes (kind, image_id) VALUES ('deleted', ?)", ids
    )


def record_directory(
    writer: sqlite3.Connection,
    directory: pathlib.Path,
    retained_changes: int,
    before: int,
) -> None:
    """Record the directory's time as this change leaves it; trim the change log.

    before: the directory's time (directory_time) before this change's own
    move of a file. If it is not the time recorded, something else changed
    the directory since (a file copied in or removed by hand, a process that
    died between its move and its commit): the old time stays, and the next
    start reindexes.
    """
    if before == setting(writer, 'directory_mtime_ns'):
        set_setting(writer, 'directory_mtime_ns', directory_time(directory))
    trim_changes(writer, retained_changes)


def record_reindexed(
    writer: sqlite3.Connection, scanned: int | None, retained_changes: int
) -> None:
    """Record the directory's time a reindex read before reading the directory.

    None while what it found is not all applied: a process that dies before
    leaves no time recorded, and the next start reindexes. Trim the change log.
    """
    if scanned is None:
        writer.execute("DELETE FROM settings WHERE name = 'directory_mtime_ns'")
    else:
        set_setting(writer, 'directory_mtime_ns', scanned)
    trim_changes(writer, retained_changes)


def trim_changes(writer: sqlite3.Connection, retained_changes: int) -> None:
    """Keep the last retained_changes rows of the change log."""
    # A range of the primary key: a few rows, or none, at each change.
    writer.execute(
        'DELETE FROM changes WHERE serial <= ?',
        (last_serial(writer) - retained_changes,),
    )


def version(connection: sqlite3.Connection) -> str:
    """What the catalog shows: the XOR of its records' digests, in hex."""
    digest = setting(connection, 'digest')
    return _EMPTY_DIGEST if digest is None else str(digest)


def find(connection: sqlite3.Connection, image_id: str) -> Record | None:
    """Return the record of an image, or None if none is listed."""
    found: Row | None = connection.execute(
        f'SELECT {COLUMNS} FROM images WHERE id = ?', (image_id,)
    ).fetchone()
    return None if found is None else record_of(found)


def select_all(
    reader: sqlite3.Connection, at_most: int
) -> tuple[list[Record] | None, str]:
    """Return every record in upload order, and the version, of one moment.

    None for the records if there are more than at_most (see snapshot.py).
    """
    with transaction(reader):
        shown = version(reader)
        rows = reader.execute(
            f'SELECT {COLUMNS} FROM images ORDER BY seq LIMIT ?', (at_most + 1,)
        ).fetchall()
    if len(rows) > at_most:
        return None, shown
    return [record_of(row) for row in rows], shown


def select_page(
    reader: sqlite3.Connection, after: int, limit: int, newest: bool = False
) -> tuple[list[Record], int | None]:
    """Return up to limit records that follow seq after, and the last one's seq.

    In upload order, or newest first (after 0 is the start in both). The
    seq is None if no record follows this page.
    """
    if newest:
        query = f'SELECT {COLUMNS}, seq FROM images WHERE seq < ? ORDER BY seq DESC'
        after = after or MAX_INTEGER
    else:
        query = f'SELECT {COLUMNS}, seq FROM images WHERE seq > ? ORDER BY seq'
    rows = reader.execute(f'{query} LIMIT ?', (after, limit + 1)).fetchall()
    records = [record_of(row) for row in rows[:limit]]
    return records, rows[limit - 1][5] if len(rows) > limit else None


def row(record: Record) -> Row:
    """Return the row of a record, in the order of COLUMNS."""
    return (record.image_id, *record.size, record.length, record.modified_ns)


def record_of(row: Row) -> Record:
    """Return the record of a row of COLUMNS."""
    return Record(row[0], (row[1], row[2]), row[3], row[4])


def setting(connection: sqlite3.Connection, name: str) -> Any:
    """Return the value of a setting, or None if it has none."""
    found = connection.execute(
        'SELECT value FROM settings WHERE name = ?', (name,)
    ).fetchone()
    return None if found is None else found[0]


def set_setting(connection: sqlite3.Connection, name: str, value: object) -> None:
    connection.execute(
        'INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)', (name, value)
    )


def _move_digest(writer: sqlite3.Connection, records: Iterable[Record]) -> None:
    """Add or take records out of the catalog's digest (the same XOR)."""
    digest = int(setting(writer, 'digest') or '0', 16)
    for record in records:
        identity = f'{record.name}@{record.modified_ns}'.encode()
        digest ^= int.from_bytes(hashlib.blake2b(identity, digest_size=16).digest())
    set_setting(writer, 'digest', f'{digest:032x}')


def last_serial(connection: sqlite3.Connection) -> int:
    found = connection.execute(
        "SELECT seq FROM sqlite_sequence WHERE name = 'changes'"
    ).fetchone()
    return 0 if found is None else int(found[0])
