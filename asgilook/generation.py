"""The generation counter: a count of changes every process of a directory sees."""

from __future__ import annotations

import asyncio
import fcntl
import mmap
import os
import pathlib
import threading

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
        # The directory, its counter's map and descriptor, set in one step:
        # a thread may map the counter while the event loop reads it.
        self._mapped: tuple[pathlib.Path, mmap.mmap, int] | None = None
        # Two changes at once map the counter once.
        self._mapping = threading.Lock()

    async def open(self, directory: pathlib.Path) -> None:
        """Map the counter of directory, if it has one with its bytes on disk."""
        if self._mapped is not None and self._mapped[0] == directory:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._map, directory, False)

    def current(self, directory: pathlib.Path) -> bytes | None:
        """Return the count of directory now, or None if it is not mapped."""
        mapped = self._mapped
        if mapped is None or (directory is not mapped[0] and directory != mapped[0]):
            return None
        return mapped[1][: self.SIZE]

    async def advance(self, directory: pathlib.Path) -> tuple[bytes, bytes] | None:
        """Count one change; return the counts before and after it.

        None if the count could not be moved: no counter can be made (then no
        process has one mapped, and none keeps answers under a count), or the
        write failed (the change then shows to the others as one made by hand).
        """
        loop = asyncio.get_running_loop()
        # Failures are answers of the thread, not exceptions thrown into
        # coroutines (which Python 3.11's tracing, hence coverage, loses).
        return await loop.run_in_executor(None, self._advance, directory)

    def _map(self, directory: pathlib.Path, create: bool) -> None:
        with self._mapping:
            if self._mapped is None or self._mapped[0] != directory:
                mapped = _map_counter(directory, create)
                if mapped is not None:
                    self._mapped = (directory, *mapped)

    def _advance(self, directory: pathlib.Path) -> tuple[bytes, bytes] | None:
        try:
            self._map(directory, create=True)
            _, counter, descriptor = self._mapped
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                before = counter[: self.SIZE]
                count = int.from_bytes(before, 'little') + 1
                after = count.to_bytes(self.SIZE, 'little')
                os.pwrite(descriptor, after, 0)
            finally:
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        except OSError:
            return None
        return before, after


def _map_counter(directory: pathlib.Path, create: bool) -> tuple[mmap.mmap, int] | None:
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
    return counter, descriptor


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
