"""Stored images: their files, their thumbnails and the Pillow work."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import pathlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import blocking, logs
from .catalog import Catalog, Record, Removal, file_name
from .catalog.listing import Batches, Listing
from .config import Config
from .errors import (
    ImageIdTakenError,
    ImageNotFoundError,
    LongListsError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)
from .imaging import convert
from .imaging.renderers import RenderProcesses
from .imaging.screening import TILE_BOUND, tile_size
from .storage import uploads
from .storage.directory import Storage
from .storage.directory import storage_errors as _storage_errors
from .storage.files import StoredFile

logger = logging.getLogger(__name__)

# How many ids an upload asks the uuid_generator for, each one taken already,
# before it gives up: random ids (uuid4) are taken next to never.
ID_TRIES = 8
# An image whose file is gone and that cannot be unlisted is said at most
# this often, for each cause (a full disk, a storage that cannot be written).
STAYS_LISTED_LOG_INTERVAL = 60.0


def image_uri(image_id: str) -> str:
    """Return the one URL of the stored JPEG of an image."""
    return f'/images/{image_id}.jpeg'


def thumbnail_uri(image_id: str, size: tuple[int, int]) -> str:
    """Return the one URL of an image's thumbnail at size."""
    return f'/thumbnails/{image_id}/{size[0]}x{size[1]}.jpeg'


class Image:
    """One stored image: its identity, size and the URIs it is served under."""

    def __init__(
        self,
        config: Config,
        image_id: str,
        size: tuple[int, int],
        modified: datetime.datetime | None = None,
        length: int = 0,
    ) -> None:
        self._config = config
        self.image_id = image_id
        self.size = size
        self.modified = modified or datetime.datetime.now(datetime.UTC)
        self.length = length

    @classmethod
    def from_record(cls, config: Config, record: Record) -> Image:
        """Return the image a record of the catalog lists."""
        modified = datetime.datetime.fromtimestamp(
            record.modified_ns / 1e9, datetime.UTC
        )
        return cls(config, record.image_id, record.size, modified, record.length)

    @property
    def path(self) -> pathlib.Path:
        """The image's stored file."""
        name = file_name(self.image_id, self.size, self.length)
        return pathlib.Path(self._config.storage_path) / name

    @property
    def version(self) -> str:
        """What the image's answers are computed from: its stored file's name.

        The name holds the id, the size and the length of the file; another
        file under the same id has another name.
        """
        # Not self.path.name: a cache's lookup asks it, and a Path costs more.
        return file_name(self.image_id, self.size, self.length)

    @property
    def uri(self) -> str:
        """The one URL of the image's stored JPEG."""
        return image_uri(self.image_id)

    @property
    def etag(self) -> str:
        """A strong validator of the stored file: another file, another tag."""
        identity = f'{self.version}@{self.modified.isoformat()}'
        return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()

    def thumbnail_etag(self, size: tuple[int, int]) -> str:
        """A strong validator of the thumbnail of this image at size."""
        quality = self._config.jpeg_quality
        identity = f'{self.etag}/{size[0]}x{size[1]}/q{quality}/{convert.RENDERING}'
        return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()

    def serialize(self) -> dict[str, Any]:
        """Return the image object of the HTTP API."""
        return {
            'id': self.image_id,
            'image': self.uri,
            'modified': _http_date(self.modified),
            'size': list(self.size),
            'thumbnails': self.thumbnails(),
        }

    def thumbnail_sizes(self) -> list[tuple[int, int]]:
        """Return the ladder of sizes this image is rendered at, largest first.

        Its halvings, and, if neither they nor the image fit a gallery tile
        (a longer side of TILE_BOUND at most), the image fitted to one.
        """
        sizes = list(_reductions(self.size, self._config.min_thumb_size))
        if min(max(size) for size in [self.size, *sizes]) > TILE_BOUND:
            sizes.append(tile_size(self.size))
        return sizes

    def thumbnails(self) -> list[str]:
        """Return the URLs of the image's thumbnails, largest first."""
        return [thumbnail_uri(self.image_id, size) for size in self.thumbnail_sizes()]


