"""Thumbnail renders in processes of their own, away from the event loop's GIL.

A render in a thread of the server's process shares that process's one GIL
with the event loop and with the other renders. Between the steps of a render
(open, decode, encode) Pillow runs Python, and a render waiting for the GIL
leaves its CPU idle: under a stream of cold thumbnails 15% of the CPUs stood
idle with renders in threads, 4% with renders in processes.

Each render process has two pipes of its own: renders go down one, written
as the pipe takes them, their outcomes come up the other, read on the event
loop; each as its length, then its pickle. (A ProcessPoolExecutor
hands each render over through two threads of the worker, one to send it
and one to read its outcome, each taking the GIL at every render: they cost
a worker 0.35 ms of CPU a cold thumbnail, and the event loop waited for
the GIL behind them.)
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import os
import pickle
import signal
import struct
from collections.abc import Callable
from concurrent.futures import Executor
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnContext
from typing import Any

from .. import blocking
from ..errors import RenderError
from . import convert

logger = logging.getLogger('asgilook.renderers')

# Not the fork server, which starts faster but makes a directory (pymp-*, for
# its socket) in the system's temporary directory that only the worker's
# exit removes: a worker ended by its signal, as uvicorn ends it, left one
# behind each time. The first render costs the same either way (a Python
# that imports Pillow), and each process holds its own memory either way
# once it has rendered.
SPAWN = multiprocessing.get_context('spawn')

# How long a process let go of at close may take to end before it is killed.
END_SECONDS = 5.0
# An outcome comes up its pipe as its length, then its pickle.
_LENGTH = struct.Struct('!Q')


class RenderProcesses:
    """Render thumbnails (`convert.resize`) in up to `workers` processes.

    The processes start as renders need them, afresh (multiprocessing's
    spawn, or context's), with none of the threads of the process that
    asked. A process that dies (killed for its memory, say) takes its render
    with it: another starts, and the render is tried once more. Where
    processes cannot be started at all, renders go to `threads`, and the log
    says why once.
    """

    def __init__(
        self,
        workers: int,
        threads: Executor,
        context: SpawnContext = SPAWN,
        end_seconds: float = END_SECONDS,
    ) -> None:
        self._workers = workers
        self._end_seconds = end_seconds
        self._threads = threads
        self._context = context
        self._startable = True
        # The processes that are free (None: one died, there is room for
        # another), and how many run (or start) in all.
        self._idle: asyncio.Queue[_Renderer | None] = asyncio.Queue()
        self._running: set[_Renderer] = set()
        self._started = 0

    async def resize(
        self,
        source: convert.Source,
        size: tuple[int, int],
        quality: int,
        extension: str = 'jpeg',
    ) -> bytes:
        """Render a stored JPEG at size as `convert.resize` does, in a process."""
        for _ in range(2):
            if not self._startable:
                return await blocking.run(
                    self._threads, convert.resize, source, size, quality, extension
                )
            try:
                renderer = await self._renderer()
            except OSError as ex:
                self._give_up_processes(ex)
                continue
            # Looked up now: a test may render with another function.
            rendering = renderer.render(
                convert.resize, source, size, quality, extension
            )
            rendering.add_done_callback(functools.partial(self._done, renderer))
            try:
                # Its outcome is read whatever becomes of this request.
                return await asyncio.shield(rendering)
            except _DiedError:
                continue
        raise RenderError(
            f'the process rendering {convert.named(source)} at {size} died'
        )

    async def close(self) -> None:
        """Let the processes go, and wait until they have gone.

        A server may end right after its shutdown (uvicorn raises again the
        signal that stopped it): processes not told to go by then would be
        left running. The next render starts new ones.
        """
        running, self._running = self._running, set()
        self._idle = asyncio.Queue()
        self._started = 0
        for renderer in running:
            renderer.close()
        await asyncio.gather(
            *(
                blocking.run(blocking.FILES, renderer.join, self._end_seconds)
                for renderer in running
            )
        )

    async def _renderer(self) -> _Renderer:
        """Return a free process: one that waits, or a new one, or the next freed."""
        while True:
            if self._idle.empty() and self._started < self._workers:
                return await self._start()
            renderer = await self._idle.get()
            if renderer is not None:
                return renderer

    async def _start(self) -> _Renderer:
        self._started += 1
        try:
            renderer = await _Renderer.start(self._context)
        except BaseException:
            self._started -= 1
            raise
        self._running.add(renderer)
        return renderer

    def _done(self, renderer: _Renderer, rendering: asyncio.Future[Any]) -> None:
        """Free a process whose render is done; let it go if it died."""
        # Its outcome is taken here, should nobody wait for it any more.
        died = rendering.cancelled() or isinstance(rendering.exception(), _DiedError)
        if renderer not in self._running:
            return  # Let go of at close.
        if died:
            self._running.discard(renderer)
            self._started -= 1
            renderer.close()
            # Whoever waits for a free process may start one.
            self._idle.put_nowait(None)
            return
        self._idle.put_nowait(renderer)

    def _give_up_processes(self, ex: OSError) -> None:
        logger.warning(
            'cannot start processes to render thumbnails (%s); rendering '
            'them in threads (ASGI_LOOK_RENDER_PROCESSES=0 does so from '
            'the start)',
            ex,
        )
        self._startable = False


class _DiedError(Exception):
    """The render process ended before it told the outcome of its render."""


class _Renderer:
    """One render process: the pipe renders go down, the one outcomes come up."""

    def __init__(
        self,
        process: Any,
        requests: asyncio.WriteTransport,
        outcomes: asyncio.StreamReader,
        transport: asyncio.ReadTransport,
    ) -> None:
        self._process = process
        self._requests = requests
        self._outcomes = outcomes
        self._transport = transport

    @classmethod
    async def start(cls, context: SpawnContext) -> _Renderer:
        """Start a process (OSError if none can start), and connect its pipes."""
        requests_end, requests = context.Pipe(duplex=False)
        outcomes, outcomes_end = context.Pipe(duplex=False)
        process = context.Process(
            target=serve,
            args=(requests_end, outcomes_end),
            name='asgilook-render',
            daemon=True,
        )
        try:
            # Starting one takes a fork and an exec of a large process: off
            # the event loop.
            await blocking.run(blocking.FILES, process.start)
        except BaseException:
            for end in (requests_end, requests, outcomes, outcomes_end):
                end.close()
            raise
        requests_end.close()
        outcomes_end.close()
        loop = asyncio.get_running_loop()
        # Each end's own file of its pipe: closing its transport closes it.
        # Renders go down as the pipe takes them, never waiting on the loop
        # (a stored JPEG of 5 MB took 7 ms to write with the loop stopped).
        writer, _ = await loop.connect_write_pipe(
            asyncio.Protocol, _own(requests, 'wb')
        )
        reader = asyncio.StreamReader()
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), _own(outcomes, 'rb')
        )
        return cls(process, writer, reader, transport)

    def render(self, function: Callable[..., bytes], *args: Any) -> asyncio.Task[bytes]:
        """Hand function(*args) to the process; its outcome, as a task."""
        return asyncio.get_running_loop().create_task(self._exchange(function, args))

    async def _exchange(self, function: Callable[..., bytes], args: Any) -> bytes:
        try:
            told = pickle.dumps((function, args), pickle.HIGHEST_PROTOCOL)
            self._requests.write(_LENGTH.pack(len(told)))
            self._requests.write(told)
            header = await self._outcomes.readexactly(_LENGTH.size)
            (length,) = _LENGTH.unpack(header)
            done, outcome = pickle.loads(await self._outcomes.readexactly(length))
        except (OSError, asyncio.IncompleteReadError) as ex:
            raise _DiedError from ex
        if done:
            rendered: bytes = outcome
            return rendered
        raise outcome

    def close(self) -> None:
        """Let the process go: the end of its pipe ends it."""
        self._requests.close()
        self._transport.close()

    def join(self, seconds: float) -> None:
        """Wait for the process to end, seconds at most (blocking), then kill it."""
        self._process.join(seconds)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()


def serve(requests: Connection, outcomes: Connection) -> None:
    """A render process's life: render what comes down its pipe until it closes.

    The pipe closes when the worker lets the process go, or ends, even killed
    with `kill -9`: no render process outlives its worker. Ctrl-C, which a
    terminal sends to every process of the server, is left to the worker:
    its graceful stop lets the renders in flight finish, then lets the
    processes go (a render process would print a KeyboardInterrupt).
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with (
        contextlib.suppress(OSError),
        open(requests.fileno(), 'rb', closefd=False) as asked,
        open(outcomes.fileno(), 'wb', closefd=False) as pipe,
    ):
        while (request := _read(asked)) is not None:
            function, args = pickle.loads(request)
            try:
                outcome = (True, function(*args))
            except Exception as ex:
                outcome = (False, ex)
            told = pickle.dumps(outcome, pickle.HIGHEST_PROTOCOL)
            pipe.write(_LENGTH.pack(len(told)))
            pipe.write(told)
            pipe.flush()


def _own(connection: Connection, mode: str) -> Any:
    """Return a file of its own on a pipe's end, and close the connection."""
    pipe = os.fdopen(os.dup(connection.fileno()), mode, buffering=0)
    connection.close()
    return pipe


def _read(pipe: Any) -> bytes | None:
    """Read one render's request, its length then its pickle; None at the end."""
    header = pipe.read(_LENGTH.size)
    if len(header) < _LENGTH.size:
        return None
    (length,) = _LENGTH.unpack(header)
    request: bytes = pipe.read(length)
    return request if len(request) == length else None
