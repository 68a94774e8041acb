"""Stored images: their files, their thumbnails and the Pillow work."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import hashlib
import io
import logging
import os
import pathlib
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiofiles
import aiofiles.os

from . import files, imaging, reindex
from .bodies import WaitingMemory
from .catalog import (
    Catalog,
    CatalogError,
    CatalogFullError,
    Entry,
    Removal,
    file_name,
)
from .config import Config
from .errors import (
    EmptyUploadError,
    ImageNotFoundError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
    UploadTooLargeError,
)
from .renderers import RenderProcesses

logger = logging.getLogger(__name__)

# Uploads up to this size wait for a worker in memory (within the worker's
# upload_memory budget); larger ones on disk.
SPOOL_IN_MEMORY = 1024 * 1024


# What a write that ran out of room fails with: the disk, the quota, a size limit.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


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
    def from_entry(cls, config: Config, entry: Entry) -> Image:
        modified = datetime.datetime.fromtimestamp(
            entry.modified_ns / 1e9, datetime.UTC
        )
        return cls(config, entry.image_id, entry.size, modified, entry.length)

    @property
    def path(self) -> pathlib.Path:
        name = file_name(self.image_id, self.size, self.length)
        return pathlib.Path(self._config.storage_path) / name

    @property
    def version(self) -> str:
        """What the image's answers are computed from: its stored file's name.

        The name holds the id, the size and the length of the file; another
        file under the same id has another name.
        """
        return self.path.name

    @property
    def uri(self) -> str:
        return image_uri(self.image_id)

    @property
    def etag(self) -> str:
        """A strong validator of the stored file: another file, another tag."""
        identity = f'{self.path.name}@{self.modified.isoformat()}'
        return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()

    def thumbnail_etag(self, size: tuple[int, int]) -> str:
        """A strong validator of the thumbnail of this image at size."""
        quality = self._config.jpeg_quality
        identity = f'{self.etag}/{size[0]}x{size[1]}/q{quality}/{imaging.RENDERING}'
        return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()

    def serialize(self) -> dict:
        """Return the image object of the HTTP API."""
        return {
            'id': self.image_id,
            'image': self.uri,
            'modified': _http_date(self.modified),
            'size': list(self.size),
            'thumbnails': self.thumbnails(),
        }

    def thumbnail_sizes(self) -> list[tuple[int, int]]:
        """Return the halving ladder of sizes this image is rendered at."""
        return list(_reductions(self.size, self._config.min_thumb_size))

    def thumbnails(self) -> list[str]:
        return [thumbnail_uri(self.image_id, size) for size in self.thumbnail_sizes()]


class Store:
    """Keep the catalog of images and do the Pillow work off the event loop."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._raw_directory = config.storage_path
        self._catalog = Catalog(pathlib.Path(config.storage_path))
        # Storage directories whose leftovers this store cleared: at its first
        # start, when no upload of its own can be under way (files of its pid
        # are an earlier process's). One store serves a worker process.
        self._cleared: set[pathlib.Path] = set()
        # Catalogs of directories the setting named before (closed at close()).
        self._retired: list[Catalog] = []
        # Pillow work queues here; at most image_workers images are decoded at
        # once, however many requests are in flight.
        self._executor = ThreadPoolExecutor(
            max_workers=config.image_workers, thread_name_prefix='asgilook-pillow'
        )
        # Upload bodies waiting for the executor, in memory, all together.
        self._waiting = WaitingMemory(config.upload_memory)
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
        raw = self._config.storage_path
        # The same object while the setting is: every request asks.
        if raw is not self._raw_directory:
            directory = pathlib.Path(raw)
            if directory != self._catalog.directory:
                self._retired.append(self._catalog)
                self._catalog = Catalog(directory)
            self._raw_directory = raw
        return self._catalog

    async def get(self, image_id: str) -> Image | None:
        with _storage_errors():
            entry = await self.catalog.get(image_id)
        return None if entry is None else Image.from_entry(self._config, entry)

    async def listing(self) -> tuple[list[Image], str]:
        """Return every image, oldest upload first, and the catalog's version."""
        with _storage_errors():
            entries, version = await self.catalog.listing()
        return [Image.from_entry(self._config, entry) for entry in entries], version

    async def catalog_version(self) -> str:
        """Return the catalog's version: it changes with every upload and delete."""
        with _storage_errors():
            return await self.catalog.version()

    async def page(self, after: int, limit: int) -> tuple[list[Image], int | None]:
        """Return up to limit images uploaded after the one numbered after.

        And the number to start the next page after, None if there is none.
        """
        with _storage_errors():
            page = await self.catalog.page(after, limit)
        images = [Image.from_entry(self._config, entry) for entry in page.entries]
        return images, page.next_after

    async def version(self, path: str) -> str | None:
        """Return what the response at a path shows now, for a cache to compare.

        The catalog's version for the list and its pages, the file of an
        image for the image and its thumbnails, None for a path that shows no
        stored image.
        """
        if path == '/images' or path.startswith('/images?'):
            with _storage_errors():
                return await self.catalog.version()
        parts = path.split('/')
        if len(parts) < 3 or parts[1] not in ('images', 'thumbnails'):
            return None
        with _storage_errors():
            entry = await self.catalog.get(parts[2].removesuffix('.jpeg'))
        if entry is None:
            return None
        return file_name(entry.image_id, entry.size, entry.length)

    async def startup(self) -> None:
        """Make sure the storage directory exists and takes files.

        Once per store: a lifespan may start again in the same process
        (falcon.testing starts one per request), and asks nothing of a thread.
        """
        catalog = self.catalog
        if catalog.directory in self._cleared:
            return
        with self._startup_errors():
            await aiofiles.os.makedirs(catalog.incoming, exist_ok=True)
            probe = self._temporary_path()
            async with aiofiles.open(probe, 'wb'):
                pass
            await aiofiles.os.remove(probe)
            await self._clear_leftovers()

    async def open_catalog(self) -> None:
        """Open the catalog, reconciling it with the directory if needed.

        That is, if the directory changed behind its back (see reindex.py).
        """
        catalog = self.catalog
        with self._startup_errors():
            if await catalog.open():
                await reindex.reindex(catalog, force=False)

    @contextlib.contextmanager
    def _startup_errors(self) -> Iterator[None]:
        try:
            yield
        except (OSError, CatalogError) as ex:
            raise StorageUnavailableError(
                f'cannot store images in {self.catalog.directory} '
                f'(ASGI_LOOK_STORAGE_PATH): {getattr(ex, "strerror", None) or ex}'
            ) from ex

    async def _clear_leftovers(self) -> None:
        incoming = self.catalog.incoming
        loop = asyncio.get_running_loop()
        names = await aiofiles.os.listdir(incoming)
        left = await loop.run_in_executor(None, files.clear_leftovers, incoming, names)
        for name, reason in left:
            logger.warning('ignoring %s in %s: %s', name, incoming, reason)
        self._cleared.add(self.catalog.directory)

    async def open(self, image: Image) -> Any:
        """Open the stored JPEG of an image for an async read.

        ImageNotFoundError if its file is gone (it is unlisted then).
        """
        async with self._gone_unlisted(image):
            return await aiofiles.open(image.path, 'rb')

    @contextlib.asynccontextmanager
    async def _gone_unlisted(self, image: Image) -> AsyncIterator[None]:
        """Unlist an image whose file is found gone: ImageNotFoundError."""
        try:
            yield
        except FileNotFoundError as ex:
            await self._forget(image)
            raise ImageNotFoundError(image.image_id) from ex

    async def save(self, image_id: str, chunks: AsyncIterable[bytes]) -> Image:
        """Store an upload as JPEG and catalog it.

        An upload waits in memory up to SPOOL_IN_MEMORY bytes while the
        worker's upload_memory budget allows, and is spooled to disk beyond,
        so that bodies waiting for a worker take bounded memory; the JPEG is
        written under a temporary name, then renamed into place as its row is
        committed, so that no reader sees it half written.
        """
        converted, size = await self._receive_converted(chunks)
        temporary = self._temporary_path()
        loop = asyncio.get_running_loop()
        try:
            with _storage_errors():
                # One trip to a thread for the whole write, not one a call.
                await loop.run_in_executor(None, _write_durably, temporary, converted)
                entry, _ = await self.catalog.add(
                    image_id, size, len(converted), temporary
                )
        except BaseException:
            # Renamed into place only if nothing failed.
            await _remove_quietly(temporary)
            raise
        return Image.from_entry(self._config, entry)

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
        except StorageError:
            # Not now: the next start, or reindex, unlists it.
            return
        logger.warning(
            'unlisted image %s: its file is gone from %s',
            image.image_id,
            self.catalog.directory,
        )

    def generation(self) -> bytes | None:
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
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(
                self._executor, imaging.resize, image.path, size, quality
            )

    async def close(self) -> None:
        """Let the render processes go (they start again at the next render).

        The catalog stays open: closing the last connection of a database
        checkpoints its WAL to disk (some 20 ms), and a lifespan may start
        again in the same process (falcon.testing starts one per request).
        The end of the process closes it; what is committed is in the WAL.
        Catalogs of directories the settings no longer name are closed.
        """
        retired, self._retired = self._retired, []
        for catalog in retired:
            await catalog.close()
            catalog.shutdown()
        if self._renders is not None:
            await self._renders.close()

    def _temporary_path(self, suffix: str = '.tmp') -> pathlib.Path:
        return files.temporary_path(self.catalog.directory, suffix)

    async def _receive_converted(
        self, chunks: AsyncIterable[bytes]
    ) -> tuple[bytes, tuple[int, int]]:
        """Receive an upload and turn it into the JPEG to store, and its size."""
        upload = _Upload(
            self._temporary_path(), self._waiting, self._config.max_upload_size
        )
        loop = asyncio.get_running_loop()
        try:
            with _storage_errors():
                received = await upload.receive(chunks)
            return await loop.run_in_executor(
                self._executor,
                _convert,
                received,
                self._config.max_image_pixels,
                self._config.jpeg_quality,
            )
        finally:
            await upload.discard()


