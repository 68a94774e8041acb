"""Bytes: what the store asks of the place its JPEGs are kept.

One implementation today, the storage directory (directory.py); an object
store would be another. Files on their way in are local to the host.
"""

from __future__ import annotations

import pathlib
from typing import Protocol

from .files import StoredFile


class Bytes(Protocol):
    """Keep stored JPEGs under their names: write durably, open, remove."""

    # The host's directory: of the stored JPEGs, or of its files on their way in.
    path: pathlib.Path

    async def prepare(self) -> None:
        """Make sure the JPEGs can be kept; OSError if they cannot."""

    def temporary_path(self, suffix: str = '.tmp') -> pathlib.Path:
        """Return a new local name for a file on its way in or out."""

    async def write(self, path: pathlib.Path, data: bytes) -> None:
        """Write a new file on its way in whole, durably."""

    async def discard(self, path: pathlib.Path) -> None:
        """Remove a file on its way in, quietly."""

    def local_path(self, name: str) -> pathlib.Path:
        """The local file a stored JPEG is read from by a renderer."""

    async def open(self, name: str) -> StoredFile:
        """Open a stored JPEG for reading; FileNotFoundError if it is gone."""
