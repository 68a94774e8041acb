"""`python -m asgilook` and `uvicorn asgilook.asgi:app` run for real: their
limits, their logs, and how a failed start stops them."""

import os
import re
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect as ws_connect

from . import servers

BAD_SETTING = {'ASGI_LOOK_MIN_THUMB_SIZE': 'abc'}
# 2026-11-21 18:40:00,123 ERROR asgilook.startup[12345]: cannot start: ...
LOG_LINE = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) '
    r'(?P<logger>[.\w]+)\[(?P<pid>\d+)\]: (?P<message>.*)$'
)


def _log_lines(stderr: str) -> list[re.Match]:
    return [match for line in stderr.splitlines() if (match := LOG_LINE.match(line))]


def _plain_uvicorn(*options: str) -> list[str]:
    """The command of uvicorn serving asgilook on a free port, without the launcher."""
    port = str(servers.free_port())
    return [
        sys.executable,
        '-m',
        'uvicorn',
        'asgilook.asgi:app',
        '--port',
        port,
        *options,
    ]


def _lines_naming(stderr: str, name: str) -> list[str]:
    return [line for line in stderr.splitlines() if name in line]


@pytest.mark.live
@pytest.mark.parametrize('workers', [1, 2])
def test_uvicorn_stops_on_a_bad_setting_with_one_line(tmp_path, workers):
    status, stderr, took = servers.run_until_exit(
        _plain_uvicorn('--workers', str(workers)),
        env=dict(BAD_SETTING, ASGI_LOOK_STORAGE_PATH=str(tmp_path)),
    )

    assert status is not None, stderr
    assert took < 10
    [line] = _lines_naming(stderr, 'ASGI_LOOK_MIN_THUMB_SIZE')
    assert 'Traceback' not in stderr
    [report] = _log_lines(line)
    assert report['level'] == 'ERROR'
    assert report['message'].startswith('cannot start: ASGI_LOOK_MIN_THUMB_SIZE')
    if workers == 1:
        assert status == 3
    # With --workers, uvicorn 0.54's supervisor stops, and exits 0.


@pytest.mark.live
def test_uvicorn_stops_on_storage_that_takes_no_files(tmp_path):
    not_a_directory = tmp_path / 'file'
    not_a_directory.write_bytes(b'')

    status, stderr, took = servers.run_until_exit(
        _plain_uvicorn(),
        env={'ASGI_LOOK_STORAGE_PATH': str(not_a_directory)},
    )

    assert status == 3
    assert took < 10
    [line] = _lines_naming(stderr, str(not_a_directory))
    assert 'ASGI_LOOK_STORAGE_PATH' in line
    assert 'Traceback' not in stderr


