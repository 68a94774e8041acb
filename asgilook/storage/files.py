"""The files of a storage directory: images by name and content, and leftovers.

Every function blocks but those of StoredFile, which read off the event loop.
"""

from __future__ import annotations

import datetime
import logging
import os
import pathlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from stat import S_ISREG
from typing import BinaryIO

from .. import blocking
from ..catalog.record import Record
from ..errors import JPEGError
from ..imaging import jpeg

logger = logging.getLogger('asgilook.files')

# Files on their way in (uploads being written or spooled) and out (deleted
# images' files) wait in this directory of the storage directory, as
# `{pid}-{32 hex}.tmp` or `.deleted`: the pid says whether the process that
# made one may still use it. Releases before 0.3 kept them beside the images
# as `.incoming-{pid}-{32 hex}.tmp` (the earliest without a pid).
TEMPORARY_DIRECTORY = '.incoming'
TEMPORARY_PREFIX = '.incoming-'
_TEMPORARY = re.compile(
    r'(?:\.incoming-)?(?:(?P<pid>[1-9][0-9]{0,9})-)?[0-9a-f]{32}\.(?:tmp|deleted)'
)
# A temporary file without a pid belongs to an upload for no longer than this.
ABANDONED_AFTER_SECONDS = 3600

# Sides of up to five digits, lengths of up to 18: what a JPEG and the
# catalog hold (sides of 16 bits, see _MAX_SIDE; SQLite's signed 64-bit integers).
_NAME = re.compile(
    r'(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'
    r'\.(?P<width>[1-9][0-9]{0,4})x(?P<height>[1-9][0-9]{0,4})'
    r'\.(?P<length>[1-9][0-9]{0,17})\.jpeg'
)
# The widest and tallest JPEG: its frame header holds each side in 16 bits.
_MAX_SIDE = 0xFFFF
# The times a record holds, in ns since 1970: the catalog keeps them in
# SQLite's signed 64-bit integers (to 2262-04-11T23:47:16Z), and the list
# shows none before 1970. A file's time outside is moved to the nearer end.
_TIMES_NS = range(0, 2**63)


def temporary_path(directory: pathlib.Path, suffix: str = '.tmp') -> pathlib.Path:
    """Return a new name for a file on its way in or out of a storage directory.

    In the storage directory's file system, so that renaming it into place
    (or out of it) is one step.
    """
    name = f'{os.getpid()}-{uuid.uuid4().hex}{suffix}'
    return directory / TEMPORARY_DIRECTORY / name


def prepare_incoming(directory: pathlib.Path) -> list[tuple[str, str]]:
    """Make the directory of files on their way in, and check that it takes one.

    Then remove the leftovers of earlier processes from it (see
    clear_leftovers); return the names of those left, and why.
    """
    incoming = directory / TEMPORARY_DIRECTORY
    os.makedirs(incoming, exist_ok=True)
    probe = temporary_path(directory)
    with open(probe, 'wb'):
        pass
    os.remove(probe)
    return clear_leftovers(incoming, os.listdir(incoming))


def read_record(item: os.DirEntry[str]) -> tuple[Record | None, str]:
    """Return the record a file's name, size and time make, or why it makes none.

    The reason is empty for hidden files: those asgilook keeps beside its
    images (the catalog, the service key), and the system's. With a record,
    it says why the record is not dated with the file's time, if it is not.
    """
    if item.name.startswith('.'):
        return None, ''
    match = _NAME.fullmatch(item.name)
    if match is None or max(int(match['width']), int(match['height'])) > _MAX_SIDE:
        return None, 'not the name of an image'
    stat = item.stat(follow_symlinks=False)
    length = int(match['length'])
    if not item.is_file(follow_symlinks=False) or stat.st_size != length:
        return None, f'{stat.st_size} bytes where its name says {length}: damaged'
    size = (int(match['width']), int(match['height']))
    modified = min(max(stat.st_mtime_ns, _TIMES_NS.start), _TIMES_NS.stop - 1)
    record = Record(match['id'], size, length, modified)
    return record, '' if modified == stat.st_mtime_ns else _out_of_range(modified)


