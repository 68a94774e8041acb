"""`python -m asgilook reindex` for several hosts: the catalog against its bucket.

A row is committed only once its object is written, and a delete removes
the row before the object; so what the two can disagree on is:

- an object no row names: a host killed between writing it and committing
  its row, or an object a delete could not remove. It is never served;
  it is removed, once older than GRACE (an upload in flight has written its
  object and not yet committed its row);
- a row whose object is gone (removed by hand): it is unlisted, and told.

Rows (by id) and objects (by name, which begins with the id) are read side
by side in the same order, so that a million of each take no memory.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator

from ..config import Config
from ..errors import CatalogError
from ..storage import objects as stored
from ..storage.objects import Objects
from . import opening
from .postgres import PostgresCatalog
from .record import Record, is_image_name

logger = logging.getLogger('asgilook.reindex')

# An object no row names is removed once older than this many seconds.
GRACE = 600.0
# Rows read from the catalog at once.
BATCH = 1000


@dataclasses.dataclass
class Found:
    """What a reconciliation did: objects removed, rows unlisted."""

    listed: int = 0
    removed: list[str] = dataclasses.field(default_factory=list)
    unlisted: list[str] = dataclasses.field(default_factory=list)


async def reconcile(
    catalog: PostgresCatalog, objects: Objects, grace: float = GRACE
) -> Found:
    """Remove the objects no row names, unlist the rows whose object is gone.

    Only objects named as images are removed, once older than grace seconds.
    """
    found = Found()
    rows = _rows(catalog).__aiter__()
    row = await anext(rows, None)
    async for name, age in stored.names(objects):
        # Rows before this object's name have no object.
        while row is not None and row.name < name:
            await _unlist(catalog, row, found)
            row = await anext(rows, None)
        if row is not None and row.name == name:
            found.listed += 1
            row = await anext(rows, None)
        elif age > grace and is_image_name(name):
            await objects.remove(name)
            found.removed.append(name)
    while row is not None:
        await _unlist(catalog, row, found)
        row = await anext(rows, None)
    _log(objects.where, found)
    return found


async def _rows(catalog: PostgresCatalog) -> AsyncIterator[Record]:
    """Every row, by id in the order of bytes (as object names are listed)."""
    after = ''
    while batch := await catalog.rows_after(after, BATCH):
        for record in batch:
            yield record
        after = batch[-1].image_id


async def _unlist(catalog: PostgresCatalog, record: Record, found: Found) -> None:
    await catalog.unlist(record.image_id)
    found.unlisted.append(record.image_id)


def run(config: Config, database_url: str, storage_url: str) -> int:
    """Reconcile the shared catalog with its bucket now; the exit status."""
    return asyncio.run(_status(config, database_url, storage_url))


async def _status(config: Config, database_url: str, storage_url: str) -> int:
    try:
        await _run(config, database_url, storage_url)
    except (OSError, CatalogError) as ex:
        logger.error('cannot reindex %s: %s', storage_url, ex)
        return 1
    return 0


async def _run(config: Config, database_url: str, storage_url: str) -> Found:
    catalog, objects = opening.shared(config, database_url, storage_url)
    try:
        await objects.prepare()
        await catalog.open()
        return await reconcile(catalog, objects)
    finally:
        await catalog.close()
        await objects.release()


def _log(where: str, found: Found) -> None:
    for name in found.removed:
        logger.warning('removed %s from %s: no image is listed under it', name, where)
    for image_id in found.unlisted:
        logger.warning('unlisted image %s: its object is gone from %s', image_id, where)
    logger.log(
        logging.WARNING if found.removed or found.unlisted else logging.INFO,
        'reindexed %s: %d images listed, %d objects removed, %d rows of missing '
        'objects removed',
        where,
        found.listed,
        len(found.removed),
        len(found.unlisted),
    )
