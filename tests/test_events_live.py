"""End to end: /events over two real uvicorn workers and a real redis-server.

Each client here is placed on the worker a test names: the other worker is
frozen (SIGSTOP) while the connection is made, so the one left accepts it,
and /proc tells which worker holds the server's end of it.
"""

import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from urllib.parse import urlsplit

import httpx
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from . import servers
from .fakes import as_listed, owner
from .images import encode, gradient

pytestmark = pytest.mark.live

# The longest any client waits for what it expects: past it, a test fails.
WAIT = 10


# -- The service and its workers, as /proc tells -------------------------------


class Service:
    """uvicorn --workers 2 serving asgilook on a free loopback port."""

    def __init__(self, storage, redis_url: str, stderr=None) -> None:
        self.port = servers.free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.process = servers.start_uvicorn(
            storage, redis_url, self.port, '--workers', '2', stderr=stderr
        )

    def workers(self) -> list[int]:
        """The worker processes: uvicorn's children that listen on its port."""
        listening = _inodes(lambda local, remote: local == self.port and not remote)
        return sorted(
            pid
            for pid in servers.descendants(self.process.pid)
            if _parent(pid) == self.process.pid and _sockets(pid) & listening
        )

    async def two_workers(self) -> list[int]:
        """Both workers, once both run (uvicorn starts them one by one)."""
        return await _eventually(lambda: (w := self.workers()) and len(w) == 2 and w)

    def holders(self) -> dict[int, int]:
        """For each client port connected to the service: the worker holding it."""
        clients = {}
        for local, remote, inode in _tcp_lines():
            if local == self.port and remote:
                clients[inode] = remote
        held = {}
        for pid in self.workers():
            for inode in _sockets(pid) & set(clients):
                held[clients[inode]] = pid
        return held


def _tcp_lines():
    """(local port, remote port, inode) of each loopback TCP socket."""
    with open('/proc/net/tcp') as tcp:
        rows = tcp.read().splitlines()[1:]
    for row in rows:
        fields = row.split()
        local, remote = fields[1].split(':'), fields[2].split(':')
        if local[0] == '0100007F':
            is_peer = remote[0] == '0100007F'
            yield int(local[1], 16), int(remote[1], 16) if is_peer else 0, fields[9]


def _inodes(keep) -> set[str]:
    return {inode for local, remote, inode in _tcp_lines() if keep(local, remote)}


def _sockets(pid: int) -> set[str]:
    """The inodes of the sockets pid holds open."""
    found = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f'/proc/{pid}/fd'):
            with contextlib.suppress(OSError):
                link = os.readlink(f'/proc/{pid}/fd/{fd}')
                if link.startswith('socket:['):
                    found.add(link[8:-1])
    return found


def _parent(pid: int) -> int:
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return int(stat.read().rsplit(')', 1)[1].split()[1])
    except OSError:
        return 0


async def _eventually(probe, wait: float = WAIT):
    """Return probe()'s first true answer, polling; fail past wait seconds."""
    deadline = time.monotonic() + wait
    while not (answer := probe()):
        assert time.monotonic() < deadline, f'not within {wait} s: {probe}'
        await asyncio.sleep(0.01)
    return answer


