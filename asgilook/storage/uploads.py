"""An upload on its way in: received, spooled, converted and written durably.

A body waits for a Pillow worker in memory up to `Config.spool_in_memory`
bytes while the worker's budget of waiting memory (`upload_memory`, see
`WaitingMemory`) allows, and in a spool file beyond, so that bodies
waiting for a worker take bounded memory. The JPEG it becomes is written
under a temporary name, renamed into place by the catalog as its row is
committed.
"""

from __future__ import annotations

import contextlib
import io
import os
import pathlib
from collections.abc import AsyncIterable
from concurrent.futures import Executor

from .. import blocking
from ..config import Config
from ..errors import EmptyUploadError, UploadTooLargeError
from ..imaging.convert import to_jpeg
from . import files
from .faults import storage_errors


async def receive(
    chunks: AsyncIterable[bytes],
    spool: pathlib.Path,
    waiting: WaitingMemory,
    config: Config,
    pool: Executor,
) -> tuple[bytes, tuple[int, int]]:
    """Receive an upload and turn it into the JPEG to store, and its size.

    The conversion runs in pool (the store's Pillow threads); the body's
    memory and spool file are let go however it ends.
    """
    upload = Upload(spool, waiting, config.max_upload_size, config.spool_in_memory)
    try:
        with storage_errors():
            received = await upload.receive(chunks)
        return await blocking.run(
            pool, convert, received, config.max_image_pixels, config.jpeg_quality
        )
    finally:
        await upload.discard()


class Upload:
    """One upload's body while it arrives and waits for a Pillow worker.

    It waits in memory while it is at most in_memory bytes and the worker's
    budget of waiting memory allows; otherwise in a spool file, written a
    budgeted in_memory at a time (a chunk at a time when the budget is spent).
    """

    def __init__(
        self,
        spool: pathlib.Path,
        waiting: WaitingMemory,
        max_size: int,
        in_memory: int,
    ) -> None:
        self._spool = spool
        self._waiting = waiting
        self._max_size = max_size
        self._in_memory = in_memory
        self._chunks: list[bytes] = []
        self._held = 0
        self._spooled = False

    async def receive(self, chunks: AsyncIterable[bytes]) -> bytes | pathlib.Path:
        """Read the body whole: its bytes, or the spool file holding them.

        UploadTooLargeError past the upload limit, EmptyUploadError if empty.
        """
        received = 0
        async for chunk in chunks:
            received += len(chunk)
            if received > self._max_size:
                raise UploadTooLargeError(self._max_size)
            if self._held + len(chunk) <= self._in_memory and self._waiting.take(
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
            await remove_quietly(self._spool)

    async def _spill(self, chunk: bytes = b'') -> None:
        data = b''.join([*self._chunks, chunk])
        self._release()
        self._spooled = True
        await blocking.run(blocking.FILES, append, self._spool, data)

    def _release(self) -> None:
        self._chunks = []
        self._waiting.give_back(self._held)
        self._held = 0


def convert(
    upload: bytes | pathlib.Path, max_pixels: int, quality: int
) -> tuple[bytes, tuple[int, int]]:
    """Return the JPEG to store of a received upload, and its size (blocking)."""
    if isinstance(upload, bytes):
        return to_jpeg(io.BytesIO(upload), max_pixels, quality)
    with open(upload, 'rb') as source:
        return to_jpeg(source, max_pixels, quality)


class Incoming:
    """The host's files on their way in, under its storage directory.

    What both kinds of bytes keep on the host (directory.py, objects.py).
    """

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path

    def temporary_path(self, suffix: str = '.tmp') -> pathlib.Path:
        """Return a new name for a file on its way in or out (see files.py)."""
        return files.temporary_path(self.path, suffix)

    async def check(self) -> None:
        """Make sure a file can be written on its way in now; OSError if not."""
        await blocking.run(blocking.FILES, files.probe, self.path)

    async def write(self, path: pathlib.Path, data: bytes) -> None:
        """Write a new file whole and flush it to disk, in one trip to a thread."""
        await blocking.run(blocking.FILES, write_durably, path, data)

    async def discard(self, path: pathlib.Path) -> None:
        """Remove a file on its way in if it is there; a failure is ignored."""
        await remove_quietly(path)

    def kept(self, path: pathlib.Path) -> None:
        """Nothing is held of a file renamed into place (see Objects.kept)."""


def write_durably(path: pathlib.Path, data: bytes) -> None:
    """Write data to a new file and flush it to disk (blocking)."""
    _incoming(path)
    with open(path, 'wb') as output:
        output.write(data)
        output.flush()
        os.fsync(output.fileno())


async def remove_quietly(path: pathlib.Path) -> None:
    """Remove a temporary file if it is there; ignore a failure.

    A clean-up that fails (storage gone read-only) must not hide the error
    being answered; what it leaves, the next start removes. The failure is
    the thread's: no exception is thrown into a coroutine (which Python
    3.11's tracing, hence coverage, loses).
    """
    await blocking.run(blocking.FILES, _remove_if_there, path)


def _incoming(path: pathlib.Path) -> None:
    """Make the directory of files on their way in, if a start has not.

    Not its parents: a storage directory that is gone stays gone (503).
    """
    with contextlib.suppress(FileExistsError):
        os.mkdir(path.parent)


def append(path: pathlib.Path, data: bytes) -> None:
    """Add data to a file on its way in (blocking)."""
    _incoming(path)
    with open(path, 'ab') as spool:
        spool.write(data)


def _remove_if_there(path: pathlib.Path) -> None:
    with contextlib.suppress(OSError):
        os.remove(path)


class WaitingMemory:
    """A byte budget shared by every upload of a worker that waits in memory.

    An upload body waits for a Pillow worker in memory only while the bytes
    all waiting bodies hold stay within the budget; beyond it, bodies go to
    disk. So the memory of waiting uploads follows the budget, not the number
    of uploads in flight.
    """

    def __init__(self, budget: int) -> None:
        self._budget = budget
        self.held = 0

    def take(self, size: int) -> bool:
        """Hold size more bytes if the budget allows it; whether it did."""
        if self.held + size > self._budget:
            return False
        self.held += size
        return True

    def give_back(self, size: int) -> None:
        """Let go of size bytes held."""
        self.held -= size
