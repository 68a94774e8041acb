"""The launcher's HTTP protocol bounds the size and the time of a request head."""

import asyncio
import contextlib
import json
import logging
import socket
import time

import pytest
import uvicorn

from asgilook.http.admission import RELEASE
from asgilook.serving.protocol import (
    STREAM_SEND_BUFFER,
    LimitedHttpToolsProtocol,
    ServerConfig,
)

from . import servers, tcp

_EVENTS = b'data: {}\n\n' * 16384


async def _app(scope, receive, send):
    if scope['type'] != 'http':
        return
    if scope['path'] == '/slow':
        await asyncio.sleep(0.5)
    if scope['path'] == '/flood':
        # An event stream resuming from long ago, to a client that reads
        # nothing: it sends until the server waits for the client.
        scope[RELEASE]()
        await send({'type': 'http.response.start', 'status': 200, 'headers': []})
        more = {'type': 'http.response.body', 'body': _EVENTS, 'more_body': True}
        for _ in range(128):
            await send(more)
        return
    if scope['path'] == '/stream':
        # An event stream: it leaves the requests' count, and stays.
        scope[RELEASE]()
        await send({'type': 'http.response.start', 'status': 200, 'headers': []})
        await send({'type': 'http.response.body', 'body': b'open', 'more_body': True})
        while (await receive())['type'] != 'http.disconnect':
            pass
        return
    more_body = scope['method'] == 'POST'
    while more_body:
        more_body = (await receive()).get('more_body', False)
    await send({'type': 'http.response.start', 'status': 200, 'headers': []})
    await send({'type': 'http.response.body', 'body': b'ok'})