class _Upload:
    """One upload's body while it arrives and waits for a Pillow worker.

    It waits in memory while it is at most SPOOL_IN_MEMORY bytes and the
    worker's budget of waiting memory allows; otherwise in a spool file,
    written a budgeted SPOOL_IN_MEMORY at a time (a chunk at a time when the
    budget is spent).
    """

    def __init__(
        self, spool: pathlib.Path, waiting: WaitingMemory, max_size: int
    ) -> None:
        self._spool = spool
        self._waiting = waiting
        self._max_size = max_size
        self._chunks: list[bytes] = []
        self._held = 0
        self._spooled = False

    async def receive(self, chunks: AsyncIterable[bytes]) -> bytes | pathlib.Path:
        """Read the body whole: its bytes, or the spool file holding them."""
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > self._max_size:
                raise UploadTooLargeError(self._max_size)
            if self._held + len(chunk) <= SPOOL_IN_MEMORY and self._waiting.take(
                len(chunk)
            ):
                self._chunks.append(chunk)
                self._held += len(chunk)
            else:
                # To disk: what waited in memory first, then this chunk.
                await self._spill(chunk)
        if not received:
            raise EmptyUploadError
        if not self._spooled:
            return b''.join(self._chunks)
        if self._chunks:
            await self._spill()
        return self._spool

    async def discard(self) -> None:
        """Give back the memory the body held, and remove its spool file."""
        self._release()
        if self._spooled:
            await _remove_quietly(self._spool)

    async def _spill(self, chunk: bytes = b'') -> None:
        data = b''.join([*self._chunks, chunk])
        self._release()
        self._spooled = True
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, _append, self._spool, data)

    def _release(self) -> None:
        self._chunks = []
        self._waiting.give_back(self._held)
        self._held = 0


