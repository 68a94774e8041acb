"""The image catalog: stored images, their thumbnails and the Pillow work."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import os
import pathlib
import uuid
from collections.abc import AsyncIterable, Iterator
from concurrent.futures import ThreadPoolExecutor

import aiofiles
import aiofiles.os

from . import imaging
from .config import Config

_fsync = aiofiles.os.wrap(os.fsync)


class StoreError(Exception):
    """Something about an upload or the storage that the store cannot do."""


class EmptyUploadError(StoreError):
    """The upload has no bytes."""


class UploadTooLargeError(StoreError):
    """The upload is larger than the configured maximum."""


class StorageFullError(StoreError):
    """The storage directory has no room for another image."""


class StorageUnavailableError(StoreError):
    """The storage directory cannot be written to (missing, read-only, failing)."""


# What a write that ran out of room fails with: the disk, the quota, a size limit.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


class Image:
    """One stored image: its identity, size and the URIs it is served under."""

    def __init__(
        self,
        config: Config,
        image_id: str,
        size: tuple[int, int],
        modified: datetime.datetime | None = None,
    ) -> None:
        self._config = config
        self.image_id = image_id
        self.size = size
        self.modified = modified or datetime.datetime.now(datetime.UTC)

    @property
    def path(self) -> pathlib.Path:
        return pathlib.Path(self._config.storage_path) / self.image_id

    @property
    def uri(self) -> str:
        return f'/images/{self.image_id}.jpeg'

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
        return [
            f'/thumbnails/{self.image_id}/{width}x{height}.jpeg'
            for width, height in self.thumbnail_sizes()
        ]


class Store:
    """Keep the catalog of images and do the Pillow work off the event loop."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._images: dict[str, Image] = {}
        # Pillow work queues here; at most image_workers images are decoded at
        # once, however many requests are in flight.
        self._executor = ThreadPoolExecutor(
            max_workers=config.image_workers, thread_name_prefix='asgilook-pillow'
        )

    def get(self, image_id: str) -> Image | None:
        return self._images.get(image_id)

    def list_images(self) -> list[Image]:
        """Return every image, oldest upload first."""
        return sorted(self._images.values(), key=lambda image: image.modified)

    async def startup(self) -> None:
        """Create the storage directory if it is missing."""
        await aiofiles.os.makedirs(self._config.storage_path, exist_ok=True)

    async def open(self, image: Image) -> tuple[object, int]:
        """Open the stored JPEG of an image; return the file and its length."""
        stat = await aiofiles.os.stat(image.path)
        return await aiofiles.open(image.path, 'rb'), stat.st_size

    async def save(self, image_id: str, chunks: AsyncIterable[bytes]) -> Image:
        """Store an upload as JPEG and catalog it.

        The upload is spooled to disk first, so that bodies waiting for a
        worker take no memory; the JPEG is written under a temporary name and
        renamed into place, so that no reader sees it half written.
        """
        spool = self._temporary_path()
        try:
            with _storage_errors():
                await self._spool(chunks, spool)
            loop = asyncio.get_running_loop()
            converted, size = await loop.run_in_executor(
                self._executor,
                _convert,
                spool,
                self._config.max_image_pixels,
                self._config.jpeg_quality,
            )
        finally:
            await _remove_quietly(spool)

        image = Image(self._config, image_id, size)
        with _storage_errors():
            await _write_atomically(image.path, converted, self._temporary_path())
        self._images[image_id] = image
        return image

    async def make_thumbnail(self, image: Image, size: tuple[int, int]) -> bytes:
        """Render the image scaled to one of its ladder sizes, as JPEG."""
        async with aiofiles.open(image.path, 'rb') as img_file:
            data = await img_file.read()

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, imaging.resize, data, size, self._config.jpeg_quality
        )

    def _temporary_path(self) -> pathlib.Path:
        # A dot name that no image id can take, in the storage directory so
        # that the final rename stays on one file system.
        name = f'.incoming-{uuid.uuid4().hex}.tmp'
        return pathlib.Path(self._config.storage_path) / name

    async def _spool(self, chunks: AsyncIterable[bytes], path: pathlib.Path) -> None:
        limit = self._config.max_upload_size
        received = 0
        async with aiofiles.open(path, 'wb') as spool:
            async for chunk in chunks:
                received += len(chunk)
                if received > limit:
                    raise UploadTooLargeError
                await spool.write(chunk)
        if not received:
            raise EmptyUploadError


def _reductions(size: tuple[int, int], min_size: int) -> Iterator[tuple[int, int]]:
    width, height = size
    factor = 2
    while width // factor >= min_size and height // factor >= min_size:
        yield width // factor, height // factor
        factor *= 2


def _http_date(moment: datetime.datetime) -> str:
    return moment.strftime('%a, %d %b %Y %H:%M:%S GMT')


def _convert(
    path: pathlib.Path, max_pixels: int, quality: int
) -> tuple[bytes, tuple[int, int]]:
    with open(path, 'rb') as upload:
        return imaging.to_jpeg(upload, max_pixels, quality)


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    """Turn a failed write into the store's word for it."""
    try:
        yield
    except OSError as ex:
        if ex.errno in _NO_ROOM:
            raise StorageFullError from ex
        raise StorageUnavailableError from ex


async def _write_atomically(
    path: pathlib.Path, data: bytes, temporary: pathlib.Path
) -> None:
    """Write data to temporary, flush it to disk, then rename it to path."""
    try:
        async with aiofiles.open(temporary, 'wb') as output:
            await output.write(data)
            await output.flush()
            await _fsync(output.fileno())
        await aiofiles.os.replace(temporary, path)
    except BaseException:
        await _remove_quietly(temporary)
        raise


async def _remove_quietly(path: pathlib.Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        await aiofiles.os.remove(path)
