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
import select
import threading
import time
from collections.abc import Awaitable, Callable, Collection
from concurrent.futures import Executor, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.context import BaseContext

from . import blocking, imaging
from .errors import RenderError

logger = logging.getLogger(__name__)


# Starts the processes of a pool: ProcessPoolExecutor's signature (workers,
# mp_context=, initializer=, initargs=), or a test's pool.
PoolFactory = Callable[..., ProcessPoolExecutor]


class RenderProcesses:
    """Render thumbnails (`imaging.resize`) in up to `workers` processes.

    The processes start at the first render. They are forked from a server
    process that has imported Pillow and none of the threads of the process
    that asked (or, where there is no such server, started afresh). A process
    that dies (killed for its memory, say) takes its render with it: the pool
    is replaced and the render tried once more. Where processes cannot be
    started at all, renders go to `threads`, and the log says why once.

    pools makes a pool (ProcessPoolExecutor); start_methods are those of the
    system (multiprocessing.get_all_start_methods()) unless given.
    """

    def __init__(
        self,
        workers: int,
        threads: Executor,
        pools: PoolFactory = ProcessPoolExecutor,
        start_methods: Collection[str] | None = None,
    ) -> None:
        self._workers = workers
        self._threads = threads
        self._pools = pools
        self._start_methods = start_methods
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
            # first, the fork server too: 65-145 ms, longer on a busy
            # machine), which must not hold the event loop: it waits in the
            # default executor.
            self._starting -= 1
            started = await blocking.run(
                blocking.FILES, pool.submit, imaging.resize, source, size, quality
            )
            return asyncio.wrap_future(started)
        return blocking.run(pool, imaging.resize, source, size, quality)

    def _start(self) -> ProcessPoolExecutor:
        self._pool = self._pools(
            self._workers,
            mp_context=_context(self._start_methods),
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


def _context(start_methods: Collection[str] | None) -> BaseContext:
    """The fork server where there is one (Pillow imported once), else spawn."""
    if start_methods is None:
        start_methods = multiprocessing.get_all_start_methods()
    if 'forkserver' in start_methods:
        context = multiprocessing.get_context('forkserver')
        context.set_forkserver_preload([imaging.__name__])
        return context
    return multiprocessing.get_context('spawn')


# Linux 5.3 and later, Python 3.9 and later; elsewhere renders poll.
_PIDFD_OPEN: Callable[[int], int] | None = getattr(os, 'pidfd_open', None)


def end_with(
    pid: int,
    end: Callable[[], object] = lambda: os._exit(0),
    pidfd_open: Callable[[int], int] | None = _PIDFD_OPEN,
    poll_interval: float = 1.0,
) -> None:
    """Call end() (exit this process at once) when the process pid has ended.

    Runs in each render process as it starts: a daemon thread waits for the
    worker that asked for it, on a pidfd where the system has them (no
    polling, no pid taken for another's), else by asking every
    poll_interval seconds whether pid still exists.
    """
    threading.Thread(
        target=_wait_for_end,
        args=(pid, end, pidfd_open, poll_interval),
        name=f'asgilook-end-with-{pid}',
        daemon=True,
    ).start()


def _wait_for_end(
    pid: int,
    end: Callable[[], object],
    pidfd_open: Callable[[int], int] | None,
    poll_interval: float,
) -> None:
    try:
        pidfd = _open_pidfd(pid, pidfd_open)
        if pidfd is None:
            while True:
                os.kill(pid, 0)
                time.sleep(poll_interval)
        try:
            select.select([pidfd], [], [])
        finally:
            os.close(pidfd)
    except ProcessLookupError:
        pass  # Gone: now, or before we looked.
    end()


def _open_pidfd(pid: int, pidfd_open: Callable[[int], int] | None) -> int | None:
    if pidfd_open is None:
        return None
    try:
        return pidfd_open(pid)
    except ProcessLookupError:
        raise
    except OSError:
        return None  # A kernel without pidfds (ENOSYS), or one that refuses.