class Store:
    """Keep the catalog of images and do the Pillow work off the event loop."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._storage = Storage(config)
        # Long lists sent now (see listing).
        self._long_lists = 0
        # Pillow work queues here; at most image_workers images are decoded at
        # once, however many requests are in flight.
        self._executor = ThreadPoolExecutor(
            max_workers=config.image_workers, thread_name_prefix='asgilook-pillow'
        )
        # Upload bodies waiting for the executor, in memory, all together.
        self._waiting = uploads.WaitingMemory(config.upload_memory)
        # An image that stays listed is said once a minute for each cause.
        self._stays_listed = {
            cause: logs.Throttle(STAYS_LISTED_LOG_INTERVAL, config.clock)
            for cause in (StorageFullError, StorageUnavailableError)
        }
        # Thumbnails render in processes of their own, unless told to render
        # in the threads above (render_processes = 0).
        self._renders = (
            RenderProcesses(config.render_processes, self._executor)
            if config.render_processes
            else None
        )

    @property
    def catalog(self) -> Catalog:
        """The catalog of the storage directory the settings name now."""
        return self._storage.catalog

    async def get(self, image_id: str) -> Image | None:
        """Return the image listed under an id, or None."""
        with _storage_errors():
            record = await self.catalog.get(image_id)
        return None if record is None else Image.from_record(self._config, record)

    async def image_version(self, image_id: str) -> str | None:
        """Return the version of the image listed under an id (Image.version)."""
        with _storage_errors():
            record = await self.catalog.get(image_id)
        return None if record is None else record.name

    async def listing(self, stream: bool = True) -> Listing[Image]:
        """Return every image, oldest upload first, with the catalog's version.

        Of one moment. More than `listed_at_once` images are read a batch at
        a time (`Listing.batches`) from a snapshot, if stream; else only the
        version is read (for an answer without a body). At most `long_lists`
        are read so at once: LongListsError beyond.
        """
        limits = self._config.catalog_limits
        catalog = self.catalog
        with _storage_errors():
            records, version = await catalog.listing(limits.listed_at_once)
            if records is not None:
                return Listing(version, [self._image(record) for record in records])
            if not stream:
                return Listing(version)
            if self._long_lists >= limits.long_lists:
                raise LongListsError(limits.long_lists)
            self._long_lists += 1
            try:
                snapshot = await catalog.snapshot()
            except BaseException:
                self._long_lists -= 1
                raise
        batches: Batches[Image] = Batches(
            catalog, snapshot, limits.list_batch, self._image, self._long_list_ended
        )
        return Listing(snapshot.version, batches=batches)

    def _long_list_ended(self) -> None:
        self._long_lists -= 1

    async def catalog_version(self) -> str:
        """Return the catalog's version: it changes with every upload and delete."""
        with _storage_errors():
            return await self.catalog.version()

    async def page(
        self, after: int, limit: int, newest: bool = False
    ) -> tuple[list[Image], int | None]:
        """Return up to limit images uploaded after the one numbered after.

        Or, newest first, before it (after 0: from the newest). And the
        number to start the next page after, None if there is none.
        """
        with _storage_errors():
            page = await self.catalog.page(after, limit, newest)
        images = [self._image(record) for record in page.records]
        return images, page.next_after

    async def startup(self) -> None:
        """Make sure the storage directory exists and takes files."""
        await self._storage.startup()

    async def open_catalog(self) -> None:
        """Open the catalog, reconciling it with the directory if needed."""
        await self._storage.open_catalog()

    async def service_secret(self) -> bytes:
        """Return the service key kept in the catalog (auth/signing.py)."""
        return await self._storage.service_secret()

    async def open(self, image: Image) -> StoredFile:
        """Open the stored JPEG of an image, to be read off the event loop.

        ImageNotFoundError if its file is gone (it is unlisted then).
        """
        async with self._gone_unlisted(image):
            return await StoredFile.open(image.path)

    @contextlib.asynccontextmanager
    async def _gone_unlisted(self, image: Image) -> AsyncIterator[None]:
        """Unlist an image whose file is found gone: ImageNotFoundError."""
        try:
            yield
        except FileNotFoundError as ex:
            await self._forget(image)
            raise ImageNotFoundError(image.image_id) from ex

    async def save(self, chunks: AsyncIterable[bytes]) -> Image:
        """Store an upload as JPEG and catalog it under a new id.

        The body waits in memory or on disk (see storage/uploads.py); the JPEG is
        written under a temporary name, then renamed into place as its row is
        committed, so that no reader sees it half written. An upload never
        replaces an image: ImageIdTakenError if no new id was found.
        """
        converted, size = await uploads.receive(
            chunks, self._temporary_path(), self._waiting, self._config, self._executor
        )
        temporary = self._temporary_path()
        try:
            with _storage_errors():
                # One trip to a thread for the whole write, not one a call.
                await blocking.run(
                    blocking.FILES, uploads.write_durably, temporary, converted
                )
                record = await self._add(size, len(converted), temporary)
        except BaseException:
            # Renamed into place only if nothing failed.
            await uploads.remove_quietly(temporary)
            raise
        return self._image(record)

    async def _add(
        self, size: tuple[int, int], length: int, temporary: pathlib.Path
    ) -> Record:
        """Catalog a written file under the first id of the generator not taken."""
        for _ in range(ID_TRIES):
            image_id = str(self._config.uuid_generator())
            record = await self.catalog.add(image_id, size, length, temporary)
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
        with _storage_errors():
            removal = await self.catalog.remove(
                image.image_id, self._temporary_path('.deleted')
            )
        if removal is not Removal.REMOVED:
            raise ImageNotFoundError(image.image_id)

    async def _forget(self, image: Image) -> None:
        """Unlist an image whose file was found gone (removed by hand)."""
        try:
            await self.delete(image)
        except ImageNotFoundError:
            # As expected: the row went, without the file.
            pass
        except StorageError as ex:
            self._said_to_stay(image, ex)
            return
        logger.warning(
            'unlisted image %s: its file is gone from %s',
            image.image_id,
            self.catalog.directory,
        )

    def _said_to_stay(self, image: Image, ex: StorageError) -> None:
        """Say that an image whose file is gone cannot be unlisted now, and when."""
        full = isinstance(ex, StorageFullError)
        more = self._stays_listed[
            StorageFullError if full else StorageUnavailableError
        ].take()
        if more is None:
            return
        logger.warning(
            'image %s stays listed though its file is gone from %s: %s to '
            'unlist it now; the first request for it once %s unlists it, '
            'as does python -m asgilook reindex%s',
            image.image_id,
            self.catalog.directory,
            'its disk has no room' if full else 'its storage cannot be written',
            'there is room' if full else 'it can be written',
            more,
        )

    def token(self) -> bytes | None:
        """Return a token that changes whenever any process changes the catalog."""
        return self.catalog.token()

    async def make_thumbnail(self, image: Image, size: tuple[int, int]) -> bytes:
        """Render the image scaled to one of its ladder sizes, as JPEG.

        RenderError if the process rendering it died, StoredImageError if
        its file is damaged, ImageNotFoundError if it is gone (then unlisted).
        """
        # The render reads the file itself: no trips through another pool.
        quality = self._config.jpeg_quality
        async with self._gone_unlisted(image):
            if self._renders is not None:
                return await self._renders.resize(image.path, size, quality)
            return await blocking.run(
                self._executor, convert.resize, image.path, size, quality
            )

    async def close(self) -> None:
        """Let the render processes go (they start again at the next render).

        The catalog stays open (see Storage.close).
        """
        await self._storage.close()
        if self._renders is not None:
            await self._renders.close()

    def _temporary_path(self, suffix: str = '.tmp') -> pathlib.Path:
        return self._storage.temporary_path(suffix)

    def _image(self, record: Record) -> Image:
        return Image.from_record(self._config, record)


def _reductions(size: tuple[int, int], min_size: int) -> Iterator[tuple[int, int]]:
    width, height = size
    factor = 2
    while width // factor >= min_size and height // factor >= min_size:
        yield width // factor, height // factor
        factor *= 2


def _http_date(moment: datetime.datetime) -> str:
    return moment.strftime('%a, %d %b %Y %H:%M:%S GMT')
