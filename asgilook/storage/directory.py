"""The storage directory the settings name now: its catalog, its start, its errors.

`storage_path` may be replaced on the settings while the service runs (tests
do): each directory gets a catalog of its own, and the catalogs of the
directories named before are closed with the store.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import logging
import pathlib
from collections.abc import Iterator

from .. import blocking, logs
from ..auth import signing
from ..catalog import Catalog, reindex
from ..config import Config
from ..errors import (
    CatalogError,
    CatalogFullError,
    StorageFullError,
    StorageUnavailableError,
)
from . import files

logger = logging.getLogger('asgilook.storage')

# What a write that ran out of room fails with: the disk, the quota, a size limit.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class Storage:
    """Keep the catalog of the storage directory the settings name."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._raw_directory = config.storage_path
        self._catalog = self._new_catalog(pathlib.Path(config.storage_path))
        # Storage directories whose leftovers were cleared: at the first
        # start, when no upload of this process can be under way (files of
        # its pid are an earlier process's). One store serves a worker process.
        self._cleared: set[pathlib.Path] = set()
        # Catalogs of directories the setting named before (closed at close()).
        self._retired: list[Catalog] = []
        # The key kept in the catalog, once read (without ASGI_LOOK_SECRET).
        self.secret: bytes | None = None

    @property
    def catalog(self) -> Catalog:
        """The catalog of the storage directory the settings name now."""
        raw = self._config.storage_path
        # The same object while the setting is: every request asks.
        if raw is not self._raw_directory:
            directory = pathlib.Path(raw)
            if directory != self._catalog.directory:
                self._retired.append(self._catalog)
                self._catalog = self._new_catalog(directory)
            self._raw_directory = raw
        return self._catalog

    def temporary_path(self, suffix: str = '.tmp') -> pathlib.Path:
        """Return a new name for a file on its way in or out (see storage/files.py)."""
        return files.temporary_path(self.catalog.directory, suffix)

    async def startup(self) -> None:
        """Make sure the storage directory exists and takes files.

        Once per directory: a lifespan may start again in the same process
        (falcon.testing starts one per request), and asks nothing of a thread.
        """
        catalog = self.catalog
        if catalog.directory in self._cleared:
            return
        with self._startup_errors():
            left = await blocking.run(
                blocking.FILES, files.prepare_incoming, catalog.directory
            )
        for name, reason in left:
            logger.warning('ignoring %s in %s: %s', name, catalog.incoming, reason)
        self._cleared.add(catalog.directory)

    async def open_catalog(self) -> None:
        """Open the catalog, and read the service key kept in it (auth/signing.py).

        Then reconcile the catalog with the directory, if the directory
        changed behind its back (see catalog/reindex.py), or the copy of the key was
        written (the next start finds the directory as it stays).
        """
        catalog = self.catalog
        with self._startup_errors():
            changed = await catalog.open()
            if self._config.secret is None:
                self.secret, written = await signing.kept_secret(catalog)
                changed = changed or written
            if changed:
                await reindex.reindex(catalog, force=False)

    async def service_secret(self) -> bytes:
        """Return the service key kept in the catalog.

        Read when the catalog is opened at start-up; an app served with no
        lifespan opens it here.
        """
        if self.secret is None:
            await self.open_catalog()
        # (Asked only without ASGI_LOOK_SECRET: then open_catalog read it.)
        assert self.secret is not None
        return self.secret

    async def close(self) -> None:
        """Close the catalogs of directories the settings no longer name.

        The current one stays open: closing the last connection of a database
        checkpoints its WAL to disk (some 20 ms), and a lifespan may start
        again in the same process (falcon.testing starts one per request).
        The end of the process closes it; what is committed is in the WAL.
        """
        retired, self._retired = self._retired, []
        for catalog in retired:
            await catalog.close()
            catalog.shutdown()

    def _new_catalog(self, directory: pathlib.Path) -> Catalog:
        config = self._config
        catalog = Catalog(
            directory,
            config.catalog_limits,
            config.change_token_sources,
            config.clock,
        )
        # One put back from a copy may not list what the directory holds now.
        catalog.on_reopened = functools.partial(reindex.reindex, catalog, False)
        return catalog

    @contextlib.contextmanager
    def _startup_errors(self) -> Iterator[None]:
        try:
            yield
        except (OSError, CatalogError) as ex:
            raise StorageUnavailableError(
                f'cannot store images in {self.catalog.directory} '
                f'(ASGI_LOOK_STORAGE_PATH): {getattr(ex, "strerror", None) or ex}'
            ) from ex


@contextlib.contextmanager
def storage_errors() -> Iterator[None]:
    """Turn a failed read or write of the storage into the store's word for it.

    A file system that fails is said once a minute for each kind of failure
    (the catalog says its own: catalog/faults.py).
    """
    try:
        yield
    except CatalogFullError as ex:
        raise StorageFullError from ex
    except CatalogError as ex:
        raise StorageUnavailableError from ex
    except OSError as ex:
        full = ex.errno in _NO_ROOM
        _say(ex, full)
        raise (StorageFullError if full else StorageUnavailableError) from ex


# Each kind of failure of the file system (its errno), said once a minute.
_FAILURES: collections.defaultdict[int | None, logs.Throttle] = collections.defaultdict(
    logs.Throttle
)


def _say(ex: OSError, full: bool) -> None:
    more = _FAILURES[ex.errno].take()
    if more is None:
        return
    if full:
        logger.warning(
            'the storage has no room (%s): uploads answer 507 until it has%s', ex, more
        )
    else:
        logger.warning(
            'the storage cannot be read or written (%s): what needs it answers '
            '503 until it can%s',
            ex,
            more,
        )
