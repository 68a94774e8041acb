"""Opening the catalog of a storage directory: its key, and a reindex if it changed."""

from __future__ import annotations

import functools
import pathlib

from ..config import Config
from ..errors import CatalogError, ServiceKeyError
from . import reindex
from .database import SqliteCatalog
from .keys import kept_secret


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
