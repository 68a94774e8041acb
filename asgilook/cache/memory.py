"""The in-process tier: answers kept in memory, their Hit headers rendered once."""

from __future__ import annotations

import collections
import dataclasses
from typing import Generic, TypeVar

from .entries import Entry

# Says where an answer came from: Hit, Miss or Bypass.
CACHE_HEADER = 'X-ASGILook-Cache'
_HIT = (CACHE_HEADER.lower().encode(), b'Hit')

T = TypeVar('T')


@dataclasses.dataclass(frozen=True, slots=True)
class Kept:
    """An entry ready to be sent as a Hit, and until when memory may send it.

    Its headers are rendered once, here: `headers` for a Falcon response,
    `asgi_headers` (the same, and Content-Length) for an ASGI send.
    """

    entry: Entry
    headers: list[tuple[str, str]]
    asgi_headers: list[tuple[bytes, bytes]]
    # The catalog's token when it was kept (None: it may not be kept).
    token: bytes | None
    fresh_until: float
    # The route (URI template) it answers, as the metrics name it.
    route: str = ''


def kept(
    entry: Entry, token: bytes | None, fresh_until: float, route: str = ''
) -> Kept:
    """Return entry as a Hit, with its headers rendered."""
    # In lower case, as Falcon and ASGI servers send them.
    headers = [
        ('content-type', entry.content_type),
        *((name.lower(), value) for name, value in entry.headers.items()),
    ]
    asgi_headers = [(name.encode(), value.encode()) for name, value in headers]
    asgi_headers.append((b'content-length', str(len(entry.body)).encode()))
    asgi_headers.append(_HIT)
    headers.append((CACHE_HEADER.lower(), 'Hit'))
    return Kept(entry, headers, asgi_headers, token, fresh_until, route)


class MemoryTier(Generic[T]):
    """Keep items of known size up to a byte budget, dropping the least recent.

    An item larger than an eighth of the budget is not kept: one huge image
    would otherwise push out everything the tier is for.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: collections.OrderedDict[str, tuple[T, int]] = (
            collections.OrderedDict()
        )
        self._bytes = 0

    def get(self, key: str) -> T | None:
        """Return the item kept under key, or None."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: str, item: T, size: int) -> None:
        """Keep an item of `size` bytes under key, replacing what was there."""
        self.discard(key)
        if size > self._max_bytes // 8:
            return
        self._items[key] = (item, size)
        self._bytes += size
        while self._bytes > self._max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self._bytes -= dropped

    def discard(self, key: str) -> None:
        """Forget what is kept under key, if anything."""
        item = self._items.pop(key, None)
        if item is not None:
            self._bytes -= item[1]

    @property
    def size(self) -> int:
        """How many bytes the kept items take."""
        return self._bytes
