"""Catalog: what the store asks of the place that lists its images.

The records, their pages and long lists, the change log and its token,
settings, and changes (each one transaction). Two implementations: SQLite
in the storage directory (database.py), one host's; PostgreSQL
(postgres.py), shared by several hosts.
"""

from __future__ import annotations

import pathlib
from typing import Any, Protocol

from .changes import Removal
from .log import Change, Span
from .record import Page, Record


class Catalog(Protocol):
    """List the complete images of the service, and change the list with them."""

    @property
    def where(self) -> str:
        """Where they are kept, as a log line says it."""

    @property
    def variable(self) -> str:
        """The variable that says where they are kept."""

    def token(self) -> bytes | None:
        """Return a token that moves whenever any process changes the catalog.

        Read on the event loop, at every request: it must cost next to nothing.
        """

    async def check(self) -> None:
        """Ask it a question that costs nothing; CatalogError if it cannot answer."""

    async def get(self, image_id: str) -> Record | None:
        """Return the record listed under an id, or None."""

    async def version(self) -> str:
        """Return the catalog's version: it changes with every change."""

    async def listing(self, at_most: int) -> tuple[list[Record] | None, str]:
        """Return every record and the version, or (None, version) past at_most."""

    async def snapshot(self) -> Any:
        """Return a snapshot of the list (its `version`, `count`), kept open."""

    async def read_snapshot(self, snapshot: Any, size: int) -> list[Record]:
        """Return the next records of a snapshot (none: it is all read)."""

    async def close_snapshot(self, snapshot: Any) -> None:
        """Let a snapshot go."""

    async def page(self, after: int, limit: int, newest: bool = False) -> Page:
        """Return up to limit records uploaded after (newest: before) one."""

    async def changes(self, after: int, limit: int) -> list[Change]:
        """Return up to limit changes of the log after the one numbered after."""

    async def change_span(self) -> Span:
        """Return which changes the log can tell now."""

    async def setting(self, name: str) -> Any:
        """Return the value of a setting kept in the catalog, or None."""

    async def keep_setting(self, name: str, value: object) -> Any:
        """Give a setting a value if it has none; return the value it has then."""

    async def add(
        self, image_id: str, size: tuple[int, int], length: int, temporary: pathlib.Path
    ) -> Record | None:
        """List a new image whose JPEG was written to temporary, in one transaction.

        None if the id is taken (nothing is changed then).
        """

    async def remove(self, image_id: str, trash: pathlib.Path) -> Removal:
        """Unlist an image, its JPEG moved to trash and removed, in one transaction."""

    async def close(self) -> None:
        """Close the catalog's connections (it opens again when asked)."""

    def shutdown(self) -> None:
        """Let the catalog's threads go: it serves no more."""

    async def release(self) -> None:
        """Let go of what a server that stops holds (it opens again at start)."""
