"""SharedTallies: a worker's tallies, in the directory its server's workers share.

prometheus_client writes its own metrics to that directory as they change
(its multiprocess mode). A worker's tallies (tallies.py) are written there
as a file of their own once a second while they change, and when it stops,
so that a scrape of any worker adds up every worker's within a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pathlib
import uuid
from collections.abc import Mapping
from typing import Any

from .. import blocking
from .tallies import Snapshot, Tallies

# How often a worker writes its tallies while they change, in seconds.
WRITE_SECONDS = 1.0

logger = logging.getLogger(__name__)


class SharedTallies:
    """Write one worker's tallies to the shared directory; read the others'.

    A Falcon middleware for its lifespan: the writing starts with the
    server and ends with a last write when it stops. The file of a worker
    that died stays, as its prometheus_client files do (a counter never
    goes down); each start has a file of its own, whatever its pid.
    """

    def __init__(self, tallies: Tallies, directory: str) -> None:
        self._tallies = tallies
        self.directory = pathlib.Path(directory)
        self.path = self.directory / f'tallies_{os.getpid()}_{uuid.uuid4().hex}.json'
        self._written = ''
        # Started with the server (process_startup), which comes first.
        self._writing: asyncio.Task[None]

    async def process_startup(
        self, scope: Mapping[str, Any], event: Mapping[str, Any]
    ) -> None:
        self._writing = asyncio.create_task(self._keep_writing())

    async def process_shutdown(
        self, scope: Mapping[str, Any], event: Mapping[str, Any]
    ) -> None:
        self._writing.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writing
        await self._write()

    async def _keep_writing(self) -> None:
        while True:
            await asyncio.sleep(WRITE_SECONDS)
            await self._write()

    async def _write(self) -> None:
        text = json.dumps(self._tallies.snapshot())
        if text == self._written:
            return
        try:
            await blocking.run(blocking.FILES, _replace, self.path, text)
        except OSError as ex:
            # Counted on, and written at the next change; the service goes on.
            logger.warning('could not write the metrics to %s: %s', self.path, ex)
            return
        self._written = text

    def others(self) -> list[Snapshot]:
        """The tallies every other worker of the server wrote (blocking)."""
        snapshots = []
        for path in self.directory.glob('tallies_*.json'):
            if path == self.path:
                continue
            # Gone meanwhile: its server stopped.
            with contextlib.suppress(OSError):
                snapshots.append(json.loads(path.read_text()))
        return snapshots


def _replace(path: pathlib.Path, text: str) -> None:
    """Write a file whole under another name, then give it its own (blocking).

    A reader finds the last file or the one before, never half of one.
    """
    written = path.with_suffix('.tmp')
    written.write_text(text)
    written.replace(path)
