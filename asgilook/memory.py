"""The in-process tier of the cache: recent entries, bounded by bytes."""

from __future__ import annotations

import collections
from typing import Any


class MemoryTier:
    """Keep items of known size up to a byte budget, dropping the least recent.

    An item larger than an eighth of the budget is not kept: one huge image
    would otherwise push out everything the tier is for.
    """

    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        self._items: collections.OrderedDict[str, tuple[Any, int]] = (
            collections.OrderedDict()
        )
        self._bytes = 0

    def get(self, key: str) -> Any:
        """Return the item kept under key, or None."""
        kept = self._items.get(key)
        if kept is None:
            return None
        self._items.move_to_end(key)
        return kept[0]

    def put(self, key: str, item: Any, size: int) -> None:
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
        kept = self._items.pop(key, None)
        if kept is not None:
            self._bytes -= kept[1]

    @property
    def size(self) -> int:
        """How many bytes the kept items take."""
        return self._bytes