@contextlib.asynccontextmanager
async def only(service: Service, worker: int | None):
    """Freeze every other worker for the block: connections made go to worker."""
    others = [] if worker is None else [w for w in service.workers() if w != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


async def placed(service: Service, worker: int | None) -> socket.socket:
    """A connection to the service, accepted by worker (None: either)."""
    async with only(service, worker):
        sock = socket.create_connection(('127.0.0.1', service.port), timeout=WAIT)
        sock.setblocking(False)
        if worker is not None:
            port = sock.getsockname()[1]
            holder = await _eventually(lambda: service.holders().get(port))
            assert holder == worker
    return sock


# -- Clients --------------------------------------------------------------------


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


@pytest.fixture
def service(tmp_path, live_redis):
    running = Service(tmp_path / 'images', live_redis)
    try:
        yield running
    finally:
        servers.stop(running.process)


# -- The tests ---------------------------------------------------------------------


async def test_every_subscriber_on_either_worker_gets_every_event(service):
    a, b = await service.two_workers()
    async with asyncio.timeout(40):
        sse = [await SSE.open(service, worker) for worker in (a, b, a, b)]
        start = await first_id(sse[0])
        assert [await first_id(stream) for stream in sse[1:]] == [start] * 3
        ws = [await WS.open(service, w, f'?after={start}') for w in (a, b, a, b)]
        assert sse[0].headers['content-type'] == 'text/event-stream'
        assert sse[0].headers['cache-control'] == 'no-store'
        held = service.holders()
        assert [held[client.port] for client in sse + ws] == [a, b] * 4

        async with closing(sse + ws):
            images = [await upload(service, worker) for worker in (a, b, a, b)]
            async with httpx.AsyncClient(base_url=service.url, timeout=WAIT) as http:
                listed = {
                    image['id']: image for image in (await http.get('/images')).json()
                }
            await delete(service, images[0], b)
            await delete(service, images[3], a)
            expected = [('image.created', listed[image['id']]) for image in images]
            expected += [('image.deleted', images[0]['id'])]
            expected += [('image.deleted', images[3]['id'])]

            got = await asyncio.gather(
                *(client.events(until=start + 6) for client in sse + ws)
            )
    assert all(events == got[0] for events in got)
    assert [event[0] for event in got[0]] == list(range(start + 1, start + 7))
    assert [event[1:] for event in got[0]] == expected
    assert listed == {image['id']: image for image in images}


async def test_a_client_resumes_on_either_worker_with_exactly_what_it_missed(service):
    a, b = await service.two_workers()
    async with asyncio.timeout(40):
        stream = await SSE.open(service, a)
        start = await first_id(stream)
        socket_ = await WS.open(service, a, f'?after={start}')
        kept = await upload(service, a)
        seen = await stream.events(until=start + 1)
        assert await socket_.events(until=start + 1) == seen
        await stream.close()
        await socket_.close()

        # Missed: made through both workers while no one listened.
        missed = [await upload(service, b), await upload(service, a)]
        await delete(service, kept, b)
        last = start + 4
        # The header wins over the URL's after; each resumes on the other worker.
        resumed = await SSE.open(
            service, b, f'/events?after={start}', {'Last-Event-ID': str(start + 1)}
        )
        assert await first_id(resumed) == start + 1
        resumed_ws = await WS.open(service, b, f'?after={start + 1}')
        by_message = await WS.open(service, a)
        await by_message.ws.send(json.dumps({'after': start + 1}))
        newest = await upload(service, b)
        async with closing([resumed, resumed_ws, by_message]):
            got = [
                await client.events(until=last + 1)
                for client in (resumed, resumed_ws, by_message)
            ]
    expected = [
        (start + 2, 'image.created', missed[0]),
        (start + 3, 'image.created', missed[1]),
        (start + 4, 'image.deleted', kept['id']),
        (start + 5, 'image.created', newest),
    ]
    assert seen == [(start + 1, 'image.created', kept)]
    assert got == [expected] * 3


async def test_a_garbage_id_is_refused_and_one_not_yet_given_is_reset(service):
    async with httpx.AsyncClient(base_url=service.url, timeout=WAIT) as http:
        refused = await http.get('/events', headers={'Last-Event-ID': '12abc'})
    assert refused.status_code == 400
    assert refused.headers['Content-Type'] == 'application/json'
    assert refused.json()['title'] == 'Invalid event id'

    async with asyncio.timeout(30):
        image = await upload(service)
        ahead = await SSE.open(service, headers={'Last-Event-ID': '1000'})
        last = await first_id(ahead)
        socket_ = await WS.open(service, query='?after=1000')
        async with closing([ahead, socket_]):
            reset = await ahead.events(until=last)
            assert await socket_.events(until=last) == reset
            newest = await upload(service)
            assert await ahead.events(until=last + 1) == [
                (last + 1, 'image.created', newest)
            ]
            assert await socket_.events(until=last + 1) == [
                (last + 1, 'image.created', newest)
            ]
    assert last == 1
    assert image['id'] != newest['id']
    [(serial, name, data)] = reset
    assert (serial, name) == (1, 'reset')
    assert (data['requested'], data['last']) == (1000, 1)
    assert 'GET /images' in data['description']


async def subscribers(service, workers, start):
    """One SSE and one WebSocket subscriber on each worker, after id start."""
    clients = []
    for worker in workers:
        stream = await SSE.open(service, worker, f'/events?after={start}')
        assert await first_id(stream) == start
        clients += [stream, await WS.open(service, worker, f'?after={start}')]
    return clients


async def test_events_flow_on_while_redis_is_frozen_then_stopped(tmp_path):
    port = servers.free_port()
    redis = servers.start_redis(tmp_path, port)
    running = Service(tmp_path / 'images', f'redis://127.0.0.1:{port}')
    try:
        a, b = await running.two_workers()
        async with asyncio.timeout(40):
            clients = await subscribers(running, (a, b), 0)
            async with closing(clients):
                made = [await upload(running, a)]
                os.kill(redis.pid, signal.SIGSTOP)
                try:
                    made.append(await upload(running, b))
                    got = [await client.events(until=2) for client in clients]
                finally:
                    os.kill(redis.pid, signal.SIGCONT)
                servers.stop(redis)
                assert redis.poll() is not None
                made += [await upload(running, b), await upload(running, a)]
                await delete(running, made[0], b)
                for client, events in zip(clients, got, strict=True):
                    events += await client.events(until=5)
    finally:
        servers.stop(running.process)
        servers.stop(redis)
    expected = [
        (serial, 'image.created', image) for serial, image in enumerate(made, 1)
    ]
    assert got == [[*expected, (5, 'image.deleted', made[0]['id'])]] * 4


async def test_a_killed_worker_clients_resume_and_the_others_keep_receiving(
    service,
):
    a, b = await service.two_workers()
    async with asyncio.timeout(40):
        clients = await subscribers(service, (a, b), 0)
        killed, kept = clients[:2], clients[2:]
        first = await upload(service, b)
        for client in clients:
            assert await client.events(until=1) == [(1, 'image.created', first)]

        os.kill(a, signal.SIGKILL)
        with pytest.raises(StreamBroken):
            await killed[0].ending()
        assert await killed[1].close_code() == 1006
        await asyncio.gather(*(client.close() for client in killed))
        missed = [await upload(service), await upload(service)]
        # uvicorn starts a worker in its place.
        await _eventually(lambda: len(w := service.workers()) == 2 and a not in w)
        kept += [
            await SSE.open(service, None, headers={'Last-Event-ID': '1'}),
            await WS.open(service, None, '?after=1'),
        ]
        assert await first_id(kept[2]) == 1
        newest = await upload(service)
        async with closing(kept):
            got = [await client.events(until=4) for client in kept]
    expected = [
        (2, 'image.created', missed[0]),
        (3, 'image.created', missed[1]),
        (4, 'image.created', newest),
    ]
    assert got == [expected] * 4


async def test_a_stopped_service_ends_hundreds_of_streams_within_seconds(service):
    workers = await service.two_workers()
    async with asyncio.timeout(50):
        streams, sockets = [], []
        for worker in workers:
            async with only(service, worker):
                opened = [SSE.open(service, path='/events') for _ in range(150)]
                streams += await asyncio.gather(*opened)
                sockets += await asyncio.gather(
                    *(WS.open(service, query='?after=0') for _ in range(25))
                )
        assert {await first_id(stream) for stream in streams} == {0}
        held = await _eventually(lambda: len(h := service.holders()) == 350 and h)
        assert sorted(held[client.port] for client in streams + sockets) == sorted(
            [workers[0]] * 175 + [workers[1]] * 175
        )
        everyone = [service.process.pid, *servers.descendants(service.process.pid)]

        async with closing(streams + sockets):
            stopped = time.monotonic()
            service.process.send_signal(signal.SIGTERM)
            endings = await asyncio.gather(*(stream.ending() for stream in streams))
            codes = await asyncio.gather(*(ws.close_code() for ws in sockets))
            await _eventually(lambda: not any(map(servers.alive, everyone)))
            took = time.monotonic() - stopped
    assert took < 10
    assert all(ending == ['end: the server is going away'] for ending in endings)
    assert set(codes) <= {1001, 1012}
