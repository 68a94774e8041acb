"""Bytes: what the store asks of the place its JPEGs are kept.

Two implementations: the storage directory (directory.py), one host's; an
S3-compatible object store (objects.py), shared by several hosts. Files on
their way in are the host's own, in its storage directory.
"""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Stored(Protocol):
    """A stored JPEG open for reading, off the event loop: a response's stream."""

    async def read(self, size: int | None = -1) -> bytes:
        """Return up to size bytes (all that are left if size is -1 or None)."""

    async def close(self) -> None:
        """Let it go."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        """Its bytes, a chunk at a time."""


class Bytes(Protocol):
    """Keep stored JPEGs under their names: written durably, read, let go."""

    @property
    def where(self) -> str:
        """Where they are kept, as a log line says it."""

    @property
    def variable(self) -> str:
        """The variable that says where they are kept."""

    # The host's directory: of the stored JPEGs, or of its files on their way in.
    path: pathlib.Path

    async def prepare(self) -> None:
        """Make sure the JPEGs can be kept; OSError if they cannot."""

    async def check(self) -> None:
        """Make sure JPEGs can be kept now, cheaply; OSError if they cannot."""

    async def release(self) -> None:
        """Let go of what a server that stops holds."""

    def temporary_path(self, suffix: str = '.tmp') -> pathlib.Path:
        """Return a new local name for a file on its way in or out."""

    async def write(self, path: pathlib.Path, data: bytes) -> None:
        """Write a new file on its way in whole, durably (or hold it until stored)."""

    def kept(self, path: pathlib.Path) -> None:
        """Let go of what is held of a file on its way in, now that it is stored."""

    async def discard(self, path: pathlib.Path) -> None:
        """Remove a file on its way in, quietly."""

    def readable(self, name: str) -> AbstractAsyncContextManager[pathlib.Path | bytes]:
        """A stored JPEG for a renderer to read: a local file, or its bytes."""

    async def open(self, name: str) -> Stored:
        """Open a stored JPEG for reading; FileNotFoundError if it is gone."""
