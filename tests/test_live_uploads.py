"""Hostile uploads against a real uvicorn: cut, stalled, and in their hundreds."""

import contextlib
import os
import random
import signal
import socket
import time

import falcon.testing
import httpx
import pytest

from asgilook.app import create_served_app

from . import servers, tcp
from .fakes import make_config
from .images import encode, gradient, image_files, photo

pytestmark = pytest.mark.live


@pytest.fixture
def server(tmp_path, live_redis):
    """A real uvicorn whose bodies time out after 2 s; yields (URL, storage, pid)."""
    storage = tmp_path / 'images'
    port = servers.free_port()
    process = servers.start_uvicorn(
        storage, live_redis, port, env={'ASGI_LOOK_BODY_TIMEOUT': '2'}
    )
    try:
        yield f'http://127.0.0.1:{port}', storage, process.pid
    finally:
        servers.stop(process)


def port_of(base_url: str) -> int:
    return int(base_url.rsplit(':', 1)[1])


def connect(base_url: str) -> socket.socket:
    return socket.create_connection(('127.0.0.1', port_of(base_url)))


def taken(base_url: str, clients) -> bool:
    """Whether the server has read all that these connections to it sent."""
    port, held = port_of(base_url), tcp.queues()
    for sock in clients:
        client = sock.getsockname()[1]
        unsent, _ = held.get((client, port), (0, 0))
        _, unread = held.get((port, client), (0, 0))
        if unsent or unread:
            return False
    return True


def head(length=None, extra=b'') -> bytes:
    framing = (
        b'Transfer-Encoding: chunked\r\n'
        if length is None
        else b'Content-Length: %d\r\n' % length
    )
    return b'POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\n' + framing + extra + b'\r\n'


def wait_for(condition, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.parametrize(
    ('kind', 'send'),
    [
        # A JPEG whose Content-Length promised more than came.
        ('jpeg', lambda data: head(len(data) + 1000) + data),
        # A chunked PNG cut right after IEND: no closing zero-length chunk.
        ('png', lambda data: head() + b'%x\r\n%s\r\n' % (len(data), data)),
        # A TIFF cut at 60%.
        ('tiff', lambda data: head(len(data)) + data[: len(data) * 6 // 10]),
    ],
)
def test_an_upload_whose_client_went_away_is_not_stored(server, kind, send):
    base_url, storage, pid = server
    data = encode(gradient((400, 300)), kind.upper())

    with connect(base_url) as sock:
        sock.sendall(send(data))
        # The upload is under way: the server took what came of it.
        assert wait_for(lambda: taken(base_url, [sock]))

    # Stopped, uvicorn ends each request it began first: whatever the server
    # did with the upload cut, it has done.
    os.kill(pid, signal.SIGTERM)
    assert wait_for(lambda: not servers.alive(pid))
    again = falcon.testing.TestClient(create_served_app(make_config(storage)))
    assert again.simulate_get('/images').json == []
    assert image_files(storage) == []


def test_expect_100_continue_over_the_limit_gets_no_continue(tmp_path, live_redis):
    with servers.uvicorn_server(
        tmp_path / 'images', live_redis, env={'ASGI_LOOK_MAX_UPLOAD_SIZE': '1000'}
    ) as base_url:
        with connect(base_url) as sock:
            sock.settimeout(10)
            sock.sendall(head(5000, b'Expect: 100-continue\r\n'))
            answer = sock.recv(65536)

        assert answer.startswith(b'HTTP/1.1 413 ')
        assert b'100 Continue' not in answer


def test_http_0_9_is_answered_without_a_server_error(server):
    base_url, _, _ = server
    with connect(base_url) as sock:
        sock.settimeout(10)
        sock.sendall(b'GET /images HTTP/0.9\r\n\r\n')
        answer = sock.recv(65536)

    assert not answer.startswith(b'HTTP/1.1 500')
    assert httpx.get(f'{base_url}/images').status_code == 200


def test_200_stalled_uploads_take_bounded_memory_and_leave_nothing(server):
    base_url, storage, pid = server
    upload = photo((640, 480))
    with httpx.Client(base_url=base_url, timeout=10) as http:
        image = http.post('/images', content=upload).json()
        http.get(image['thumbnails'][0])
    before = servers.rss_kib(pid)
    # ~1 MB each, most of it sent, then nothing more: 200 bodies waiting.
    body = b'\x89PNG\r\n\x1a\n' + random.Random(0).randbytes(900_000)
    with contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(200):
            sock = stack.enter_context(connect(base_url))
            sock.sendall(head(1_000_000) + body)
            sockets.append(sock)
        # What each sent is in the server: read into memory, or spooled.
        assert wait_for(lambda: taken(base_url, sockets))
        grown_mib = (servers.rss_kib(pid) - before) / 1024

        started = time.monotonic()
        listing = httpx.get(f'{base_url}/images', timeout=5)
        served_in = time.monotonic() - started

        assert listing.status_code == 200
        assert [item['id'] for item in listing.json()] == [image['id']]
        assert served_in < 1.0
        assert grown_mib < 96, f'a worker grew by {grown_mib:.0f} MiB'

        # After the body timeout every stalled upload is answered 408.
        answers = []
        for sock in sockets:
            sock.settimeout(10)
            answers.append(sock.recv(64))
    assert all(answer.startswith(b'HTTP/1.1 408 ') for answer in answers)
    assert wait_for(
        lambda: image_files(storage) == [os.path.basename(image_file(storage))]
    )


def image_file(storage) -> str:
    """The one image of the storage directory (uploads in progress aside)."""
    (name,) = [name for name in image_files(storage) if name.endswith('.jpeg')]
    return name
