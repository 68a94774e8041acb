"""The service key kept in the catalog, and its copy in the storage directory.

Without ASGI_LOOK_SECRET the key is made once and kept in the catalog (its
settings table), which every worker of the storage directory, and every
start, reads: it is made in one transaction, so that workers starting at
once make one. A copy is kept in the storage directory (`.service-key`,
mode 0600), so that a catalog made anew (removed, damaged) takes the key
the one before had, and the delete tokens it issued stay good. A copy that
is missing, damaged (too short, over 4 KiB, a symbolic link, no regular
file) or another key is written again from the catalog, and said; a
damaged copy with no key in the catalog (a directory of asgilook 0.8 or
older, whose key lived in the file alone) stops the start: a new key would
revoke every delete token, which is never done silently.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import pathlib
import secrets
import stat

from .. import blocking
from ..errors import ServiceKeyError
from ..storage import files
from .database import SqliteCatalog

logger = logging.getLogger('asgilook.signing')

# The file of the storage directory that keeps a copy of the key.
KEY_FILE_NAME = '.service-key'
# The catalog's setting that keeps the key.
KEY_SETTING = 'service_key'
# The length of a key made here, in hex characters; a shorter one is damaged.
_KEY_LENGTH = 64
_MIN_KEY_LENGTH = 32


async def kept_secret(catalog: SqliteCatalog) -> tuple[bytes, bool]:
    """Return the key kept in the catalog (made if there is none), and its copy.

    And whether the copy in the storage directory was written (the directory
    changed). ServiceKeyError if the copy is damaged and the catalog has no
    key, or the copy cannot be read or written.
    """
    path = catalog.directory / KEY_FILE_NAME
    # The catalog first: a copy it says was written was there before.
    kept, copied = await catalog.setting(KEY_SETTING), await catalog.setting(_COPIED)
    copy, damaged = await blocking.run(blocking.FILES, _read_copy, path)
    if kept is None:
        if damaged:
            raise ServiceKeyError(
                f'the service key {path} is damaged; remove it to have a new one '
                'made (delete tokens issued so far are then refused, cached '
                'answers computed again), or set ASGI_LOOK_SECRET'
            )
        made = copy or secrets.token_hex(_KEY_LENGTH // 2).encode()
        # The first worker's, if several start at once.
        kept = await catalog.keep_setting(KEY_SETTING, made.decode())
    secret = str(kept).encode()
    if copy == secret:
        return secret, False
    await blocking.run(blocking.FILES, _write_copy, catalog.directory, path, secret)
    await catalog.keep_setting(_COPIED, 1)
    if damaged:
        _restored(path, 'was damaged')
    elif copy is not None:
        _restored(path, 'held another key')
    elif copied is not None:
        _restored(path, 'was missing')
    return secret, True


# The catalog's setting that says the copy of the key was written once.
_COPIED = 'service_key_copied'


def _restored(path: pathlib.Path, why: str) -> None:
    logger.warning(
        '%s %s: it was written again from the catalog, whose key every worker '
        'signs with (set ASGI_LOOK_SECRET to sign with another)',
        path,
        why,
    )


def _read_copy(path: pathlib.Path) -> tuple[bytes | None, bool]:
    """Return the key a copy holds (None if there is none), and if it is damaged."""
    try:
        content = _read_file(path)
    except FileNotFoundError:
        return None, False
    except OSError as ex:
        raise ServiceKeyError(
            f'cannot read the service key {path} (or set ASGI_LOOK_SECRET): '
            f'{ex.strerror or ex}'
        ) from ex
    if content is None or len(content) > _MOST_READ:
        return None, True
    secret = content.strip()
    if len(secret) < _MIN_KEY_LENGTH:
        return None, True
    return secret, False


# The most of a copy that is read: a key made here is 65 bytes with its
# newline; a longer copy (up to 4 KiB) is taken as it is, a copy over that is
# damaged (one byte more is read to tell).
_MOST_READ = 4096
# The copy is never followed (a link to /dev/zero was read without end) nor
# waited for (opening a FIFO waited for a writer, and the start with it).
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
# What opening a path that is no file gives: a symbolic link, a socket.
_NO_FILE = frozenset({errno.ELOOP, errno.ENXIO})


def _read_file(path: pathlib.Path) -> bytes | None:
    """Return the start of the regular file at path, None if it is no regular file."""
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as ex:
        if ex.errno in _NO_FILE:
            return None
        raise
    try:
        mode = os.fstat(descriptor).st_mode
        # A directory is read, and fails as it always did: no copy can
        # replace it, and the start says so.
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return None
        with open(descriptor, 'rb', closefd=False) as copy:
            return copy.read(_MOST_READ + 1)
    finally:
        os.close(descriptor)


def _write_copy(directory: pathlib.Path, path: pathlib.Path, secret: bytes) -> None:
    """Write a copy of the key whole under another name, then rename it into place."""
    # Written where uploads are: a next start removes it if this one dies.
    partial = files.temporary_path(directory)
    try:
        partial.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, 'wb') as output:
            output.write(secret + b'\n')
            output.flush()
            os.fsync(output.fileno())
        os.replace(partial, path)
    except OSError as ex:
        with contextlib.suppress(OSError):
            os.remove(partial)
        raise ServiceKeyError(
            f'cannot write the service key {path} (or set ASGI_LOOK_SECRET): '
            f'{ex.strerror or ex}'
        ) from ex
