"""The catalog on disk: which complete images the storage directory holds.

The storage directory is the one copy of the truth, shared by every worker
process and surviving restarts. Each image is one file, named after what the
catalog needs to know (`{id}.{width}x{height}.{bytes}.jpeg`) and dated with
the moment of its upload, so listing the catalog reads names and one `stat`
a file. The name is not proof: a file a process has not written itself is
listed once its first and last bytes show the JPEG its name says (checked
when first seen, not at every reading). An in-memory snapshot serves
requests for as long as the directory has not changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import operator
import os
import pathlib
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiofiles.os

from . import files
from .files import TEMPORARY_PREFIX, Entry, file_name
from .generation import GENERATION_NAME, Generation

__all__ = ['GENERATION_NAME', 'TEMPORARY_PREFIX', 'Catalog', 'Entry', 'file_name']

logger = logging.getLogger(__name__)

# A directory's modification time ticks coarsely (milliseconds to a second,
# depending on the file system): a snapshot taken this soon after the last
# change may have missed another change in the same tick, so it is not
# trusted on the time alone. Changes asgilook makes also renew the generation
# token, which tells them apart however close they come.
_RACY_NS = 1_000_000_000

# count() is the generation count and this many bytes of a serial.
_STAMP_SIZE = 8
# The token of a snapshot that a change this process could not count made
# stale: it equals no count, so the next request reads the directory again.
_UNCOUNTED = b''

# While the generation token is unchanged, how long a snapshot is served
# without looking at the directory: what is changed behind asgilook's back
# (files copied in or removed by hand) shows within this.
RECHECK_SECONDS = 1.0


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
    # Files named as images that are not: name -> (mtime_ns, size, reason).
    rejected: dict[str, tuple[int, int, str]]

    @property
    def version(self) -> str:
        return f'{self.digest:032x}'


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
        # What this process wrote since its last reading: it needs no check.
        self._written: dict[str, Entry] = {}
        # Moves whenever a reading finds the catalog changed (see count()).
        self._serial = 0
        self._stamp = bytes(_STAMP_SIZE)
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
        before = self._snapshot
        if before is not None and before.directory != directory:
            before = None
        written, self._written = self._written, {}
        first = directory not in self._scanned
        loop = asyncio.get_running_loop()
        entries, rejected, strays = await loop.run_in_executor(
            None, _examine, directory, before, written, first
        )
        self._scanned.add(directory)
        self._report(directory, strays)
        # Another process's first change may have made the token since.
        await self.generation.open(directory)
        snapshot = _Snapshot(
            directory,
            mtime_ns,
            token,
            scanned_ns - mtime_ns >= _RACY_NS,
            entries,
            _digest(entries.values()),
            rejected,
        )
        replaced = self._snapshot
        if (
            replaced is None
            or replaced.directory != directory
            or replaced.digest != snapshot.digest
        ):
            self._serial += 1
            self._stamp = self._serial.to_bytes(_STAMP_SIZE, 'little')
        self._snapshot = snapshot
        self._checked_at = time.monotonic()
        return snapshot

    def _finish_reading(self, reading: tuple) -> None:
        if self._reading is reading:
            self._reading = None

    def count(self) -> bytes | None:
        """Return a token that changes whenever the catalog this process shows does.

        The generation count of the storage directory (any process's change),
        followed by the serial of this process's readings that found the
        catalog changed (a change by hand): once an answer computed after
        such a reading has been given, nothing kept before it is served.
        None while the directory has no counter: nothing may be kept then.
        """
        count = self.generation.current(self.directory)
        return None if count is None else count + self._stamp

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
        if added is not None:
            self._written[added.image_id] = added
        counts = await self.generation.advance(directory)
        snapshot = self._snapshot
        if counts is None and snapshot is not None:
            # Not counted (a full disk): the next request reads the directory.
            self._snapshot = dataclasses.replace(snapshot, token=_UNCOUNTED)
            return
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
        for name, reason in strays:
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


def _examine(
    directory: pathlib.Path,
    before: _Snapshot | None,
    written: Mapping[str, Entry],
    first: bool,
) -> tuple[dict[str, Entry], dict[str, tuple[int, int, str]], list[tuple[str, str]]]:
    """Read the directory: its images, the files rejected, and what to report.

    A file is checked when first seen: what the last reading listed (by
    name, time and size) or this process wrote is not, and what it rejected
    is rejected again without a read. Temporary files are uploads in
    progress while this process serves; at its first reading of a directory,
    those that cannot be are removed.
    """
    candidates, strays, temporaries = _scan(directory)
    if first:
        strays += files.clear_leftovers(directory, temporaries)
    known = {} if before is None else before.entries
    rejected_before = {} if before is None else before.rejected
    entries: dict[str, Entry] = {}
    rejected = {}
    # Files are opened relative to the directory: no path to resolve each time.
    descriptor = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for name, entry in candidates:
            image_id = entry.image_id
            if entry != known.get(image_id) and entry != written.get(image_id):
                seen = rejected_before.get(name)
                if seen is not None and seen[:2] == (entry.modified_ns, entry.length):
                    reason = seen[2]
                else:
                    try:
                        reason = files.check(descriptor, name, entry)
                    except OSError as ex:
                        # Not remembered: it may be readable at the next
                        # reading (or gone: removed while this one went on).
                        strays.append((name, f'cannot be read: {ex.strerror}'))
                        continue
                if reason:
                    rejected[name] = (entry.modified_ns, entry.length, reason)
                    strays.append((name, reason))
                    continue
            # An id stored twice (a replaced upload): the newer file is it.
            previous = entries.get(image_id, entry)
            entries[image_id] = max(previous, entry, key=_MODIFIED)
    finally:
        os.close(descriptor)
    return entries, rejected, strays


_MODIFIED = operator.attrgetter('modified_ns')


def _scan(
    directory: pathlib.Path,
) -> tuple[list[tuple[str, Entry]], list[tuple[str, str]], list[str]]:
    """List the files named as images, the strays, and the temporary files."""
    candidates = []
    strays = []
    temporaries = []
    with os.scandir(directory) as items:
        for item in items:
            if item.name.startswith(TEMPORARY_PREFIX):
                temporaries.append(item.name)
                continue
            # A file another worker removes while this one reads is not listed.
            with contextlib.suppress(FileNotFoundError):
                entry, reason = files.read_entry(item)
                if entry is not None:
                    candidates.append((item.name, entry))
                elif reason:
                    strays.append((item.name, reason))
    return candidates, strays, temporaries
