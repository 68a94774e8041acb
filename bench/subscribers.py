"""Many SSE subscribers of GET /events, held by client processes of their own.

Each client process runs uvloop and one asyncio.Protocol a stream: no HTTP
library, the chunked body undone and the events parsed by hand, each
stamped with time.monotonic() (one clock for every process of the machine)
when its bytes arrived. The benchmark drives the processes through pipes
(`Subscribers`), and each reports how late its event loop ran, to show
whether it kept up.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import multiprocessing
import multiprocessing.connection
import time
import typing
from typing import Any

import uvloop

# Streams a process opens at once: the server's accept queue is not flooded.
_OPENING_AT_ONCE = 10
_OPEN_SECONDS = 60
_PROBE_SECONDS = 0.005
_IMAGE_ID = slice(len(b'{"id":"'), len(b'{"id":"') + 36)

Connection = multiprocessing.connection.Connection


class Book:
    """The image id of each event id as a process first saw it, and mismatches."""

    def __init__(self) -> None:
        self.images: dict[int, str] = {}
        self.mismatches = 0
        self.others = 0

    def created(self, serial: int, data: bytes) -> None:
        image_id = data[_IMAGE_ID].decode()
        if self.images.setdefault(serial, image_id) != image_id:
            self.mismatches += 1


class Stream(asyncio.Protocol):
    """One subscriber: an HTTP/1.1 GET /events, its chunks, its events."""

    def __init__(self, request: bytes, book: Book) -> None:
        self._request = request
        self._book = book
        self._raw = bytearray()
        self._body = bytearray()
        self._headers = False
        loop = asyncio.get_running_loop()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.lost: asyncio.Future[None] = loop.create_future()
        self.transport: asyncio.BaseTransport | None = None
        self.port = 0
        self.serials: list[int] = []
        self.times: list[float] = []
        self.ending = ''
        self.ended_at: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.port = transport.get_extra_info('sockname')[1]
        # uvloop's transports are not asyncio's classes: written to as one.
        typing.cast(asyncio.WriteTransport, transport).write(self._request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        self._raw += data
        if not self._headers:
            end = self._raw.find(b'\r\n\r\n')
            if end < 0:
                return
            if not self._raw.startswith(b'HTTP/1.1 200 '):
                raise RuntimeError(f'GET /events answered {bytes(self._raw[:12])!r}')
            self._headers = True
            del self._raw[: end + 4]
        self._unchunk()
        while (cut := self._body.find(b'\n\n')) >= 0:
            message = bytes(self._body[:cut])
            del self._body[: cut + 2]
            self._message(message, now)

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended_at = time.monotonic()
        self.lost.set_result(None)
        if not self.ready.done():
            self.ready.set_exception(ConnectionError('GET /events ended at once'))

    def _unchunk(self) -> None:
        raw, start = self._raw, 0
        while (eol := raw.find(b'\r\n', start)) >= 0:
            end = eol + 2 + int(raw[start:eol], 16)
            if len(raw) < end + 2:
                break
            self._body += raw[eol + 2 : end]
            start = end + 2
        del raw[:start]

    def _message(self, message: bytes, now: float) -> None:
        fields = dict(line.split(b': ', 1) for line in message.split(b'\n'))
        if b'' in fields:  # A comment: a heartbeat, the greeting or an end.
            comment = fields[b'']
            if comment.startswith(b'end: '):
                self.ending = comment[5:].decode()
        if b'event' not in fields:
            if not self.ready.done():
                self.ready.set_result(None)
            return
        if fields[b'event'] != b'image.created':
            self._book.others += 1
            return
        serial = int(fields[b'id'])
        self._book.created(serial, fields[b'data'])
        self.serials.append(serial)
        self.times.append(now)


class Client:
    """One client process's streams, and how late its event loop runs."""

    def __init__(self, host: str, port: int, count: int) -> None:
        self._address = host, port
        self._request = (
            f'GET /events HTTP/1.1\r\nHost: {host}:{port}\r\n'
            'Accept: text/event-stream\r\n\r\n'
        ).encode()
        self._count = count
        self.book = Book()
        self.streams: list[Stream] = []
        self.lags: list[float] = []

    async def open(self) -> int:
        """Open the streams; return how many, once each has its first message."""
        self.book, self.streams = Book(), []
        gate = asyncio.Semaphore(_OPENING_AT_ONCE)

        async def one() -> None:
            async with gate:
                loop = asyncio.get_running_loop()
                _, stream = await loop.create_connection(
                    lambda: Stream(self._request, self.book), *self._address
                )
                self.streams.append(stream)
                await stream.ready

        await asyncio.wait_for(
            asyncio.gather(*(one() for _ in range(self._count))), _OPEN_SECONDS
        )
        return len(self.streams)

    def close(self) -> int:
        for stream in self.streams:
            assert stream.transport is not None
            stream.transport.close()
        return len(self.streams)

    async def probe(self) -> None:
        """Note how late each short sleep wakes: the loop's own delay."""
        while True:
            started = time.monotonic()
            await asyncio.sleep(_PROBE_SECONDS)
            self.lags.append(time.monotonic() - started - _PROBE_SECONDS)

    def report(self) -> dict[str, Any]:
        return {
            'ports': [stream.port for stream in self.streams],
            'serials': [stream.serials for stream in self.streams],
            'times': [stream.times for stream in self.streams],
            'images': self.book.images,
            'mismatches': self.book.mismatches,
            'others': self.book.others,
            'lags': self.lags,
        }

    async def ends(self, seconds: float) -> list[tuple[float | None, str]]:
        """Wait until every stream ended (or seconds); when, and its last comment."""
        await asyncio.wait([stream.lost for stream in self.streams], timeout=seconds)
        return [(stream.ended_at, stream.ending) for stream in self.streams]


