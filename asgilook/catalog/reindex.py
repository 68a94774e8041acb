"""Reconcile the catalog with the files of the storage directory.

What asgilook changes itself is in the catalog the moment it is answered;
what is changed behind its back (files copied in or removed by hand, a
process killed between moving a file and committing its row, a storage
directory from a release before the catalog) is found by reading the whole
directory. That costs about a second per 100 000 files, so it is done:

- at start-up, only when the directory's time is not the one the catalog
  recorded at its last change (a file was added, removed or renamed since);
- on `python -m asgilook reindex`, always.

The directory, the catalog and the files named as images but not listed
(their JPEG frame must be the size their name says) are read in a
connection and a thread of the reindex's own, under no lock: uploads and
deletes go on meanwhile. What was found is then applied in transactions of
at most `reindex_batch` rows, each row checked again under the write lock:
a row is removed only if its file is still missing, a file listed (oldest
first) only if its id is still not and the file is still there. The
directory's time recorded at the end is the one read before the directory
was: what changed while it ran is looked for again at the next start.
Everything found is logged.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import pathlib
import sqlite3
from collections.abc import Awaitable, Callable

from .. import blocking
from ..config import Config
from ..errors import CatalogError, ServiceKeyError
from ..storage import files
from . import sql as catalog_sql
from .database import SqliteCatalog
from .keys import kept_secret
from .record import Record, holds
from .scan import Report, Scan, choose, compare, read_if_changed, scanning

logger = logging.getLogger('asgilook.reindex')

# Each of adopted, removed, ignored and redated is logged by name up to this many.
_LOGGED_BY_NAME = 20
# What a reindex awaits after reading the directory and before each batch.
Pause = Callable[[], Awaitable[None]]


async def reindex(
    catalog: SqliteCatalog, force: bool = True, pause: Pause | None = None
) -> Report | None:
    """Reconcile the catalog with its directory; log and return what was found.

    Unless forced, only if the directory changed since the catalog recorded
    it (None otherwise: nothing was read). pause: awaited after the
    directory is read and before each batch is applied (a test's seam).
    """
    # Its tables made, if it is new, before another connection reads them.
    await catalog.open()
    async with scanning(catalog.path, catalog.limits.write_wait) as scan:
        report = await _reconcile(catalog, scan, force, pause or _go_on)
    if report is not None:
        _log(catalog.directory, report)
    return report


def run(config: Config) -> int:
    """`python -m asgilook reindex`: reconcile the catalog now; the exit status."""
    directory = pathlib.Path(os.path.abspath(os.fspath(config.storage_path)))
    try:
        if not directory.is_dir():
            raise FileNotFoundError(errno.ENOENT, 'no such directory')
        asyncio.run(_run(directory, config))
    except (OSError, CatalogError, ServiceKeyError) as ex:
        logger.error(
            'cannot reindex %s: %s', directory, getattr(ex, 'strerror', None) or ex
        )
        return 1
    return 0


async def _run(directory: pathlib.Path, config: Config) -> Report | None:
    # What a start makes in the directory is made first: the next start
    # then finds the directory as this reindex recorded it.
    incoming = directory / files.TEMPORARY_DIRECTORY
    await blocking.run(blocking.FILES, _make_directory, incoming)
    catalog = SqliteCatalog(directory, config.catalog_limits)
    try:
        await catalog.open()
        if config.secret is None:
            # Made here, if this is the directory's first catalog, as a start
            # makes it: the next start finds the directory as it stays.
            await kept_secret(catalog)
        report = await reindex(catalog)
    finally:
        await catalog.close()
        catalog.shutdown()
    return report


def _make_directory(path: pathlib.Path) -> None:
    os.makedirs(path, exist_ok=True)


async def _go_on() -> None:
    pass


async def _reconcile(
    catalog: SqliteCatalog, scan: Scan, force: bool, pause: Pause
) -> Report | None:
    directory = catalog.directory
    batch = catalog.limits.reindex_batch
    scanned = await scan.run(
        functools.partial(read_if_changed, directory, force, batch)
    )
    if scanned is None:
        return None
    scanned_ns, report = scanned
    await pause()
    report.ignored += await scan.run(compare)
    report.ignored += await scan.run(functools.partial(choose, directory, batch))
    await _apply(catalog, scan, pause, report)
    report.listed = await catalog.locked(_count, scanned_ns)
    return report


async def _apply(
    catalog: SqliteCatalog, scan: Scan, pause: Pause, report: Report
) -> None:
    """Remove the rows of temp.missing, then list temp.adopted, a batch at a time."""
    directory = catalog.directory
    batch = catalog.limits.reindex_batch
    after = ''
    while missing := await scan.run(functools.partial(_missing_after, after, batch)):
        await pause()
        report.removed += await catalog.locked(
            functools.partial(_remove, directory, missing)
        )
        after = missing[-1][0]
    # Times are from 1970 (read_record), ids are not empty.
    last = (-1, '')
    while rows := await scan.run(functools.partial(_adopted_after, last, batch)):
        await pause()
        adopted, others = await catalog.locked(
            functools.partial(_adopt, directory, rows)
        )
        report.adopted += len(adopted)
        room = _LOGGED_BY_NAME - len(report.adopted_names)
        report.adopted_names += [record.name for record in adopted[:room]]
        report.ignored += others
        last = rows[-1][4], rows[-1][0]


# A row of temp.adopted: a row of images and the file's name.
_Adopted = tuple[str, int, int, int, int, str]


def _missing_after(
    after: str, batch: int, reader: sqlite3.Connection
) -> list[tuple[str, str]]:
    return reader.execute(
        'SELECT id, name FROM temp.missing WHERE id > ? ORDER BY id LIMIT ?',
        (after, batch),
    ).fetchall()


def _adopted_after(
    after: tuple[int, str], batch: int, reader: sqlite3.Connection
) -> list[_Adopted]:
    return reader.execute(
        'SELECT * FROM temp.adopted WHERE (modified_ns, id) > (?, ?) '
        'ORDER BY modified_ns, id LIMIT ?',
        (*after, batch),
    ).fetchall()


def _remove(
    directory: pathlib.Path, rows: list[tuple[str, str]], writer: sqlite3.Connection
) -> list[str]:
    """Unlist the rows whose file is still missing; return their ids."""
    gone = []
    for image_id, name in rows:
        record = catalog_sql.find(writer, image_id)
        # Not if it changed since (deleted, stored again), nor if its file is
        # there now (an upload committed while the directory was read).
        if record is None or record.name != name:
            continue
        if not holds(directory, record):
            gone.append(image_id)
    catalog_sql.delete_rows(writer, gone)
    return gone


def _adopt(
    directory: pathlib.Path, rows: list[_Adopted], writer: sqlite3.Connection
) -> tuple[list[Record], list[tuple[str, str]]]:
    """List the files whose id is still not listed, if they are still there.

    Return their records, and the files of ids listed since under another name.
    """
    adopted = []
    others = []
    for image_id, width, height, length, modified_ns, name in rows:
        record = Record(image_id, (width, height), length, modified_ns)
        listed = catalog_sql.find(writer, image_id)
        if listed is None and holds(directory, record):
            adopted.append(record)
        elif listed is not None and listed.name != name:
            others.append((name, 'another file of this image is listed'))
    catalog_sql.insert_rows(writer, adopted)
    return adopted, others


def _count(writer: sqlite3.Connection) -> int:
    count: int = writer.execute('SELECT count(*) FROM images').fetchone()[0]
    return count


def _log(directory: pathlib.Path, report: Report) -> None:
    for name in report.adopted_names:
        logger.warning('listed %s found in %s', name, directory)
    for image_id in report.removed[:_LOGGED_BY_NAME]:
        logger.warning(
            'unlisted image %s: its file is gone from %s', image_id, directory
        )
    for name, reason in report.ignored[:_LOGGED_BY_NAME]:
        logger.warning('ignoring %s in %s: %s', name, directory, reason)
    for name, reason in report.redated[:_LOGGED_BY_NAME]:
        logger.warning('dating %s in %s: %s', name, directory, reason)
    found = report.adopted or report.removed or report.ignored
    logger.log(logging.WARNING if found else logging.INFO, report.summary(directory))
