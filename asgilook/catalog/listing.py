"""The unpaged list of images: in one piece, or a batch at a time from a snapshot."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

from ..errors import CatalogError
from ..storage.directory import storage_errors
from .database import Catalog
from .record import Record
from .snapshot import Snapshot

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


class Batches(Generic[Item]):
    """The images of a snapshot of the catalog, size at a time (close it after).

    StorageError if the catalog fails on the way.
    """

    def __init__(
        self,
        catalog: Catalog,
        snapshot: Snapshot,
        size: int,
        image: Callable[[Record], Item],
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
