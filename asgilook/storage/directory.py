"""The storage directory as the store's bytes: each stored JPEG one of its files."""

from __future__ import annotations

import contextlib
import logging
import pathlib
from collections.abc import AsyncIterator

from .. import blocking
from . import files, uploads
from .files import StoredFile

logger = logging.getLogger('asgilook.storage')


class Directory(uploads.Incoming):
    """Keep stored JPEGs as files of one directory (see bytes.Bytes).

    A file on its way in or out waits in `.incoming/` (files.py); the
    catalog renames it into place, or out of it, in the transaction of its
    row (catalog/changes.py).
    """

    variable = 'ASGI_LOOK_STORAGE_PATH'

    def __init__(self, path: pathlib.Path) -> None:
        super().__init__(path)
        self.where = str(path)
        # Leftovers are cleared at the first start only, when no upload of
        # this process can be under way (files of its pid are an earlier
        # process's); a lifespan may start again in the same process
        # (falcon.testing starts one per request).
        self._prepared = False

    async def prepare(self) -> None:
        """Make sure the directory exists and takes files; clear leftovers.

        OSError if it cannot be made or written.
        """
        if self._prepared:
            return
        left = await blocking.run(blocking.FILES, files.prepare_incoming, self.path)
        incoming = self.path / files.TEMPORARY_DIRECTORY
        for name, reason in left:
            logger.warning('ignoring %s in %s: %s', name, incoming, reason)
        self._prepared = True

    @contextlib.asynccontextmanager
    async def readable(self, name: str) -> AsyncIterator[pathlib.Path]:
        """The file a stored JPEG is, for a renderer to read."""
        yield self.path / name

    async def release(self) -> None:
        """Nothing to let go: the files stay where they are."""

    async def open(self, name: str) -> StoredFile:
        """Open a stored JPEG to read off the event loop; FileNotFoundError if gone."""
        return await StoredFile.open(self.path / name)
