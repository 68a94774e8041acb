"""The files of a storage directory: images by name and content, and leftovers.

Every function blocks but those of StoredFile, which read off the event loop.
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import BinaryIO

from .. import blocking

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
    probe(directory)
    return clear_leftovers(incoming, os.listdir(incoming))


def probe(directory: pathlib.Path) -> None:
    """Write and remove an empty file on its way in (OSError if it cannot be).

    The directory of files on their way in is not made: a storage
    directory that is gone stays gone.
    """
    path = temporary_path(directory)
    with open(path, 'xb'):
        pass
    os.remove(path)


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
