"""`python -m asgilook migrate`: one host's images and catalog, into several hosts'.

The images of ASGI_LOOK_STORAGE_PATH (its SQLite catalog, reconciled with
the directory first, as a start does) are put in the bucket of
ASGI_LOOK_STORAGE_URL and listed in the catalog of ASGI_LOOK_DATABASE_URL,
in their order of upload and with their dates; the service key goes too,
so that the delete tokens issued so far stay good. Images listed there
already are passed over: a migration cut short is run again. The directory
is left as it was.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import pathlib

from ..config import Config
from ..errors import CatalogError, ServiceKeyError
from . import opening, reindex
from .database import SqliteCatalog
from .keys import KEY_SETTING
from .postgres import PostgresCatalog

logger = logging.getLogger('asgilook.migrate')

# Records read from the directory's catalog at once.
BATCH = 500


@dataclasses.dataclass
class Moved:
    """What a migration did: images moved, and passed over (moved before)."""

    moved: int = 0
    passed_over: int = 0


def run(config: Config, database_url: str, storage_url: str) -> int:
    """Migrate now; the exit status."""
    return asyncio.run(_status(config, database_url, storage_url))


async def _status(config: Config, database_url: str, storage_url: str) -> int:
    try:
        moved = await _run(config, database_url, storage_url)
    except (OSError, CatalogError, ServiceKeyError) as ex:
        logger.error(
            'cannot migrate %s: %s',
            config.storage_path,
            getattr(ex, 'strerror', None) or ex,
        )
        return 1
    logger.info(
        'migrated %s to %s: %d images moved, %d listed there already',
        config.storage_path,
        storage_url,
        moved.moved,
        moved.passed_over,
    )
    return 0


async def _run(config: Config, database_url: str, storage_url: str) -> Moved:
    directory = SqliteCatalog(pathlib.Path(config.storage_path), config.catalog_limits)
    catalog, objects = opening.shared(config, database_url, storage_url)
    try:
        # Not made if there is none: there is nothing to migrate then.
        await directory.open(create=False)
        await reindex.reindex(directory, force=False)
        await objects.prepare()
        await catalog.open()
        await _move_key(directory, catalog)
        return await migrate(directory, catalog)
    finally:
        await directory.close()
        directory.shutdown()
        await catalog.close()
        await objects.release()


async def migrate(
    directory: SqliteCatalog, catalog: PostgresCatalog, batch: int = BATCH
) -> Moved:
    """List every image of the directory in the shared catalog, oldest first."""
    moved = Moved()
    after = 0
    while True:
        page = await directory.page(after, batch)
        for record in page.records:
            source = directory.directory / record.name
            if await catalog.adopt(record, source):
                moved.moved += 1
            else:
                moved.passed_over += 1
        if page.next_after is None:
            return moved
        after = page.next_after


async def _move_key(directory: SqliteCatalog, catalog: PostgresCatalog) -> None:
    """Keep the directory's service key in the shared catalog, if it has none."""
    key = await directory.setting(KEY_SETTING)
    if key is None:
        return
    kept = await catalog.keep_setting(KEY_SETTING, key)
    if kept != key:
        raise ServiceKeyError(
            'the shared catalog has a service key of its own: the delete tokens '
            'issued for these images would be refused; migrate into a new '
            'database, or set ASGI_LOOK_SECRET on every host'
        )
