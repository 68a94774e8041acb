"""The catalog on disk: which complete images the storage directory holds.

The storage directory is the one copy of the truth, shared by every worker
process and surviving restarts. Each image is one file, named after what the
catalog needs to know (`{id}.{width}x{height}.{bytes}.jpeg`) and dated with
the moment of its upload, so listing the catalog reads names and one `stat`
a file, never a pixel. An in-memory snapshot serves requests for as long as
the directory has not changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import hashlib
import logging
import mmap
import os
import pathlib
import re
import time
from collections.abc import Iterable
from typing import Any

import aiofiles.os

logger = logging.getLogger(__name__)

TEMPORARY_PREFIX = '.incoming-'
GENERATION_NAME = '.generation'

_NAME = re.compile(
    r'(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'
    r'\.(?P<width>[1-9][0-9]*)x(?P<height>[1-9][0-9]*)\.(?P<length>[1-9][0-9]*)\.jpeg'
)

# A directory's modification time ticks coarsely (milliseconds to a second,
# depending on the file system): a snapshot taken this soon after the last
# change may have missed another change in the same tick, so it is not
# trusted on the time alone. Changes asgilook makes also renew the generation
# token, which tells them apart however close they come.
_RACY_NS = 1_000_000_000

# While the generation token is unchanged, how long a snapshot is served
# without looking at the directory: what is changed behind asgilook's back
# (files copied in or removed by hand) shows within this.
RECHECK_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class Entry:
    """One complete image file of the catalog."""

    image_id: str
    size: tuple[int, int]
    length: int
    modified_ns: int


def file_name(image_id: str, size: tuple[int, int], length: int) -> str:
    """Return the file name an image of this size and length is stored under."""
    return f'{image_id}.{size[0]}x{size[1]}.{length}.jpeg'


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    directory: pathlib.Path
    mtime_ns: int
    # The generation token before the directory was read.
    token: bytes | None
    # Whether the directory's time was old enough to tell every later change.
    trusted: bool
    entries: dict[str, Entry]
    # The XOR of the digests of the entries: one entry in or out is one XOR.
    digest: int

    @property
    def version(self) -> str:
        return f'{self.digest:032x}'


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
    """

    SIZE = 8

    def __init__(self) -> None:
        self._directory: pathlib.Path | None = None
        self._map: mmap.mmap | None = None
        self._descriptor: int | None = None

    async def open(self, directory: pathlib.Path, create: bool = False) -> None:
        """Map the counter of directory, if it has one (or if told to create it)."""
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

        None if there is no counter and none can be made: then no process has
        one mapped, and none keeps answers under a count.
        """
        try:
            await self.open(directory, create=True)
        except OSError:
            return None
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self._advance)

    def _advance(self) -> tuple[bytes, bytes]:
        fcntl.flock(self._descriptor, fcntl.LOCK_EX)
        try:
            before = self._map[: self.SIZE]
            after = (int.from_bytes(before, 'little') + 1).to_bytes(self.SIZE, 'little')
            self._map[: self.SIZE] = after
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
    if os.fstat(descriptor).st_size < Generation.SIZE:
        os.ftruncate(descriptor, Generation.SIZE)
    # The descriptor stays open: advance() locks through it.
    return descriptor, mmap.mmap(descriptor, Generation.SIZE)


class Catalog:
    """Know which images the storage directory holds, rereading it on change."""

    def __init__(self, config: Any) -> None:
        self._config = config
        self._raw_directory: Any = None
        self._directory = pathlib.Path()
        self._snapshot: _Snapshot | None = None
        self._checked_at = 0.0
        self._reading: tuple[tuple, asyncio.Future] | None = None
        self._reported: set[tuple[pathlib.Path, str]] = set()
        self._scanned: set[pathlib.Path] = set()
        self.generation = Generation()

    @property
    def directory(self) -> pathlib.Path:
        # The same Path object while the setting is the same object: every
        # request asks, and the counter compares by identity first.
        raw = self._config.storage_path
        if raw is not self._raw_directory:
            self._raw_directory, self._directory = raw, pathlib.Path(raw)
        return self._directory

    async def version(self) -> str:
        """Return a digest of the catalog that changes whenever the catalog does."""
        return (await self._current()).version

    async def entries(self) -> dict[str, Entry]:
        """Return the images of the catalog by id, as the directory holds them now."""
        return (await self._current()).entries

    async def listing(self) -> tuple[dict[str, Entry], str]:
        """Return the images of the catalog and its digest, of the same moment."""
        snapshot = await self._current()
        return snapshot.entries, snapshot.version

    async def _current(self) -> _Snapshot:
        directory = self.directory
        # Read first: a change made after this is seen by the next call.
        token = self.generation.current(directory)
        snapshot = self._snapshot
        usable = (
            snapshot is not None
            and snapshot.directory == directory
            and (snapshot.trusted or token is not None)
        )
        if (
            usable
            and token is not None
            and token == snapshot.token
            and time.monotonic() < self._checked_at + RECHECK_SECONDS
        ):
            # No process of this directory has changed it since: no stat.
            return snapshot

        mtime_ns = (await aiofiles.os.stat(directory)).st_mtime_ns
        # An untrusted reading is read again: a change by hand may share the
        # tick of the directory's time with the change before it.
        if (
            usable
            and snapshot.trusted
            and token == snapshot.token
            and mtime_ns == snapshot.mtime_ns
        ):
            self._checked_at = time.monotonic()
            return snapshot

        # Requests that find the directory as it was when a reading under way
        # began wait for that reading instead of making their own: a change
        # asgilook made before them moved the token, one made by hand moved
        # the directory's time or, in the same tick, left that reading
        # untrusted, to be read again within RECHECK_SECONDS.
        key = (directory, token, mtime_ns)
        reading = self._reading
        if reading is None or reading[0] != key:
            task = asyncio.ensure_future(self._read(directory, token, mtime_ns))
            reading = self._reading = (key, task)
            task.add_done_callback(lambda _: self._finish_reading(reading))
        return await asyncio.shield(reading[1])

    async def _read(
        self, directory: pathlib.Path, token: bytes | None, mtime_ns: int
    ) -> _Snapshot:
        scanned_ns = time.time_ns()
        loop = asyncio.get_running_loop()
        entries, strays = await loop.run_in_executor(None, _scan, directory)
        self._report(directory, strays)
        # Another process's first change may have made the token since.
        await self.generation.open(directory)
        self._snapshot = _Snapshot(
            directory,
            mtime_ns,
            token,
            scanned_ns - mtime_ns >= _RACY_NS,
            entries,
            _digest(entries.values()),
        )
        self._checked_at = time.monotonic()
        return self._snapshot

    def _finish_reading(self, reading: tuple) -> None:
        if self._reading is reading:
            self._reading = None

    def count(self) -> bytes | None:
        """Return the generation count of the storage directory now."""
        return self.generation.current(self.directory)

    def known(self, image_id: str) -> Entry | None:
        """Return the entry of an image as last read, without reading again."""
        snapshot = self._snapshot
        return None if snapshot is None else snapshot.entries.get(image_id)

    async def record(self, added: Entry | None = None, removed: str | None = None):
        """Count a change this process has made to the directory, and know it.

        When no other change came between the last reading and this one, the
        snapshot takes the change in without reading the directory again.
        """
        directory = self.directory
        counts = await self.generation.advance(directory)
        snapshot = self._snapshot
        if (
            counts is None
            or snapshot is None
            or snapshot.directory != directory
            or snapshot.token != counts[0]
        ):
            return
        entries = dict(snapshot.entries)
        digest = snapshot.digest
        for image_id in {removed, added and added.image_id} - {None}:
            if image_id in entries:
                digest ^= _digest([entries.pop(image_id)])
        if added is not None:
            entries[added.image_id] = added
            digest ^= _digest([added])
        self._snapshot = dataclasses.replace(
            snapshot, token=counts[1], entries=entries, digest=digest
        )

    def _report(self, directory: pathlib.Path, strays: list[tuple[str, str]]) -> None:
        # Temporary files are uploads in progress while this process serves;
        # at its first reading of a directory they may be left by a crash.
        first = directory not in self._scanned
        self._scanned.add(directory)
        for name, reason in strays:
            if name.startswith(TEMPORARY_PREFIX) and not first:
                continue
            if (directory, name) not in self._reported:
                self._reported.add((directory, name))
                logger.warning('ignoring %s in %s: %s', name, directory, reason)


def _digest(entries: Iterable[Entry]) -> int:
    # The same in every process that sees the same files, in any order.
    digest = 0
    for entry in entries:
        name = file_name(entry.image_id, entry.size, entry.length)
        identity = f'{name}@{entry.modified_ns}'.encode()
        digest ^= int.from_bytes(hashlib.blake2b(identity, digest_size=16).digest())
    return digest


def _scan(directory: pathlib.Path) -> tuple[dict[str, Entry], list[tuple[str, str]]]:
    entries: dict[str, Entry] = {}
    strays = []
    with os.scandir(directory) as items:
        for item in items:
            # A file another worker removes while this one reads is not listed.
            with contextlib.suppress(FileNotFoundError):
                entry, reason = _read_entry(item)
                if entry is None:
                    if reason:
                        strays.append((item.name, reason))
                    continue
                # An id stored twice (a replaced upload): the newer file is it.
                previous = entries.get(entry.image_id, entry)
                entries[entry.image_id] = max(
                    previous, entry, key=lambda e: e.modified_ns
                )
    return entries, strays


def _read_entry(item: os.DirEntry) -> tuple[Entry | None, str]:
    if item.name == GENERATION_NAME:
        return None, ''
    if item.name.startswith(TEMPORARY_PREFIX):
        return None, 'an upload in progress or interrupted'
    match = _NAME.fullmatch(item.name)
    if match is None:
        return None, 'not the name of an image'
    stat = item.stat(follow_symlinks=False)
    length = int(match['length'])
    if not item.is_file(follow_symlinks=False) or stat.st_size != length:
        return None, f'{stat.st_size} bytes where its name says {length}: damaged'
    size = (int(match['width']), int(match['height']))
    return Entry(match['id'], size, length, stat.st_mtime_ns), ''