@pytest.mark.live
def test_without_a_lifespan_the_first_request_stops_every_worker(tmp_path):
    port = servers.free_port()
    command = [
        sys.executable,
        '-m',
        'uvicorn',
        'asgilook.asgi:app',
        '--port',
        str(port),
        '--workers',
        '2',
        '--lifespan',
        'off',
    ]
    process = subprocess.Popen(
        command,
        env=dict(os.environ, **BAD_SETTING),
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    process.leads_group = True
    try:
        deadline = time.monotonic() + servers.STARTUP_SECONDS
        while True:
            try:
                resp = httpx.get(f'http://127.0.0.1:{port}/images', timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert resp.status_code == 503
        assert resp.json()['title'] == 'Service unavailable'
        process.wait(timeout=10)
    finally:
        servers.stop(process)
    _, stderr = process.communicate()
    assert len(_lines_naming(stderr, 'ASGI_LOOK_MIN_THUMB_SIZE')) == 1


@pytest.mark.live
def test_the_launcher_serves_within_its_limits(tmp_path, live_redis):
    port = servers.free_port()
    process = servers.start_launcher(
        tmp_path / 'images',
        live_redis,
        port,
        '--max-header-size',
        '16384',
        '--header-timeout',
        '0.5',
    )
    try:
        with httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=10) as http:
            assert http.get('/images').json() == []
            within = http.get('/images', headers={'X-Within': 'a' * 8000})
            assert within.status_code == 200
        # One worker: the launcher's own process.
        before = servers.rss_kib(process.pid, 'VmHWM')

        for _ in range(4):
            answer = _send(port, b'X-Large: ' + b'a' * (16 * 1024 * 1024) + b'\r\n')
            assert answer in (b'', b'HTTP/1.1 431')

        grown = servers.rss_kib(process.pid, 'VmHWM') - before
        # uvicorn alone takes such a head whole: its worker peaks ~50 MiB higher.
        assert grown < 8 * 1024, f'the worker grew by {grown} KiB at its peak'

        started = time.monotonic()
        answer = _send(port, b'X-Half: ', wait=True)
        assert answer == b'HTTP/1.1 408'
        assert time.monotonic() - started < 3
    finally:
        servers.stop(process)

    _, stderr = process.communicate()
    assert b'Traceback' not in stderr


@pytest.mark.live
def test_every_log_line_says_which_process_said_it(tmp_path, live_redis):
    port = servers.free_port()
    process = servers.start_launcher(
        tmp_path / 'images', live_redis, port, '--workers', '2'
    )
    try:
        assert httpx.get(f'http://127.0.0.1:{port}/images').status_code == 200
    finally:
        servers.stop(process)

    _, stderr = process.communicate()
    lines = _log_lines(stderr.decode())
    assert {line['logger'] for line in lines} >= {'asgilook.launcher', 'uvicorn.error'}
    assert any(line['message'].startswith('serving http://') for line in lines)
    # The launcher and its two workers.
    assert len({line['pid'] for line in lines}) == 3


@pytest.mark.live
@pytest.mark.parametrize('command', ['launcher', 'uvicorn'])
def test_a_misspelled_setting_is_named_once_for_all_workers(
    tmp_path, live_redis, command
):
    port = servers.free_port()
    start = servers.start_launcher if command == 'launcher' else servers.start_uvicorn
    options = {'stderr': subprocess.PIPE} if command == 'uvicorn' else {}
    process = start(
        tmp_path / 'images',
        live_redis,
        port,
        '--workers',
        '2',
        env={'ASGI_LOOK_REDIS_URL': live_redis},
        **options,
    )
    lines = []
    both_started = threading.Event()
    reader = threading.Thread(target=_read_log, args=(process, lines, both_started))
    reader.start()
    try:
        assert httpx.get(f'http://127.0.0.1:{port}/images').status_code == 200
        # Both workers have started: each has had its chance to say it.
        assert both_started.wait(servers.STARTUP_SECONDS)
    finally:
        servers.stop(process)
        reader.join()

    [line] = _lines_naming(''.join(lines), 'ASGI_LOOK_REDIS_URL')
    [warning] = _log_lines(line)
    assert warning['level'] == 'WARNING'
    assert warning['message'] == (
        'unknown setting ASGI_LOOK_REDIS_URL (did you mean ASGI_LOOK_REDIS_HOST?)'
    )


def _read_log(process, lines: list[str], both_started: threading.Event) -> None:
    """Keep the lines of process's stderr; set both_started at two started workers."""
    for line in process.stderr:
        lines.append(line.decode())
        if sum('Application startup complete' in seen for seen in lines) == 2:
            both_started.set()
    process.stderr.close()


def _send(port: int, head_part: bytes, wait: bool = False) -> bytes:
    """Send a request head that starts with head_part; the status line got back."""
    with socket.create_connection(('127.0.0.1', port), timeout=5) as sock:
        try:
            sock.sendall(b'GET /images HTTP/1.1\r\nHost: localhost\r\n' + head_part)
            if not wait:
                sock.sendall(b'\r\n')
            return sock.recv(12)
        except (ConnectionResetError, BrokenPipeError):
            return b''


# What uvicorn logs of a WebSocket's handshake and close: its access log.
WEBSOCKET_ACCESS = (
    '"WebSocket /events',
    'connection open',
    'connection closed',
    'connection rejected',
    'HTTP response sent',
)


@pytest.mark.live
def test_websockets_are_not_logged_without_the_access_log(tmp_path, live_redis):
    port = servers.free_port()
    # With --no-access-log.
    process = servers.start_launcher(tmp_path / 'images', live_redis, port)
    lines = []
    reader = threading.Thread(
        target=_read_log, args=(process, lines, threading.Event())
    )
    reader.start()
    url = f'ws://127.0.0.1:{port}/events'
    try:
        for _ in range(50):
            with ws_connect(url, open_timeout=10) as websocket:
                websocket.ping().wait(10)
        for _ in range(50):
            with pytest.raises(InvalidStatus) as refused:
                ws_connect(url, origin='http://evil.example', open_timeout=10)
            assert refused.value.response.status_code == 403
        for _ in range(5):
            answer = _send(port, b'Connection: Upgrade\r\nUpgrade: websocket\r\n')
            assert answer == b'HTTP/1.1 400'
    finally:
        servers.stop(process)
        reader.join()

    logged = ''.join(lines)
    assert 'Application startup complete' in logged
    assert [line for line in lines if any(s in line for s in WEBSOCKET_ACCESS)] == []


@pytest.mark.live
def test_an_object_store_that_does_not_answer_stops_the_start_cleanly(tmp_path):
    nowhere = f'127.0.0.1:{servers.free_port()}'
    status, stderr, took = servers.run_until_exit(
        _launcher(),
        env={
            'ASGI_LOOK_STORAGE_PATH': str(tmp_path),
            'ASGI_LOOK_DATABASE_URL': f'postgresql://look@{nowhere}/look',
            'ASGI_LOOK_STORAGE_URL': 's3://pictures/look',
            'AWS_ENDPOINT_URL': f'http://{nowhere}',
            'AWS_ACCESS_KEY_ID': 'asgilook',
            'AWS_SECRET_ACCESS_KEY': 'asgilook-secret',
            'AWS_REGION': 'us-east-1',
        },
    )

    assert status, stderr
    assert took < 10
    [line] = _lines_naming(stderr, 'ASGI_LOOK_STORAGE_URL')
    assert _log_lines(line)[0]['level'] == 'ERROR'
    # Every line in the one format: nothing left open spoke at the exit.
    assert _unformatted(stderr) == []


@pytest.mark.live
def test_a_database_that_does_not_answer_is_told_in_the_one_format(
    tmp_path, storage_url, s3_environ
):
    status, stderr, _ = servers.run_until_exit(
        _launcher(),
        env={
            'ASGI_LOOK_STORAGE_PATH': str(tmp_path),
            'ASGI_LOOK_DATABASE_URL': (
                f'postgresql://look@127.0.0.1:{servers.free_port()}/look'
            ),
            'ASGI_LOOK_STORAGE_URL': storage_url,
            **s3_environ,
        },
    )

    assert status, stderr
    [line] = _lines_naming(stderr, 'cannot start')
    assert 'ASGI_LOOK_DATABASE_URL' in line
    # The pool's own warnings (psycopg's) as asgilook's lines are.
    assert any(match['logger'].startswith('psycopg') for match in _log_lines(stderr)), (
        stderr
    )
    assert _unformatted(stderr) == []


def _launcher() -> list[str]:
    """The command of `python -m asgilook` on a free port."""
    return [sys.executable, '-m', 'asgilook', '--port', str(servers.free_port())]


def _unformatted(stderr: str) -> list[str]:
    """The lines that are neither log lines nor the indented rest of one."""
    return [
        line
        for line in stderr.splitlines()
        if not LOG_LINE.match(line) and not line.startswith(('\t', ' '))
    ]
