"""The commands of `python -m asgilook` that change the catalog, then exit.

For one host (the directory's catalog) or several (the shared catalog and
its bucket), as the settings say.
"""

from __future__ import annotations

import logging

from ..config import Config
from . import reindex

logger = logging.getLogger('asgilook.migrate')


def migrate_command(config: Config) -> int:
    """`python -m asgilook migrate`: the storage directory into the shared back ends."""
    if config.database_url is None or config.storage_url is None:
        logger.error(
            'nowhere to migrate to: set ASGI_LOOK_DATABASE_URL and '
            'ASGI_LOOK_STORAGE_URL (ASGI_LOOK_STORAGE_PATH names the directory)'
        )
        return 2
    # The drivers of several hosts, imported by their commands alone.
    from . import migrate

    return migrate.run(config, config.database_url, config.storage_url)


def reindex_command(config: Config) -> int:
    """`python -m asgilook reindex`: reconcile the catalog now; the exit status.

    With the directory's files, or, for several hosts, with the bucket.
    """
    if config.database_url is None or config.storage_url is None:
        return reindex.run(config)
    from . import reconcile

    return reconcile.run(config, config.database_url, config.storage_url)
