"""The back ends a config names, and their opening at start.

One host: the catalog in SQLite and the images in the storage directory
(reconciled at start if the directory changed behind its back). Several
hosts: the catalog in PostgreSQL, the images in an S3-compatible store.
"""

from __future__ import annotations

import dataclasses
import functools
import pathlib
import secrets
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ..config import Config
from ..errors import CatalogError, ServiceKeyError
from ..storage.bytes import Bytes
from ..storage.directory import Directory
from . import reindex
from .database import SqliteCatalog
from .keys import KEY_SETTING, kept_secret
from .protocol import Catalog

if TYPE_CHECKING:
    from ..storage.objects import Objects
    from .postgres import PostgresCatalog


@dataclasses.dataclass(frozen=True)
class BackEnds:
    """Where the images and their catalog are kept, and how the catalog opens."""

    catalog: Catalog
    storage: Bytes
    # Opens the catalog at start; returns the service key kept in it (None:
    # ASGI_LOOK_SECRET signs).
    open: Callable[[], Awaitable[bytes | None]]


def back_ends(config: Config) -> BackEnds:
    """Return the back ends config names (both URLs or neither: see config.py)."""
    path = pathlib.Path(config.storage_path)
    if config.database_url is None or config.storage_url is None:
        sqlite = new_catalog(config)
        opened = functools.partial(open_catalog, sqlite, config)
        return BackEnds(sqlite, Directory(path), opened)
    postgres, objects = shared(config, config.database_url, config.storage_url)
    return BackEnds(postgres, objects, functools.partial(open_shared, postgres, config))


def shared(
    config: Config, database_url: str, storage_url: str
) -> tuple[PostgresCatalog, Objects]:
    """Return the catalog and the bytes several hosts share.

    Their drivers (psycopg, aiobotocore) are imported here: one host does not
    pay for them (some 30 MiB a worker).
    """
    from ..storage.objects import Objects
    from .postgres import PostgresCatalog

    objects = Objects(storage_url, pathlib.Path(config.storage_path))
    catalog = PostgresCatalog(database_url, objects, config.catalog_limits)
    return catalog, objects


async def open_shared(catalog: PostgresCatalog, config: Config) -> bytes | None:
    """Open the shared catalog; the service key every host signs with.

    Made by the first host that starts (in one statement: hosts that start
    at once keep the same), unless ASGI_LOOK_SECRET is set.
    """
    await catalog.open()
    if config.secret is not None:
        return None
    kept = await catalog.keep_setting(KEY_SETTING, secrets.token_hex(32))
    return str(kept).encode()


def new_catalog(config: Config) -> SqliteCatalog:
    """Return the (not yet opened) catalog of the storage directory config names."""
    catalog = SqliteCatalog(
        pathlib.Path(config.storage_path),
        config.catalog_limits,
        config.change_token_sources,
        config.clock,
    )
    # One put back from a copy may not list what the directory holds now.
    catalog.on_reopened = functools.partial(reindex.reindex, catalog, False)
    return catalog


async def open_catalog(catalog: SqliteCatalog, config: Config) -> bytes | None:
    """Open the catalog; return the service key kept in it (None: ASGI_LOOK_SECRET).

    Then reconcile the catalog with the directory, if the directory
    changed behind its back (see reindex.py), or the copy of the key was
    written (the next start finds the directory as it stays).
    """
    secret = None
    changed = await catalog.open()
    if config.secret is None:
        secret, written = await kept_secret(catalog)
        changed = changed or written
    if changed:
        await reindex.reindex(catalog, force=False)
    return secret


async def standalone_secret(config: Config) -> bytes:
    """Return the key of the storage directory a config names, outside a store."""
    directory = pathlib.Path(config.storage_path)
    catalog = SqliteCatalog(directory, config.catalog_limits)
    try:
        await catalog.open()
        secret, _ = await kept_secret(catalog)
    except (OSError, CatalogError) as ex:
        raise ServiceKeyError(
            f'cannot read or make the service key of {directory} (or set '
            f'ASGI_LOOK_SECRET): {getattr(ex, "strerror", None) or ex}'
        ) from ex
    finally:
        await catalog.close()
        catalog.shutdown()
    return secret
