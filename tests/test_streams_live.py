"""Event streams under `python -m asgilook`: their own budget, small messages,
and what a hostile client can no longer do to the API or the log."""

import asyncio
import base64
import contextlib
import json
import random
import socket

import httpx
import pytest
import websockets.asyncio.client
import websockets.exceptions

from . import servers

pytestmark = pytest.mark.live

MAX_STREAMS = 60


class Launched:
    """`python -m asgilook` running; what it logged, once stopped."""

    def __init__(self, tmp_path, redis_url: str, *options: str, env=None):
        self.port = servers.free_port()
        self._process = servers.start_launcher(
            tmp_path / 'images', redis_url, self.port, *options, env=env
        )
        self._stderr: str | None = None

    def stop(self) -> str:
        """Stop it; return its log."""
        if self._stderr is None:
            servers.stop(self._process)
            self._stderr = self._process.communicate()[1].decode()
        return self._stderr


@pytest.fixture
def launched(tmp_path, live_redis):
    """`python -m asgilook` with a small budget of streams and of requests."""
    service = Launched(
        tmp_path,
        live_redis,
        '--limit-concurrency',
        '16',
        env={'ASGI_LOOK_EVENTS_MAX_STREAMS': str(MAX_STREAMS)},
    )
    yield service
    service.stop()


async def _sse(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    writer.write(b'GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    await asyncio.wait_for(reader.readuntil(b'asgilook events'), 10)
    return reader, writer


async def test_idle_streams_never_starve_the_api(launched):
    port = launched.port
    base = f'ws://127.0.0.1:{port}/events'
    async with contextlib.AsyncExitStack() as held:
        streams = [await _sse(port) for _ in range(MAX_STREAMS // 2)]
        for _, writer in streams:
            held.callback(writer.close)
        for _ in range(MAX_STREAMS // 2):
            await held.enter_async_context(websockets.asyncio.client.connect(base))
        # Three times --limit-concurrency open, and the API answers all at once.
        async with httpx.AsyncClient(base_url=f'http://127.0.0.1:{port}') as client:
            answers = await asyncio.gather(*(client.get('/images') for _ in range(16)))
            refused = await client.get('/events')
        with pytest.raises(websockets.exceptions.InvalidStatus) as beyond:
            async with websockets.asyncio.client.connect(base):
                pass

    assert {resp.status_code for resp in answers} == {200}
    assert refused.status_code == 503
    assert refused.json()['title'] == 'Too many event streams'
    assert beyond.value.response.status_code == 503
    assert json.loads(beyond.value.response.body)['title'] == 'Too many event streams'


async def test_a_websocket_message_over_4_kib_closes_the_socket_1009(launched):
    port = launched.port
    async with websockets.asyncio.client.connect(
        f'ws://127.0.0.1:{port}/events', max_size=None
    ) as ws:
        await ws.send('x' * 5000)
        with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)

    # Refused by the server as it read it, not read whole and refused by
    # asgilook (1008).
    assert closed.value.rcvd.code == 1009


def _bad_utf8_frame(port: int) -> bytes:
    """Open a WebSocket by hand, send a text frame that is not UTF-8; the answer."""
    with socket.create_connection(('127.0.0.1', port), timeout=10) as sock:
        nonces = random.Random(port)
        key = base64.b64encode(nonces.randbytes(16))
        sock.sendall(
            b'GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n'
            b'Connection: Upgrade\r\nSec-WebSocket-Key: ' + key + b'\r\n'
            b'Sec-WebSocket-Version: 13\r\n\r\n'
        )
        assert sock.recv(4096).startswith(b'HTTP/1.1 101')
        payload, mask = b'\xff\xfe\xfd', nonces.randbytes(4)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
        return sock.recv(4096)


def test_frames_that_are_not_utf8_are_logged_once_without_a_traceback(launched):
    closes = [_bad_utf8_frame(launched.port) for _ in range(20)]
    stderr = launched.stop()

    # A close frame, 1007: invalid data.
    assert {close[:4] for close in closes} == {b'\x88\x02\x03\xef'}
    assert 'Traceback' not in stderr
    assert [line for line in stderr.splitlines() if 'UTF-8' in line][0].endswith(
        'Invalid UTF-8 sequence received from client.'
    )
    assert len([line for line in stderr.splitlines() if 'UTF-8' in line]) == 1


async def test_requests_refused_at_the_limit_are_json_logged_once(tmp_path, live_redis):
    service = Launched(tmp_path, live_redis, '--limit-concurrency', '1')
    try:
        # An upload whose body stalls holds the one place.
        reader, writer = await asyncio.open_connection('127.0.0.1', service.port)
        writer.write(
            b'POST /images HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nab'
        )
        await writer.drain()
        async with httpx.AsyncClient(
            base_url=f'http://127.0.0.1:{service.port}'
        ) as client:
            answers = [await client.get('/images') for _ in range(20)]
        writer.close()
        await writer.wait_closed()
    finally:
        stderr = service.stop()

    assert {resp.status_code for resp in answers} == {503}
    assert answers[0].json()['title'] == 'Service busy'
    assert (
        len([line for line in stderr.splitlines() if 'refused a request' in line]) == 1
    )
