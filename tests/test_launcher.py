"""`python -m asgilook` and any server of asgilook.asgi:app: safely, or not at all."""

import logging
import os
import re
import runpy
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest
from uvicorn.supervisors.multiprocess import SIGNALS

from asgilook import launcher
from asgilook.app import create_app
from asgilook.config import Config
from asgilook.server import LimitedHttpToolsProtocol, ServerConfig
from asgilook.startup import AppAtStartup

from . import servers

BAD_SETTING = {'ASGI_LOOK_MIN_THUMB_SIZE': 'abc'}
# 2026-11-21 18:40:00,123 ERROR asgilook.startup[12345]: cannot start: ...
LOG_LINE = re.compile(
    r'^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) '
    r'(?P<logger>[.\w]+)\[(?P<pid>\d+)\]: (?P<message>.*)$'
)


def _log_lines(stderr: str) -> list[re.Match]:
    return [match for line in stderr.splitlines() if (match := LOG_LINE.match(line))]


def _lines_naming(stderr: str, name: str) -> list[str]:
    return [line for line in stderr.splitlines() if name in line]


@pytest.fixture
def signal_handlers():
    """Put back the handlers uvicorn's supervisor replaces and leaves."""
    saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_help_lists_the_options_and_their_defaults():
    done = subprocess.run(
        [sys.executable, '-m', 'asgilook', '--help'],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 0
    for option in (
        '--host',
        '--port',
        '--workers',
        '--max-header-size',
        '--header-timeout',
        '--keep-alive-timeout',
        '--limit-concurrency',
        '--backlog',
        '--shutdown-timeout',
    ):
        assert option in done.stdout
    assert '(default: 127.0.0.1)' in done.stdout


def test_python_dash_m_asgilook_runs_the_launcher(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['asgilook', '--help'])

    with pytest.raises(SystemExit) as ex:
        runpy.run_module('asgilook', run_name='__main__')

    assert ex.value.code == 0
    assert '--max-header-size' in capsys.readouterr().out


def test_a_bad_setting_exits_2_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv('ASGI_LOOK_MIN_THUMB_SIZE', 'abc')

    with pytest.raises(SystemExit) as exited:
        launcher.main([], run=pytest.fail)

    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        'python -m asgilook: error: ASGI_LOOK_MIN_THUMB_SIZE must be a whole '
        "number from 1, not 'abc'"
    ]


@pytest.mark.parametrize(
    'option',
    ['--port=x', '--workers=0', '--header-timeout=0', '--keep-alive-timeout=x'],
)
def test_a_bad_option_exits_2(option, capsys):
    with pytest.raises(SystemExit) as exited:
        launcher.main([option], run=pytest.fail)

    assert exited.value.code == 2
    assert option.split('=')[0] in capsys.readouterr().err


def test_the_launcher_says_where_images_are_kept_and_passes_its_limits(
    monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger='asgilook')
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', '/srv/asgilook')
    served = []

    status = launcher.main(
        ['--port', '8123', '--max-header-size', '20000', '--header-timeout', '3'],
        run=lambda config: served.append(config) or 0,
    )

    assert status == 0
    [config] = served
    assert (config.max_header_size, config.header_timeout) == (20000, 3.0)
    assert config.http is LimitedHttpToolsProtocol
    assert 'serving http://127.0.0.1:8123 with 1 worker(s)' in caplog.messages
    assert 'images are kept in /srv/asgilook' in caplog.messages


def test_the_launcher_warns_of_storage_under_tmp(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger='asgilook')
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', '/tmp/asgilook-launcher-test')

    launcher.main(['--host', '::1'], run=lambda config: 0)

    assert 'serving http://[::1]:8000 with 1 worker(s)' in caplog.messages
    [warning] = [r for r in caplog.records if r.levelname == 'WARNING']
    assert '/tmp/asgilook-launcher-test' in warning.getMessage()
    assert 'empty at boot' in warning.getMessage()


def test_a_server_whose_start_fails_exits_3(caplog):
    config = ServerConfig(
        AppAtStartup(lambda: create_app(Config(BAD_SETTING))),
        port=servers.free_port(),
        lifespan='on',
        log_level='warning',
    )

    with pytest.raises(SystemExit) as exited:
        launcher.serve(config)

    assert exited.value.code == 3


def test_a_server_stopped_by_a_signal_exits_0(signal_handlers):
    received = []
    signal.signal(signal.SIGTERM, lambda *args: received.append(args[0]))

    async def app(scope, receive, send):
        await receive()
        signal.raise_signal(signal.SIGTERM)  # As `kill` would, once started.
        await send({'type': 'lifespan.startup.complete'})
        await receive()
        await send({'type': 'lifespan.shutdown.complete'})

    config = ServerConfig(
        app, port=servers.free_port(), lifespan='on', log_level='warning'
    )

    assert launcher.serve(config) == 0
    assert received == [signal.SIGTERM]  # uvicorn raises it again once stopped.


@pytest.mark.live
def test_workers_whose_start_fails_stop_the_launcher_with_3(
    monkeypatch, signal_handlers
):
    monkeypatch.setenv('ASGI_LOOK_MIN_THUMB_SIZE', 'abc')
    config = ServerConfig(
        launcher.APP, port=servers.free_port(), workers=2, log_level='warning'
    )

    started = time.monotonic()
    assert launcher.serve(config) == 3
    assert time.monotonic() - started < 15


@pytest.mark.live
@pytest.mark.parametrize('workers', [1, 2])
def test_uvicorn_stops_on_a_bad_setting_with_one_line(tmp_path, workers):
    status, stderr, took = servers.run_until_exit(
        [
            sys.executable,
            '-m',
            'uvicorn',
            'asgilook.asgi:app',
            '--port',
            str(servers.free_port()),
            '--workers',
            str(workers),
        ],
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
        [
            sys.executable,
            '-m',
            'uvicorn',
            'asgilook.asgi:app',
            '--port',
            str(servers.free_port()),
        ],
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