async def _serve(pipe: Connection, client: Client) -> None:
    loop = asyncio.get_running_loop()
    probe: asyncio.Task[None] | None = None
    while True:
        command, *args = await loop.run_in_executor(None, pipe.recv)
        if command == 'open':
            pipe.send(await client.open())
        elif command == 'close':
            pipe.send(client.close())
        elif command == 'probe':
            client.lags = []
            if probe is None:
                probe = asyncio.create_task(client.probe())
            pipe.send(True)
        elif command == 'report':
            pipe.send(client.report())
        elif command == 'ends':
            pipe.send(await client.ends(*args))
        else:
            return


def run_client(pipe: Connection, host: str, port: int, count: int) -> None:
    """A client process: answer the benchmark's commands until told to quit."""
    uvloop.run(_serve(pipe, Client(host, port, count)))


@dataclasses.dataclass
class Subscribers:
    """`total` subscribers of GET /events on port, over `processes` processes."""

    port: int
    total: int
    processes: int = 2
    host: str = '127.0.0.1'

    def __post_init__(self) -> None:
        context = multiprocessing.get_context('spawn')
        self.pipes: list[Connection] = []
        self.children: list[multiprocessing.process.BaseProcess] = []
        for number in range(self.processes):
            ours, theirs = context.Pipe()
            count = self.total // self.processes + (
                number < self.total % self.processes
            )
            child = context.Process(
                target=run_client, args=(theirs, self.host, self.port, count)
            )
            child.start()
            self.pipes.append(ours)
            self.children.append(child)

    def ask(self, *command: object) -> list[Any]:
        """Send a command to every client process; return their answers."""
        for pipe in self.pipes:
            pipe.send(command)
        return [pipe.recv() for pipe in self.pipes]

    @property
    def pids(self) -> list[int]:
        return [child.pid for child in self.children if child.pid is not None]

    def quit(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):  # The process ended already.
                pipe.send(('quit',))
        for child in self.children:
            child.join(10)
            if child.is_alive():
                child.kill()
