"""The generation counter: a count of changes every process of a directory sees."""

from __future__ import annotations

import asyncio
import fcntl
import mmap
import os
import pathlib

GENERATION_NAME = '.generation'


class Generation:
    """A counter that every process of one storage directory sees move with it.

    It lives in a small file of the storage directory that each process maps
    into its memory: reading it is a memory read, not a system call. Every
    upload and delete adds one to it (under a lock of the file) once its file
    is in place and before it is answered, so a process holding answers given
    at an older count knows, by comparing 8 bytes, that they may be stale;
    and a process that moves the count from the one it last read knows that
    its own change is the only one in between. The file is made by the first
    change; until a process has mapped it, its count is None and nothing may
    be kept under it.

    The file has its bytes on disk before it is mapped, and the count is
    written with a system call, not through the map: on a full file system a
    page of the map without a block behind it would kill the process
    (SIGBUS) when touched, where a write fails with ENOSPC. A counter that
    cannot be given its bytes is not mapped, and nothing is kept under it.
    """

    SIZE = 8

    def __init__(self) -> None:
        self._directory: pathlib.Path | None = None
        self._map: mmap.mmap | None = None
        self._descriptor: int | None = None

    async def open(self, directory: pathlib.Path, create: bool = False) -> None:
        """Map the counter of directory, if it has one (or if told to create it).

        OSError if told to create it and it cannot be made or given its bytes.
        """
        if self._directory == directory:
            return
        loop = asyncio.get_running_loop()
        mapped = await loop.run_in_executor(None, _map_counter, directory, create)
        if mapped is not None:
            self._directory = directory
            self._descriptor, self._map = mapped

    def current(self, directory: pathlib.Path) -> bytes | None:
        """Return the count of directory now, or None if it is not mapped."""
        if directory is not self._directory and directory != self._directory:
            return None
        return self._map[: self.SIZE]

    async def advance(self, directory: pathlib.Path) -> tuple[bytes, bytes] | None:
        """Count one change; return the counts before and after it.

        None if the count could not be moved: no counter can be made (then no
        process has one mapped, and none keeps answers under a count), or the
        write failed (the change then shows to the others as one made by hand).
        """
        loop = asyncio.get_running_loop()
        try:
            await self.open(directory, create=True)
            return await loop.run_in_executor(None, self._advance)
        except OSError:
            return None

    def _advance(self) -> tuple[bytes, bytes]:
        fcntl.flock(self._descriptor, fcntl.LOCK_EX)
        try:
            before = self._map[: self.SIZE]
            after = (int.from_bytes(before, 'little') + 1).to_bytes(self.SIZE, 'little')
            os.pwrite(self._descriptor, after, 0)
        finally:
            fcntl.flock(self._descriptor, fcntl.LOCK_UN)
        return before, after


def _map_counter(directory: pathlib.Path, create: bool) -> tuple[int, mmap.mmap] | None:
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    try:
        descriptor = os.open(directory / GENERATION_NAME, flags, 0o644)
    except OSError:
        if create:
            raise
        # None yet (or none usable): nothing is kept under a count meanwhile.
        return None
    try:
        _give_bytes(descriptor)
        # Read only: the count is written with pwrite (see Generation).
        counter = mmap.mmap(descriptor, Generation.SIZE, access=mmap.ACCESS_READ)
    except OSError:
        os.close(descriptor)
        if create:
            raise
        # A full disk: read again at the next reading of the directory.
        return None
    # The descriptor stays open: advance() locks and writes through it.
    return descriptor, counter


def _give_bytes(descriptor: int) -> None:
    """Make sure the counter's 8 bytes are stored, not a hole; ENOSPC if no room.

    A file made by an earlier release (by ftruncate) may be a hole: writing
    the count it holds back over it gives it a block, or fails cleanly.
    """
    stat = os.fstat(descriptor)
    if stat.st_size >= Generation.SIZE and stat.st_blocks:
        return
    # Under the lock: a count another process writes meanwhile is not undone.
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    try:
        count = os.pread(descriptor, Generation.SIZE, 0)
        os.pwrite(descriptor, count.ljust(Generation.SIZE, b'\0'), 0)
    finally:
        fcntl.flock(descriptor, fcntl.LOCK_UN)
