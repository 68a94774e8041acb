"""What is wrong with a catalog, said once with what to do, and when it is over."""

from __future__ import annotations

import logging
import pathlib
import sqlite3

from . import connections
from .identity import MovedError

logger = logging.getLogger('asgilook.catalog')

# What each kind of fault means, and what to do; each said once while it lasts.
_SAID = {
    'gone': 'the catalog {path} is gone ({error}): the list, uploads and '
    'deletes answer 503 until it is back; put it back, or restart the service '
    'to make a new one, which lists the image files it finds',
    'moved': 'the catalog {path} changed under the service ({error}): this '
    'worker opens the one there now',
    'read-only': 'the catalog {path} cannot be written ({error}): uploads and '
    'deletes answer 503 until it can; make it writable again',
    'damaged': 'the catalog {path} is damaged ({error}): stop the service, move '
    '{path.parent} away and start it again; the new catalog lists the image '
    'files it finds, and delete tokens stay good',
    'failing': 'the catalog {path} fails ({error}): what needs it answers 503 '
    'until it works again',
}
_READ_ONLY = frozenset({sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM})
_DAMAGED = frozenset({sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB})
# What is no fault of the catalog: the disk full (507), a wait for the lock.
_NO_FAULT = frozenset({sqlite3.SQLITE_FULL, sqlite3.SQLITE_BUSY})


class Faults:
    """The faults of one catalog now: each logged as it begins, and their end."""

    def __init__(self, path: pathlib.Path) -> None:
        self._path = path
        self._lasting: set[str] = set()

    def failed(self, ex: sqlite3.Error) -> None:
        """Note an error of the catalog (logged if its kind is new)."""
        kind = _kind(ex)
        if kind is None or kind in self._lasting:
            return
        self._lasting.add(kind)
        logger.warning(_SAID[kind].format(path=self._path, error=ex))

    def worked(self) -> None:
        """Note a read or change that succeeded: every fault is over."""
        if self._lasting:
            self._lasting.clear()
            logger.warning('the catalog %s works again', self._path)


def _kind(ex: sqlite3.Error) -> str | None:
    if isinstance(ex, MovedError):
        return 'gone' if ex.gone else 'moved'
    code = connections.error_code(ex)
    if code in _NO_FAULT:
        return None
    if code in _READ_ONLY:
        return 'read-only'
    if code in _DAMAGED:
        return 'damaged'
    return 'failing'
