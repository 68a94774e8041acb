"""Clients of a real service's /events: SSE and WebSocket subscribers, requests."""

import asyncio
import contextlib
import json
from urllib.parse import urlsplit

from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from .fakes import as_listed, owner
from .images import encode, gradient
from .service import WAIT, placed


class StreamBroken(Exception):
    """The connection ended without the end of its chunked body."""


class SSE:
    """A Server-Sent Events client over one raw HTTP/1.1 connection."""

    @classmethod
    async def open(cls, service, worker=None, path='/events', headers=None):
        self = cls()
        sock = await placed(service, worker)
        self.port = sock.getsockname()[1]
        self.reader, self.writer = await asyncio.open_connection(sock=sock)
        lines = [f'GET {path} HTTP/1.1', f'Host: 127.0.0.1:{service.port}']
        lines += [f'{name}: {value}' for name, value in (headers or {}).items()]
        self.writer.write(('\r\n'.join(lines) + '\r\n\r\n').encode())
        head = await asyncio.wait_for(self.reader.readuntil(b'\r\n\r\n'), WAIT)
        status_line, *fields = head.decode('latin-1').split('\r\n')[:-2]
        self.status = int(status_line.split()[1])
        self.headers = {
            name.lower(): value.strip()
            for name, value in (field.split(':', 1) for field in fields)
        }
        self._buffer = b''
        self.ended = False
        return self

    async def message(self, wait: float = WAIT) -> dict | None:
        """The next message as {field: value} (comments under ':'); None at the end.

        StreamBroken if the connection ends before its body does.
        """
        while b'\n\n' not in self._buffer:
            if self.ended:
                return None
            await asyncio.wait_for(self._chunk(), wait)
        text, self._buffer = self._buffer.split(b'\n\n', 1)
        message = {':': []}
        for line in text.decode().split('\n'):
            name, _, value = line.partition(': ')
            if name:
                message[name] = value
            else:
                message[':'].append(value)
        return message

    async def events(self, until: int) -> list[tuple[int, str, object]]:
        """The events up to (and with) id until, as (id, name, data)."""
        taken = []
        while not taken or taken[-1][0] < until:
            message = await self.message()
            assert message is not None, f'the stream ended after {taken}'
            if 'event' in message:
                event = (int(message['id']), message['event'], message['data'])
                taken.append((event[0], event[1], json.loads(event[2])))
        return taken

    async def ending(self) -> list[str]:
        """Read to the end of the stream; its comments (StreamBroken if cut)."""
        comments = []
        while (message := await self.message()) is not None:
            comments += message[':']
        return comments

    async def _chunk(self) -> None:
        try:
            size = int(await self.reader.readuntil(b'\r\n'), 16)
            data = await self.reader.readexactly(size + 2)
        except (asyncio.IncompleteReadError, ConnectionError) as ex:
            raise StreamBroken(self.port) from ex
        self._buffer += data[:-2]
        self.ended = size == 0

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class WS:
    """A WebSocket client of /events: its messages as JSON."""

    @classmethod
    async def open(cls, service, worker=None, query=''):
        self = cls()
        sock = await placed(service, worker)
        self.port = sock.getsockname()[1]
        self.ws = await ws_connect(
            f'ws://127.0.0.1:{service.port}/events{query}',
            sock=sock,
            open_timeout=WAIT,
            close_timeout=2,
        )
        return self

    async def events(self, until: int) -> list[tuple[int, str, object]]:
        taken = []
        while not taken or taken[-1][0] < until:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), WAIT))
            taken.append((message['id'], message['event'], message['data']))
        return taken

    async def close_code(self) -> int:
        """Wait for the server to close the socket; its close code."""
        try:
            while True:
                await asyncio.wait_for(self.ws.recv(), WAIT)
        except ConnectionClosed as closed:
            return closed.rcvd.code if closed.rcvd else 1006

    async def close(self) -> None:
        await self.ws.close()


async def request(service, method, path, body=b'', headers=None, worker=None):
    """One request on a fresh connection (to worker); (status, JSON body)."""
    sock = await placed(service, worker)
    reader, writer = await asyncio.open_connection(sock=sock)
    lines = [
        f'{method} {path} HTTP/1.1',
        f'Host: 127.0.0.1:{service.port}',
        f'Content-Length: {len(body)}',
        'Connection: close',
    ]
    lines += [f'{name}: {value}' for name, value in (headers or {}).items()]
    writer.write(('\r\n'.join(lines) + '\r\n\r\n').encode() + body)
    try:
        response = await asyncio.wait_for(reader.read(), WAIT)
    finally:
        writer.close()
        await writer.wait_closed()
    head, _, body = response.partition(b'\r\n\r\n')
    return int(head.split()[1]), json.loads(body) if body else None


async def upload(service, worker=None) -> dict:
    status, created = await request(
        service, 'POST', '/images', encode(gradient((64, 48)), 'PNG'), worker=worker
    )
    assert status == 201
    return as_listed(created)


async def delete(service, image, worker=None) -> None:
    status, _ = await request(
        service,
        'DELETE',
        urlsplit(image['image']).path,
        headers=owner(image),
        worker=worker,
    )
    assert status == 204


async def first_id(stream: SSE) -> int:
    """The id the first message of an SSE stream sets (the last event's)."""
    assert stream.status == 200
    first = await stream.message()
    assert first[':'] == ['asgilook events']
    assert first['retry'] == '3000'
    return int(first['id'])


@contextlib.asynccontextmanager
async def closing(clients):
    try:
        yield clients
    finally:
        await asyncio.gather(*(client.close() for client in clients))
