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
import hashlib
import logging
import mmap
import os
import pathlib
import re
import time
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
    version: str


class Generation:
    """A token that every process of one storage directory sees change with it.

    It lives in a small file of the storage directory that each process maps
    into its memory: reading it is a memory read, not a system call. Every
    upload and delete writes a fresh random token there before it is
    answered, so a process holding answers given under the old token knows,
    at the cost of comparing 16 bytes, that they may be stale. The file is
    made by the first change; until a process has mapped it, its token is
    None and nothing may be kept under it.
    """

    SIZE = 16

    def __init__(self) -> None:
        self._directory: pathlib.Path | None = None
        self._map: mmap.mmap | None = None

    async def open(self, directory: pathlib.Path, create: bool = False) -> None:
        """Map the token of directory, if it has one (or if told to create it)."""
        if self._directory == directory:
            return
        loop = asyncio.get_running_loop()
        mapped = await loop.run_in_executor(None, _map_token, directory, create)
        if mapped is not None:
            self._directory, self._map = directory, mapped

    def current(self) -> bytes | None:
        """Return the token now, or None before it is mapped."""
        return None if self._map is None else self._map[: self.SIZE]

    async def renew(self, directory: pathlib.Path) -> None:
        """Write a fresh token: the storage directory has just changed."""
        try:
            await self.open(directory, create=True)
        except OSError:
            # No token file could be made: then no process maps one, and none
            # keeps answers under a token. (A file that exists but cannot be
            # opened here leaves others' kept answers for their MEMORY_TTL.)
            return
        self._map[: self.SIZE] = os.urandom(self.SIZE)


def _map_token(directory: pathlib.Path, create: bool) -> mmap.mmap | None:
    flags = os.O_RDWR | (os.O_CREAT if create else 0)
    try:
        descriptor = os.open(directory / GENERATION_NAME, flags, 0o644)
    except OSError:
        if create:
            raise
        # None yet (or none usable): nothing is kept under a token meanwhile.
        return None
    try:
        if os.fstat(descriptor).st_size < Generation.SIZE:
            os.ftruncate(descriptor, Generation.SIZE)
        return mmap.mmap(descriptor, Generation.SIZE)
    finally:
        os.close(descriptor)


class Catalog:
    """Know which images the storage directory holds, rereading it on change."""

    def __init__(self, config: Any) -> None:
        self._config = config
        self._snapshot: _Snapshot | None = None
        self._checked_at = 0.0
        self._reported: set[tuple[pathlib.Path, str]] = set()
        self._scanned: set[pathlib.Path] = set()
        self.generation = Generation()

    @property
    def directory(self) -> pathlib.Path:
        return pathlib.Path(self._config.storage_path)

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
        token = self.generation.current()
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
        if usable and token == snapshot.token and mtime_ns == snapshot.mtime_ns:
            self._checked_at = time.monotonic()
            return snapshot

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
            _digest(entries),
        )
        self._checked_at = time.monotonic()
        return self._snapshot

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


def _digest(entries: dict[str, Entry]) -> str:
    # The same in every process that sees the same files.
    digest = hashlib.blake2b(digest_size=16)
    for entry in sorted(entries.values(), key=lambda entry: entry.image_id):
        name = file_name(entry.image_id, entry.size, entry.length)
        digest.update(f'{name}@{entry.modified_ns}\n'.encode())
    return digest.hexdigest()


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
