"""deploy/nginx.conf in a real nginx, in front of a real `python -m asgilook`:
it passes uploads and event streams, and keeps oversized and slow bodies
from asgilook's workers."""

import contextlib
import itertools
import json
import os
import socket
import subprocess
import time

import httpx
import pytest

from . import recipes, servers
from .images import encode, gradient

pytestmark = pytest.mark.live

# The recipe's client_body_timeout, and ASGI_LOOK_MAX_UPLOAD_SIZE's default.
BODY_TIMEOUT = 10
MAX_UPLOAD_SIZE = 32 * 1024 * 1024


def _main_config(tmp_path, recipe) -> str:
    """Return an nginx.conf that includes the recipe, its files all in tmp_path."""
    temp = ' '.join(
        f'{kind}_temp_path {tmp_path / kind};'
        for kind in ('client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi')
    )
    # As root, nginx's workers would run as nobody, who cannot enter tmp_path.
    user = 'user root;' if os.geteuid() == 0 else ''
    return (
        f'daemon off; {user} worker_processes 1; pid {tmp_path / "nginx.pid"};\n'
        'error_log stderr warn;\n'
        'events { worker_connections 256; }\n'
        f'http {{ access_log off; {temp} include {recipe}; }}\n'
    )


@contextlib.contextmanager
def _nginx(tmp_path, service_port: int):
    """Run nginx with the recipe, in front of asgilook; yield its base URL."""
    port = servers.free_port()
    recipe = tmp_path / 'asgilook.conf'
    recipe.write_text(
        recipes.NGINX.read_text()
        .replace(recipes.SERVICE_ADDRESS, f'127.0.0.1:{service_port}')
        .replace('listen 80;', f'listen 127.0.0.1:{port};')
    )
    config = tmp_path / 'nginx.conf'
    config.write_text(_main_config(tmp_path, recipe))
    process = subprocess.Popen(
        [recipes.nginx_binary(), '-p', str(tmp_path), '-c', str(config)],
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    process.leads_group = True
    url = f'http://127.0.0.1:{port}'
    try:
        servers.wait_until_answers(url + '/health', process, f'nginx on {port}')
        yield url
    finally:
        servers.stop(process)


@pytest.fixture
def proxied(tmp_path, live_redis):
    """asgilook behind the recipe's nginx; yields (nginx's URL, asgilook's URL)."""
    port = servers.free_port()
    service = servers.start_launcher(tmp_path / 'images', live_redis, port)
    try:
        with _nginx(tmp_path, port) as url:
            yield url, f'http://127.0.0.1:{port}'
    finally:
        servers.stop(service)
        service.communicate()


def _posts_answered(service_url: str) -> list[str]:
    """Return the lines of asgilook's metrics that count answered POSTs."""
    metrics = httpx.get(service_url + '/metrics').text
    return [
        line
        for line in metrics.splitlines()
        if line.startswith('asgilook_http_requests_total') and 'POST' in line
    ]


def _head(length: int) -> bytes:
    return (
        'POST /images HTTP/1.1\r\nHost: localhost\r\n'
        f'Content-Type: image/png\r\nContent-Length: {length}\r\n\r\n'
    ).encode()


def test_an_upload_through_the_proxy_is_stored(proxied):
    url, service_url = proxied
    body = encode(gradient((320, 240)), 'PNG')

    created = httpx.post(url + '/images', content=body)
    stored = httpx.get(url + created.headers['Location'])

    assert created.status_code == 201
    assert stored.status_code == 200
    assert stored.headers['Content-Type'] == 'image/jpeg'
    assert len(_posts_answered(service_url)) == 1


def test_an_oversized_upload_is_refused_by_the_proxy(proxied):
    url, service_url = proxied
    port = int(url.rsplit(':', 1)[1])

    with socket.create_connection(('127.0.0.1', port), timeout=10) as sock:
        sock.sendall(_head(MAX_UPLOAD_SIZE + 1))
        answer = sock.recv(4096)

    assert answer.startswith(b'HTTP/1.1 413 ')
    assert b'\r\nServer: nginx' in answer
    assert _posts_answered(service_url) == []


def test_a_slow_upload_is_cut_by_the_proxy_and_never_reaches_asgilook(proxied):
    url, service_url = proxied
    port = int(url.rsplit(':', 1)[1])

    with socket.create_connection(('127.0.0.1', port), timeout=60) as sock:
        sock.sendall(_head(1000) + b'\x89PNG')
        started = time.monotonic()
        # Nothing more is sent: nginx ends the request when its wait is over.
        answer = sock.recv(4096)
        waited = time.monotonic() - started

    assert answer == b'' or answer.startswith(b'HTTP/1.1 408 ')
    assert BODY_TIMEOUT - 1 < waited < BODY_TIMEOUT + 10
    assert _posts_answered(service_url) == []


def test_an_event_stream_passes_each_event_as_it_comes(proxied):
    url, _ = proxied
    body = encode(gradient((320, 240)), 'PNG')

    with (
        httpx.Client(timeout=10) as client,
        client.stream('GET', url + '/events') as stream,
    ):
        created = client.post(url + '/images', content=body).json()
        # nginx holding the event back (buffering it) times this out.
        lines = stream.iter_lines()
        for line in lines:
            if line == 'event: image.created':
                break
        event = list(itertools.takewhile(bool, lines))

    assert stream.headers['Content-Type'].startswith('text/event-stream')
    [data] = [line for line in event if line.startswith('data: ')]
    assert json.loads(data.removeprefix('data: '))['id'] == created['id']
