"""The shared catalog's SQL in PostgreSQL: its schema, rows, change log and token.

The same three tables as SQLite's (sql.py), shared by every host:

- `images`: one row per listed image, numbered (`seq`, a BIGSERIAL) in the
  order the uploads were committed: the order of the list and its pages;
- `changes`: the change log (`serial`, a BIGSERIAL: the ids of the events of
  every host), one row per image listed or unlisted;
- `settings`: the service key of every host.

Every change takes one lock (`WRITES`) for its transaction, so that rows are
committed in the order of their numbers: a page or an event stream that
reads after a number never misses one committed later. Each change notifies
`CHANNEL` with its serial as it commits: every host's token follows.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg

from .log import Change, Span
from .record import Record
from .sql import MAX_INTEGER

# The channel of NOTIFY on which each change says its serial.
CHANNEL = 'asgilook_changes'
# The advisory locks of asgilook's transactions: one for the schema, made
# once by the first host to start; one that orders the changes.
SCHEMA_LOCK = 0x61736769
WRITES = 0x6C6F6F6B

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    length BIGINT NOT NULL,
    modified_ns BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS changes (
    serial BIGSERIAL PRIMARY KEY,
    kind TEXT NOT NULL CHECK (kind IN ('created', 'deleted')),
    image_id TEXT NOT NULL,
    width INTEGER,
    height INTEGER,
    length BIGINT,
    modified_ns BIGINT
);
CREATE TABLE IF NOT EXISTS settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

COLUMNS = 'id, width, height, length, modified_ns'
Row = tuple[str, int, int, int, int]

Connection = psycopg.AsyncConnection[Any]


async def make_schema(connection: Connection) -> None:
    """Make the tables if they are not there, once for hosts that start at once."""
    async with connection.transaction():
        await connection.execute('SELECT pg_advisory_xact_lock(%s)', (SCHEMA_LOCK,))
        await connection.execute(SCHEMA)


async def find(connection: Connection, image_id: str) -> Record | None:
    """Return the record of an image, or None if none is listed."""
    cursor = await connection.execute(
        f'SELECT {COLUMNS} FROM images WHERE id = %s', (image_id,)
    )
    row = await cursor.fetchone()
    return None if row is None else record_of(row)


async def version(connection: Connection) -> str:
    """What the list shows: the serial of the last change (it moves with each)."""
    cursor = await connection.execute('SELECT coalesce(max(serial), 0) FROM changes')
    row = await cursor.fetchone()
    assert row is not None
    return f'{row[0]:020d}'


async def select_all(connection: Connection, at_most: int) -> list[Record] | None:
    """Return every record in upload order; None if there are more than at_most."""
    cursor = await connection.execute(
        f'SELECT {COLUMNS} FROM images ORDER BY seq LIMIT %s', (at_most + 1,)
    )
    rows = await cursor.fetchall()
    if len(rows) > at_most:
        return None
    return [record_of(row) for row in rows]


async def select_page(
    connection: Connection, after: int, limit: int, newest: bool
) -> tuple[list[Record], int | None]:
    """Return up to limit records that follow seq after, and the last one's seq.

    In upload order, or newest first (after 0 is the start in both).
    """
    if newest:
        where, order, after = 'seq < %s', 'DESC', after or MAX_INTEGER
    else:
        where, order = 'seq > %s', 'ASC'
    cursor = await connection.execute(
        f'SELECT {COLUMNS}, seq FROM images WHERE {where} '
        f'ORDER BY seq {order} LIMIT %s',
        (after, limit + 1),
    )
    rows = await cursor.fetchall()
    records = [record_of(row[:5]) for row in rows[:limit]]
    return records, rows[limit - 1][5] if len(rows) > limit else None


async def rows_after(connection: Connection, image_id: str, limit: int) -> list[Record]:
    """Return up to limit records whose id follows image_id, by id's bytes."""
    cursor = await connection.execute(
        f'SELECT {COLUMNS} FROM images WHERE id COLLATE "C" > %s '
        'ORDER BY id COLLATE "C" LIMIT %s',
        (image_id, limit),
    )
    return [record_of(row) for row in await cursor.fetchall()]


async def changes_after(
    connection: Connection, serial: int, limit: int
) -> list[Change]:
    """Return up to limit changes that follow serial, oldest first."""
    cursor = await connection.execute(
        'SELECT serial, kind, image_id, width, height, length, modified_ns '
        'FROM changes WHERE serial > %s ORDER BY serial LIMIT %s',
        (serial, limit),
    )
    found = []
    for serial, kind, image_id, *details in await cursor.fetchall():
        width, height, length, modified_ns = details
        record = (
            None
            if width is None
            else Record(image_id, (width, height), length, modified_ns)
        )
        found.append(Change(serial, kind, image_id, record))
    return found


