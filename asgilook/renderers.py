"""Thumbnail renders in processes of their own, away from the event loop's GIL.

A render in a thread of the server's process shares that process's one GIL
with the event loop and with the other renders. Between the steps of a render
(open, decode, encode) Pillow runs Python, and a render waiting for the GIL
leaves its CPU idle: under a stream of cold thumbnails 15% of the CPUs stood
idle with renders in threads, 4% with renders in processes.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import multiprocessing
import os
import signal
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from . import blocking, imaging, lifetimes
from .errors import RenderError

logger = logging.getLogger(__name__)


# Starts the processes of a pool: ProcessPoolExecutor's signature (workers,
# mp_context=, initializer=, initargs=), or a test's pool.
PoolFactory = Callable[..., ProcessPoolExecutor]


class RenderProcesses:
    """Render thumbnails (`imaging.resize`) in up to `workers` processes.

    The processes start at the first render, afresh (multiprocessing's
    spawn), with none of the threads of the process that asked. A process
    that dies (killed for its memory, say) takes its render with it: the pool
    is replaced and the render tried once more. Where processes cannot be
    started at all, renders go to `threads`, and the log says why once.

    pools makes a pool (ProcessPoolExecutor).
    """

    def __init__(
        self,
        workers: int,
        threads: Executor,
        pools: PoolFactory = ProcessPoolExecutor,
    ) -> None:
        self._workers = workers
        self._threads = threads
        self._pools = pools
        self._pool: ProcessPoolExecutor | None = None
        self._startable = True
        # Submits to the pool that may still start one of its processes.
        self._starting = 0

    async def resize(
        self, source: str | os.PathLike[str], size: tuple[int, int], quality: int
    ) -> bytes:
        """Render a stored JPEG at size as `imaging.resize` does, in a process."""
        for _ in range(2):
            if not self._startable:
                return await blocking.run(
                    self._threads, imaging.resize, source, size, quality
                )
            pool = self._pool or self._start()
            try:
                rendering = await self._submit(pool, source, size, quality)
            except BrokenProcessPool:
                self._discard(pool)
                continue
            except OSError as ex:
                self._give_up_processes(pool, ex)
                continue
            try:
                # An OSError here is the render's own, such as its file gone.
                return await rendering
            except BrokenProcessPool:
                self._discard(pool)
        raise RenderError(f'the process rendering {source} at {size} died')

    async def close(self) -> None:
        """Let the processes go, and wait until they have gone.

        A server may end right after its shutdown (uvicorn raises again the
        signal that stopped it): processes not told to go by then would be
        left running. The next render starts new ones.
        """
        pool, self._pool = self._pool, None
        if pool is not None:
            await blocking.run(
                blocking.FILES, functools.partial(pool.shutdown, cancel_futures=True)
            )

    async def _submit(
        self,
        pool: ProcessPoolExecutor,
        source: str | os.PathLike[str],
        size: tuple[int, int],
        quality: int,
    ) -> Awaitable[bytes]:
        """Hand a render to the pool; return what will be its outcome."""
        if self._starting:
            # Submitting starts a process while not all of them run (the
            # first, multiprocessing's resource tracker too: 2-9 ms, longer
            # on a busy machine), which must not hold the event loop: it
            # waits in the default executor.
            self._starting -= 1
            started = await blocking.run(
                blocking.FILES, pool.submit, imaging.resize, source, size, quality
            )
            return asyncio.wrap_future(started)
        return blocking.run(pool, imaging.resize, source, size, quality)

    def _start(self) -> ProcessPoolExecutor:
        self._pool = self._pools(
            self._workers,
            mp_context=_SPAWN,
            initializer=end_with,
            initargs=(os.getpid(),),
        )
        self._starting = self._workers
        return self._pool

    def _give_up_processes(self, pool: ProcessPoolExecutor, ex: OSError) -> None:
        logger.warning(
            'cannot start processes to render thumbnails (%s); rendering '
            'them in threads (ASGI_LOOK_RENDER_PROCESSES=0 does so from '
            'the start)',
            ex,
        )
        self._startable = False
        self._discard(pool)

    def _discard(self, pool: ProcessPoolExecutor) -> None:
        if self._pool is pool:
            self._pool = None
        pool.shutdown(wait=False, cancel_futures=True)


# Not the fork server, which starts faster but makes a directory (pymp-*, for
# its socket) in the system's temporary directory that only the worker's
# exit removes: a worker ended by its signal, as uvicorn ends it, left one
# behind each time. The first render costs the same either way (a Python
# that imports Pillow), and each process holds its own memory either way
# once it has rendered.
_SPAWN = multiprocessing.get_context('spawn')


def end_with(pid: int) -> None:
    """Exit this render process at once when its worker, pid, has ended.

    Runs in each render process as it starts, so that none outlives a worker
    that was killed (`kill -9`) and could not let it go. Ctrl-C, which a
    terminal sends to every process of the server, is left to the worker:
    its graceful stop lets the renders in flight finish, then lets the
    processes go (a render process would print a KeyboardInterrupt).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    lifetimes.when_ended(pid, functools.partial(os._exit, 0))