def _reductions(size: tuple[int, int], min_size: int) -> Iterator[tuple[int, int]]:
    width, height = size
    factor = 2
    while width // factor >= min_size and height // factor >= min_size:
        yield width // factor, height // factor
        factor *= 2


def _http_date(moment: datetime.datetime) -> str:
    return moment.strftime('%a, %d %b %Y %H:%M:%S GMT')


def _convert(
    upload: bytes | pathlib.Path, max_pixels: int, quality: int
) -> tuple[bytes, tuple[int, int]]:
    if isinstance(upload, bytes):
        return imaging.to_jpeg(io.BytesIO(upload), max_pixels, quality)
    with open(upload, 'rb') as source:
        return imaging.to_jpeg(source, max_pixels, quality)


def _incoming(path: pathlib.Path) -> None:
    """Make the directory of files on their way in, if a start has not.

    Not its parents: a storage directory that is gone stays gone (503).
    """
    with contextlib.suppress(FileExistsError):
        os.mkdir(path.parent)


def _append(path: pathlib.Path, data: bytes) -> None:
    _incoming(path)
    with open(path, 'ab') as spool:
        spool.write(data)


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """Turn a failed read or write of the storage into the store's word for it."""
    try:
        yield
    except CatalogFullError as ex:
        raise StorageFullError from ex
    except CatalogError as ex:
        raise StorageUnavailableError from ex
    except OSError as ex:
        if ex.errno in _NO_ROOM:
            raise StorageFullError from ex
        raise StorageUnavailableError from ex


def _write_durably(path: pathlib.Path, data: bytes) -> None:
    """Write data to a new file and flush it to disk."""
    _incoming(path)
    with open(path, 'wb') as output:
        output.write(data)
        output.flush()
        os.fsync(output.fileno())


async def _remove_quietly(path: pathlib.Path) -> None:
    # A clean-up that fails (storage gone read-only) must not hide the error
    # being answered; what it leaves, the next start removes. The failure is
    # the thread's: no exception is thrown into a coroutine (which Python
    # 3.11's tracing, hence coverage, loses).
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, _remove_if_there, path)


def _remove_if_there(path: pathlib.Path) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)
