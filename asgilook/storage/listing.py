"""The unpaged list of images: in one piece, or a batch at a time from a snapshot."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any, Generic, Protocol, TypeVar

from ..errors import CatalogError, LongListsError
from .faults import storage_errors

# What the list holds: the store's images, each made of a record.
Item = TypeVar('Item')


@dataclasses.dataclass(frozen=True)
class Listing(Generic[Item]):
    """The whole list of one moment, and its version.

    Its images when it was read in one piece, or its batches (a long list,
    read from a snapshot); neither when only its version was read.
    """

    version: str
    images: list[Item] | None = None
    batches: Batches[Item] | None = None


class Snapshots(Protocol):
    """What a catalog reads a long list from: a snapshot, a batch at a time."""

    async def snapshot(self) -> Any:
        """Return a snapshot of the list (its `version`, `count`), kept open."""

    async def read_snapshot(self, snapshot: Any, size: int) -> list[Any]:
        """Return the next records of a snapshot (none: it is all read)."""

    async def close_snapshot(self, snapshot: Any) -> None:
        """Let a snapshot go."""


class Batches(Generic[Item]):
    """The images of a snapshot of the catalog, size at a time (close it after).

    StorageError if the catalog fails on the way.
    """

    def __init__(
        self,
        catalog: Snapshots,
        snapshot: Any,
        size: int,
        image: Callable[[Any], Item],
        closed: Callable[[], None],
    ) -> None:
        self._catalog = catalog
        self._snapshot = snapshot
        self._size = size
        self._image = image
        self._closed = closed
        self._open = True
        self.count = snapshot.count

    async def __aiter__(self) -> AsyncIterator[list[Item]]:
        while True:
            with storage_errors():
                records = await self._catalog.read_snapshot(self._snapshot, self._size)
            if not records:
                return
            yield [self._image(record) for record in records]

    async def close(self) -> None:
        if not self._open:
            return
        self._open = False
        self._closed()
        # Closing a connection fails only if it is gone already.
        with contextlib.suppress(CatalogError):
            await self._catalog.close_snapshot(self._snapshot)


class LongLists:
    """The long lists a worker sends at once: each holds a snapshot open."""

    def __init__(self, most: int) -> None:
        self._most = most
        self._sent = 0

    async def read(
        self, catalog: Snapshots, size: int, image: Callable[[Any], Item]
    ) -> Listing[Item]:
        """Return a long list read size images at a time from a new snapshot.

        LongListsError if `most` are sent now; the place is given back when
        its batches are closed.
        """
        if self._sent >= self._most:
            raise LongListsError(self._most)
        self._sent += 1
        try:
            snapshot = await catalog.snapshot()
        except BaseException:
            self._sent -= 1
            raise
        batches = Batches(catalog, snapshot, size, image, self._ended)
        return Listing(snapshot.version, batches=batches)

    def _ended(self) -> None:
        self._sent -= 1
