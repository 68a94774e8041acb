"""The Store: the one door to stored images, their catalog and its change log."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import functools
import logging
import pathlib
from collections.abc import AsyncIterable, AsyncIterator

from .catalog import Catalog, Record, Removal, opening
from .catalog.commands import migrate_command, reindex_command
from .catalog.log import Change, Span
from .catalog.sql import MAX_INTEGER
from .config import Config
from .errors import ImageIdTakenError, ImageNotFoundError
from .http.image import Image, image_uri, thumbnail_uri
from .imaging.work import PillowWork
from .storage import faults, uploads
from .storage.bytes import Bytes, Stored
from .storage.gone import GoneFiles
from .storage.listing import Listing, LongLists

__all__ = [
    'MAX_INTEGER',
    'Change',
    'Image',
    'Listing',
    'Span',
    'Store',
    'image_from',
    'image_uri',
    'migrate_command',
    'reindex_command',
    'standalone_secret',
    'thumbnail_uri',
]

logger = logging.getLogger(__name__)

# How many ids an upload asks the uuid_generator for, each one taken already,
# before it gives up: random ids (uuid4) are taken next to never.
ID_TRIES = 8


class Store:
    """Keep the catalog of images and do the Pillow work off the event loop."""

    def __init__(self, config: Config) -> None:
        self._config = config
        # The settings are read once: a store serves one storage directory.
        back_ends = opening.back_ends(config)
        self._catalog: Catalog = back_ends.catalog
        # Opens it at start-up, and reads the service key kept in it.
        self._open = back_ends.open
        self._bytes: Bytes = back_ends.storage
        # The key kept in the catalog, once read (without ASGI_LOOK_SECRET).
        self._secret: bytes | None = None
        # Long lists sent now (see listing).
        self._long_lists: LongLists = LongLists(config.catalog_limits.long_lists)
        self._pillow = PillowWork(config)
        # Upload bodies waiting for the executor, in memory, all together.
        self._waiting = uploads.WaitingMemory(config.upload_memory)
        self._gone = GoneFiles(self._bytes.where, config.clock)

    async def get(self, image_id: str) -> Image | None:
        """Return the image listed under an id, or None."""
        with faults.storage_errors():
            record = await self._catalog.get(image_id)
        return None if record is None else self._image(record)

    async def image_version(self, image_id: str) -> str | None:
        """Return the version of the image listed under an id (Image.version)."""
        with faults.storage_errors():
            record = await self._catalog.get(image_id)
        return None if record is None else record.name

    async def listing(self, stream: bool = True) -> Listing[Image]:
        """Return every image, oldest upload first, with the catalog's version.

        Of one moment. More than `listed_at_once` images are read a batch at
        a time (`Listing.batches`) from a snapshot, if stream; else only the
        version is read (for an answer without a body). At most `long_lists`
        are read so at once: LongListsError beyond.
        """
        limits = self._config.catalog_limits
        with faults.storage_errors():
            records, version = await self._catalog.listing(limits.listed_at_once)
            if records is not None:
                return Listing(version, [self._image(record) for record in records])
            if not stream:
                return Listing(version)
            return await self._long_lists.read(
                self._catalog, limits.list_batch, self._image
            )

    async def catalog_version(self) -> str:
        """Return the catalog's version: it changes with every upload and delete."""
        with faults.storage_errors():
            return await self._catalog.version()

    async def page(
        self, after: int, limit: int, newest: bool = False
    ) -> tuple[list[Image], int | None]:
        """Return up to limit images uploaded after the one numbered after.

        Or, newest first, before it (after 0: from the newest). And the
        number to start the next page after, None if there is none.
        """
        with faults.storage_errors():
            page = await self._catalog.page(after, limit, newest)
        images = [self._image(record) for record in page.records]
        return images, page.next_after

    async def startup(self) -> None:
        """Make sure images can be stored, then open the catalog.

        The catalog is reconciled with the directory if it changed behind
        its back, and the service key kept in it is read (catalog/keys.py).
        StorageUnavailableError, naming the setting, if either fails.
        """
        storage = self._bytes
        with faults.startup_errors(storage.where, storage.variable):
            await storage.prepare()
        try:
            await self._open_catalog()
        except BaseException:
            # A server whose start failed stops without a shutdown: the
            # storage's connections go now (an HTTP session left open is
            # reported at the exit).
            await storage.release()
            raise

    async def _open_catalog(self) -> None:
        catalog = self._catalog
        with faults.startup_errors(catalog.where, catalog.variable):
            self._secret = await self._open()

    async def check(self) -> dict[str, bool]:
        """Say whether the catalog and the storage answer now, at little cost."""
        answers = await asyncio.gather(
            faults.answers(self._catalog.check()), faults.answers(self._bytes.check())
        )
        return dict(zip(('catalog', 'storage'), answers, strict=True))

    async def service_secret(self) -> bytes:
        """Return the service key kept in the catalog (catalog/keys.py).

        Read at start-up; an app served with no lifespan opens the catalog
        here (and clears no leftovers: uploads may be under way).
        """
        if self._secret is None:
            await self._open_catalog()
        # (Asked only without ASGI_LOOK_SECRET: then startup read it.)
        assert self._secret is not None
        return self._secret

    async def change_span(self) -> Span:
        """Return which changes the catalog's log can tell now."""
        with faults.storage_errors():
            return await self._catalog.change_span()

    async def changes(self, after: int, limit: int) -> list[Change]:
        """Return up to limit changes of the log after the one numbered after."""
        with faults.storage_errors():
            return await self._catalog.changes(after, limit)

    async def open(self, image: Image) -> Stored:
        """Open the stored JPEG of an image, to be read off the event loop.

        ImageNotFoundError if its file is gone (it is unlisted then).
        """
        async with self._gone_unlisted(image):
            with faults.storage_errors(gone=True):
                return await self._bytes.open(image.version)

    @contextlib.asynccontextmanager
    async def _gone_unlisted(self, image: Image) -> AsyncIterator[None]:
        """Unlist an image whose file is found gone: ImageNotFoundError."""
        try:
            yield
        except FileNotFoundError as ex:
            await self._gone.unlist(
                image.image_id, functools.partial(self.delete, image)
            )
            raise ImageNotFoundError(image.image_id) from ex

    async def save(self, chunks: AsyncIterable[bytes]) -> Image:
        """Store an upload as JPEG and catalog it under a new id.

        The body waits in memory or on disk (see storage/uploads.py); the JPEG is
        written under a temporary name, then renamed into place as its row is
        committed, so that no reader sees it half written. An upload never
        replaces an image: ImageIdTakenError if no new id was found.
        """
        converted, size = await uploads.receive(
            chunks,
            self._temporary_path(),
            self._waiting,
            self._config,
            self._pillow.threads,
        )
        temporary = self._temporary_path()
        try:
            with faults.storage_errors():
                await self._bytes.write(temporary, converted)
                record = await self._add(size, len(converted), temporary)
        except BaseException:
            # Renamed into place only if nothing failed.
            await self._bytes.discard(temporary)
            raise
        self._bytes.kept(temporary)
        return self._image(record)

    async def _add(
        self, size: tuple[int, int], length: int, temporary: pathlib.Path
    ) -> Record:
        """Catalog a written file under the first id of the generator not taken."""
        for _ in range(ID_TRIES):
            image_id = str(self._config.uuid_generator())
            record = await self._catalog.add(image_id, size, length, temporary)
            if record is not None:
                return record
        error = ImageIdTakenError(ID_TRIES)
        logger.warning(
            'upload refused: %s (the last %s): it must answer a new id at each call',
            error,
            image_id,
        )
        raise error

    async def delete(self, image: Image) -> None:
        """Remove an image; ImageNotFoundError if it is already gone."""
        with faults.storage_errors():
            removal = await self._catalog.remove(
                image.image_id, self._temporary_path('.deleted')
            )
        if removal is not Removal.REMOVED:
            raise ImageNotFoundError(image.image_id)

    def token(self) -> bytes | None:
        """Return a token that changes whenever any process changes the catalog."""
        return self._catalog.token()

    async def make_thumbnail(
        self, image: Image, size: tuple[int, int], extension: str
    ) -> bytes:
        """Render the image scaled to one of its ladder sizes, in a format.

        The format is one of imaging.formats.THUMBNAIL_FORMATS, by extension.

        RenderError if the process rendering it died, StoredImageError if
        its file is damaged, ImageNotFoundError if it is gone (then unlisted).
        """
        # A stored file is read by the render itself; an object, here.
        async with self._gone_unlisted(image), contextlib.AsyncExitStack() as stack:
            with faults.storage_errors(gone=True):
                readable = self._bytes.readable(image.version)
                source = await stack.enter_async_context(readable)
            return await self._pillow.resize(source, size, extension)

    async def close(self) -> None:
        """Let go of what a stopped server holds (it is taken again at start).

        The render processes, and the back ends' connections (SQLite's
        catalog stays open: see SqliteCatalog.release).
        """
        await self._pillow.close()
        await self._catalog.release()
        await self._bytes.release()

    async def shut(self) -> None:
        """Close everything, the catalog too: a store that serves no more.

        The render processes, the catalog's connections and threads.
        """
        await self.close()
        await self._catalog.close()
        self._catalog.shutdown()

    def _temporary_path(self, suffix: str = '.tmp') -> pathlib.Path:
        return self._bytes.temporary_path(suffix)

    def _image(self, record: Record) -> Image:
        return image_from(self._config, record)


async def standalone_secret(config: Config) -> bytes:
    """Return the service key of the directory a config names, outside a store."""
    return await opening.standalone_secret(config)


def image_from(config: Config, record: Record) -> Image:
    """Return the image a record of the catalog lists."""
    modified = datetime.datetime.fromtimestamp(record.modified_ns / 1e9, datetime.UTC)
    return Image(
        config, record.image_id, record.size, modified, record.length, record.name
    )
