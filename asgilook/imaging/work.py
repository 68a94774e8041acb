"""The Pillow work of a worker, off the event loop: threads, and render processes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .. import blocking
from ..config import Config
from . import convert, formats
from .renderers import RenderProcesses


class PillowWork:
    """Decode at most `image_workers` images at once, however many requests wait.

    Uploads are converted in its threads; thumbnails are rendered in
    processes of their own (renderers.py), or in the threads if
    `render_processes` is 0.
    """

    def __init__(self, config: Config) -> None:
        self.threads = ThreadPoolExecutor(
            max_workers=config.image_workers, thread_name_prefix='asgilook-pillow'
        )
        self._config = config
        self._renders = (
            RenderProcesses(config.render_processes, self.threads)
            if config.render_processes
            else None
        )

    async def resize(
        self, source: convert.Source, size: tuple[int, int], extension: str
    ) -> bytes:
        """Render a stored JPEG scaled to size, in a format (see convert.resize)."""
        quality = formats.quality(self._config, extension)
        if self._renders is not None:
            return await self._renders.resize(source, size, quality, extension)
        return await blocking.run(
            self.threads, convert.resize, source, size, quality, extension
        )

    async def close(self) -> None:
        """Let the render processes go (they start again at the next render)."""
        if self._renders is not None:
            await self._renders.close()