@contextlib.asynccontextmanager
async def _server(**limits):
    port = servers.free_port()
    config = ServerConfig(
        _app,
        host='127.0.0.1',
        port=port,
        http=LimitedHttpToolsProtocol,
        lifespan='off',
        log_level='warning',
        **limits,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    # uvicorn offers a flag, not an event, for "started".
    while not server.started:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await serving


async def _exchange(port, *parts, pause=0.0):
    """Send parts (pausing between them); return all the server sent back."""
    reader, writer = await asyncio.open_connection('127.0.0.1', port)
    try:
        for part in parts:
            writer.write(part)
            await writer.drain()
            await asyncio.sleep(pause)
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


def _json_answer(answer):
    """The status line and JSON body of the last answer in what was received."""
    head, body = answer[answer.rindex(b'HTTP/1.1 ') :].split(b'\r\n\r\n', 1)
    return head.split(b'\r\n')[0], json.loads(body)


GET = b'GET / HTTP/1.1\r\nHost: localhost\r\n'


async def test_requests_within_the_limits_are_served_on_one_connection():
    async with _server(max_header_size=4096, header_timeout=5) as port:
        answer = await _exchange(
            port,
            GET + b'\r\n',
            GET + b'X-Within: ' + b'a' * 3000 + b'\r\nConnection: close\r\n\r\n',
            pause=0.1,
        )

    assert answer.count(b'HTTP/1.1 200 OK') == 2


async def test_a_body_does_not_count_against_the_head():
    async with _server(max_header_size=4096, header_timeout=5) as port:
        answer = await _exchange(
            port,
            b'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n'
            b'Connection: close\r\n\r\n',
            b'a' * 5000,
            pause=0.1,
        )

    assert answer.startswith(b'HTTP/1.1 200 OK')


async def test_a_head_over_the_limit_is_refused_with_431():
    async with _server(max_header_size=4096, header_timeout=5) as port:
        answer = await _exchange(
            port, GET + b'X-Large: ' + b'a' * 5000 + b'\r\n', b'X-More: b\r\n'
        )

    status, body = _json_answer(answer)
    assert status == b'HTTP/1.1 431 Request Header Fields Too Large'
    assert '4096 bytes' in body['description']


@pytest.mark.parametrize('size', [5000, 100_000])
async def test_a_head_over_the_limit_in_one_piece_is_refused_with_431(size):
    # Parsed, and handed to the app, within the read that brought it.
    async with _server(max_header_size=4096, header_timeout=5) as port:
        answer = await _exchange(
            port, GET + b'X-Large: ' + b'a' * size + b'\r\nConnection: close\r\n\r\n'
        )

    status, _ = _json_answer(answer)
    assert status == b'HTTP/1.1 431 Request Header Fields Too Large'


async def test_a_head_whose_end_straddles_two_reads_is_measured_to_its_end():
    async with _server(max_header_size=4096, header_timeout=5) as port:
        head = GET + b'X-Within: ' + b'a' * 3000 + b'\r\nConnection: close\r\n\r'
        answer = await _exchange(port, head, b'\n', pause=0.1)

    assert answer.startswith(b'HTTP/1.1 200 OK')


@pytest.mark.parametrize(
    'request_',
    [
        b'BREW / HTTP/1.1\r\nHost: localhost\r\n\r\n',
        b'GET / HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n',
        b'GET /\xd9\xa1 HTTP/1.1\r\nHost: localhost\r\n\r\n',
    ],
    ids=['unknown method', 'negative length', 'raw non-ASCII path'],
)
async def test_a_request_that_is_not_http_is_answered_400_in_json(request_):
    async with _server() as port:
        answer = await _exchange(port, request_)

    status, body = _json_answer(answer)
    assert status == b'HTTP/1.1 400 Bad Request'
    assert body['title'] == 'Bad request'


@pytest.mark.parametrize(
    'body',
    [b'5\r\nhello\r\nzz\r\n', b'5\r\nhello\r\n\r\n\r\n', b'3\r\nhello\r\n'],
    ids=['bad chunk size', 'empty chunk line', 'chunk longer than its size'],
)
async def test_a_malformed_chunked_body_is_answered_400_in_json(body):
    head = b'POST / HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n'
    async with _server() as port:
        answer = await _exchange(port, head, body, pause=0.05)

    status, refused = _json_answer(answer)
    assert status == b'HTTP/1.1 400 Bad Request'
    assert refused['title'] == 'Bad request'
    assert 'chunk' in refused['description']
    # The one answer: nothing the app sent after it.
    assert answer.count(b'HTTP/1.1 ') == 1


@pytest.mark.parametrize(
    'parts',
    [[], [b'GET / HT'], [GET + b'\r\n', GET]],
    ids=['silent', 'half a request line', 'second head half sent'],
)
async def test_a_head_that_stalls_is_answered_408_and_closed(parts):
    async with _server(header_timeout=0.2) as port:
        started = time.monotonic()
        answer = await _exchange(port, *parts, pause=0.05)
        waited = time.monotonic() - started

    status, body = _json_answer(answer)
    assert status == b'HTTP/1.1 408 Request Timeout'
    assert body['title'] == 'Request timeout'
    assert waited < 2


async def test_a_stalled_head_behind_a_request_in_flight_closes_the_connection():
    async with _server(header_timeout=0.2) as port:
        answer = await _exchange(
            port, b'GET /slow HTTP/1.1\r\nHost: localhost\r\n\r\n' + GET
        )

    # Nothing is written into the answer being computed; the connection goes.
    assert b'408' not in answer


async def _slow_requests(port, count):
    return await asyncio.gather(
        *(
            _exchange(
                port, b'GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'
            )
            for _ in range(count)
        )
    )


async def test_requests_beyond_the_limit_are_a_503_in_json_logged_once(caplog):
    caplog.set_level(logging.WARNING, logger='asgilook')
    async with _server(limit_concurrency=2) as port:
        answers = await _slow_requests(port, 5)

    statuses = sorted(answer.split(b'\r\n', 1)[0] for answer in answers)
    assert (
        statuses == [b'HTTP/1.1 200 OK'] * 2 + [b'HTTP/1.1 503 Service Unavailable'] * 3
    )
    refused = next(answer for answer in answers if b' 503 ' in answer)
    status, body = _json_answer(refused)
    assert body['title'] == 'Service busy'
    assert b'retry-after: 1' in refused.lower()
    assert [record.getMessage() for record in caplog.records] == [
        'refused a request: this worker answers 2 at once, its most '
        '(--limit-concurrency)'
    ]


async def test_open_streams_leave_room_for_requests():
    async with _server(limit_concurrency=2) as port:
        streams = [await asyncio.open_connection('127.0.0.1', port) for _ in range(10)]
        for reader, writer in streams:
            writer.write(b'GET /stream HTTP/1.1\r\nHost: x\r\n\r\n')
            await asyncio.wait_for(reader.readuntil(b'open'), 5)
        try:
            answers = await _slow_requests(port, 2)
        finally:
            for _, writer in streams:
                writer.close()

    assert [answer.split(b'\r\n', 1)[0] for answer in answers] == [
        b'HTTP/1.1 200 OK'
    ] * 2


async def test_an_event_stream_is_held_a_bounded_send_buffer():
    # Left to grow, the kernel held up to 4 MiB for each such client.
    loop = asyncio.get_running_loop()
    async with _server() as port:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.setblocking(False)
        with client:
            await loop.sock_connect(client, ('127.0.0.1', port))
            await loop.sock_sendall(client, b'GET /flood HTTP/1.1\r\nHost: x\r\n\r\n')
            queued = await _settled_send_queue(port, client.getsockname()[1])

    # Linux doubles what it is asked for, for its bookkeeping.
    assert 0 < queued <= 2 * STREAM_SEND_BUFFER


async def _settled_send_queue(port: int, client_port: int) -> int:
    """The bytes the server's side of a connection holds, once they stop growing."""
    seen = [-1]
    async with asyncio.timeout(20):
        while len(seen) < 10 or len(set(seen[-10:])) > 1:
            await asyncio.sleep(0.05)
            seen.append(_send_queue(port, client_port))
    return seen[-1]


def _send_queue(port: int, client_port: int) -> int:
    unsent, _ = tcp.queues().get((port, client_port), (0, 0))
    return unsent