async def span(connection: Connection) -> Span:
    """Return which changes the log can tell now."""
    cursor = await connection.execute(
        'SELECT min(serial), coalesce(max(serial), 0) FROM changes'
    )
    row = await cursor.fetchone()
    assert row is not None
    oldest, last = row
    return Span(last if oldest is None else oldest - 1, last)


async def insert(connection: Connection, record: Record) -> bool:
    """List a record, and log it; False if its id is listed already (nothing done)."""
    cursor = await connection.execute(
        f'INSERT INTO images ({COLUMNS}) VALUES (%s, %s, %s, %s, %s) '
        'ON CONFLICT (id) DO NOTHING RETURNING seq',
        row(record),
    )
    if await cursor.fetchone() is None:
        return False
    await _log(connection, 'created', record.image_id, record)
    return True


async def delete(connection: Connection, image_id: str) -> Record | None:
    """Unlist an image, and log it; return its record, None if none was listed."""
    cursor = await connection.execute(
        f'DELETE FROM images WHERE id = %s RETURNING {COLUMNS}', (image_id,)
    )
    found = await cursor.fetchone()
    if found is None:
        return None
    await _log(connection, 'deleted', image_id, None)
    return record_of(found)


async def _log(
    connection: Connection, kind: str, image_id: str, record: Record | None
) -> None:
    details = (None,) * 4 if record is None else row(record)[1:]
    cursor = await connection.execute(
        'INSERT INTO changes (kind, image_id, width, height, length, modified_ns) '
        'VALUES (%s, %s, %s, %s, %s, %s) RETURNING serial',
        (kind, image_id, *details),
    )
    found = await cursor.fetchone()
    assert found is not None
    await connection.execute('SELECT pg_notify(%s, %s)', (CHANNEL, str(found[0])))


async def trim(connection: Connection, retained: int) -> None:
    """Keep the last retained rows of the change log."""
    await connection.execute(
        'DELETE FROM changes WHERE serial <= '
        '(SELECT coalesce(max(serial), 0) FROM changes) - %s',
        (retained,),
    )


async def setting(connection: Connection, name: str) -> str | None:
    """Return the value of a setting, or None."""
    cursor = await connection.execute(
        'SELECT value FROM settings WHERE name = %s', (name,)
    )
    found = await cursor.fetchone()
    return None if found is None else str(found[0])


async def keep_setting(connection: Connection, name: str, value: object) -> str:
    """Give a setting a value if it has none; return the value it has then."""
    await connection.execute(
        'INSERT INTO settings (name, value) VALUES (%s, %s) '
        'ON CONFLICT (name) DO NOTHING',
        (name, str(value)),
    )
    kept = await setting(connection, name)
    assert kept is not None
    return kept


def row(record: Record) -> Row:
    """Return the row of a record, in the order of COLUMNS."""
    return (record.image_id, *record.size, record.length, record.modified_ns)


def record_of(found: Any) -> Record:
    """Return the record of a row of COLUMNS."""
    image_id, width, height, length, modified_ns = found
    return Record(image_id, (width, height), length, modified_ns)


class Snapshot:
    """Every listed record in upload order, as of the moment it began."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.version = ''
        self.count = 0

    async def begin(self) -> None:
        connection = self.connection
        await connection.execute('BEGIN ISOLATION LEVEL REPEATABLE READ')
        self.version = await version(connection)
        cursor = await connection.execute('SELECT count(*) FROM images')
        found = await cursor.fetchone()
        assert found is not None
        self.count = found[0]
        await connection.execute(
            f'DECLARE listing NO SCROLL CURSOR FOR SELECT {COLUMNS} '
            'FROM images ORDER BY seq'
        )

    async def batch(self, size: int) -> list[Record]:
        cursor = await self.connection.execute(
            f'FETCH FORWARD {int(size)} FROM listing'
        )
        return [record_of(row) for row in await cursor.fetchall()]

    async def end(self) -> None:
        await self.connection.execute('ROLLBACK')


@contextlib.asynccontextmanager
async def repeatable(connection: Connection) -> AsyncIterator[None]:
    """A read transaction that sees one moment."""
    async with connection.transaction():
        await connection.execute('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ')
        yield
