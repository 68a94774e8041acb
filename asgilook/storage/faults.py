"""Storage faults in the store's words: a full disk, a storage that fails.

`storage_errors` is the one place where what a catalog or a file system
raises becomes StorageFullError (507) or StorageUnavailableError (503).
"""

from __future__ import annotations

import collections
import contextlib
import errno
import logging
from collections.abc import Awaitable, Iterator

from .. import logs
from ..errors import (
    CatalogError,
    CatalogFullError,
    StorageError,
    StorageFullError,
    StorageUnavailableError,
)

logger = logging.getLogger('asgilook.storage')

# What a write that ran out of room fails with: the disk, the quota, a size limit.
_NO_ROOM = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


@contextlib.contextmanager
def startup_errors(where: str, variable: str) -> Iterator[None]:
    """Turn a storage that cannot be prepared or opened at start into one error.

    StorageUnavailableError, naming the variable: the start stops with it.
    """
    try:
        yield
    except (OSError, CatalogError) as ex:
        raise StorageUnavailableError(
            f'cannot store images in {where} '
            f'({variable}): {getattr(ex, "strerror", None) or ex}'
        ) from ex


@contextlib.contextmanager
def storage_errors(gone: bool = False) -> Iterator[None]:
    """Turn a failed read or write of the storage into the store's word for it.

    A file system that fails is said once a minute for each kind of failure
    (the catalog says its own: catalog/faults.py). gone: a stored JPEG that
    is not there stays FileNotFoundError (its image is unlisted then).
    """
    try:
        yield
    except CatalogFullError as ex:
        raise StorageFullError from ex
    except CatalogError as ex:
        raise StorageUnavailableError from ex
    except OSError as ex:
        if gone and isinstance(ex, FileNotFoundError):
            raise
        full = ex.errno in _NO_ROOM
        _say(ex, full)
        raise (StorageFullError if full else StorageUnavailableError) from ex


# Each kind of failure of the file system (its errno), said once a minute.
_FAILURES: collections.defaultdict[int | None, logs.Throttle] = collections.defaultdict(
    logs.Throttle
)


async def answers(check: Awaitable[None]) -> bool:
    """Whether a check of the catalog or the storage passes (see storage_errors)."""
    try:
        with storage_errors():
            await check
    except StorageError:
        return False
    return True


def _say(ex: OSError, full: bool) -> None:
    more = _FAILURES[ex.errno].take()
    if more is None:
        return
    if full:
        logger.warning(
            'the storage has no room (%s): uploads answer 507 until it has%s', ex, more
        )
    else:
        logger.warning(
            'the storage cannot be read or written (%s): what needs it answers '
            '503 until it can%s',
            ex,
            more,
        )