def holds(directory: pathlib.Path, record: Record) -> bool:
    """Return whether the file of a record is there, as read_record reads it.

    A regular file of the length its name says (its content is not read).
    """
    try:
        # Not a Path: a reindex asks this of every file it lists or unlists.
        found = os.lstat(os.path.join(directory, record.name))
    except FileNotFoundError:
        return False
    return S_ISREG(found.st_mode) and found.st_size == record.length


def _out_of_range(modified_ns: int) -> str:
    side = 'before' if modified_ns == _TIMES_NS.start else 'after'
    dated = datetime.datetime.fromtimestamp(modified_ns // 10**9, datetime.UTC)
    return (
        f'its time is {side} the range the catalog holds (1970 to 2262): '
        f'dated {dated:%Y-%m-%d %H:%M:%S} UTC'
    )


def check(directory: int, name: str, record: Record) -> str:
    """Return why the file of a record is not the JPEG its name says, or ''.

    directory: a descriptor of the directory the file named name is in.
    OSError if it cannot be read.
    """
    try:
        size = jpeg.frame_size(name, directory)
    except JPEGError as ex:
        return str(ex)
    if size != record.size:
        named = f'{record.size[0]}x{record.size[1]}'
        return f'a JPEG of {size[0]}x{size[1]} where its name says {named}'
    return ''


def clear_leftovers(directory: pathlib.Path, names: list[str]) -> list[tuple[str, str]]:
    """Remove the temporary files no upload in progress can be using.

    Those whose process has ended, those of this process's pid (left by an
    earlier process that had it: this one has none yet when it first reads
    the directory), and those without a pid older than an hour. Log what is
    removed; return the names left that may be leftovers, and why.
    """
    left = []
    for name in names:
        path = directory / name
        match = _TEMPORARY.fullmatch(name)
        try:
            why = None if match is None else _abandoned(path, match['pid'])
            if why is not None:
                os.remove(path)
                logger.warning('removed %s from %s: %s', name, directory, why)
        except FileNotFoundError:
            continue
        except OSError as ex:
            left.append((name, f'a leftover that cannot be removed: {ex.strerror}'))
            continue
        if why is None and (match is None or match['pid'] is None):
            left.append((name, 'an upload in progress or interrupted'))
    return left


def _abandoned(path: pathlib.Path, pid: str | None) -> str | None:
    """Return why no upload is using a temporary file, or None if one may be."""
    if pid is None:
        age = time.time() - os.stat(path).st_mtime
        if age > ABANDONED_AFTER_SECONDS:
            return 'an upload interrupted over an hour ago'
        return None
    if int(pid) == os.getpid():
        return f'left by an earlier process {pid}'
    if not _alive(int(pid)):
        return f'left by process {pid}, which has ended'
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        # Someone else's process: alive.
        return True
    return True


class StoredFile:
    """A stored file open for reading off the event loop: a response's stream.

    What Falcon sends as `resp.stream` (it awaits `read(size)` until b'',
    then `close()`), and what a cache reads whole (`read()`).
    """

    # What one iteration reads.
    CHUNK = 64 * 1024

    def __init__(self, file: BinaryIO) -> None:
        self._file = file

    @classmethod
    async def open(cls, path: pathlib.Path) -> StoredFile:
        """Open a file; FileNotFoundError if it is gone."""
        return cls(await blocking.run(blocking.FILES, _open_binary, path))

    async def read(self, size: int | None = -1) -> bytes:
        """Return up to size bytes (all that are left if size is -1 or None)."""
        return await blocking.run(
            blocking.FILES, self._file.read, -1 if size is None else size
        )

    async def close(self) -> None:
        await blocking.run(blocking.FILES, self._file.close)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.read(self.CHUNK):
            yield chunk


def _open_binary(path: pathlib.Path) -> BinaryIO:
    return open(path, 'rb')
