"""How the service stops, run for real: by a signal, with status 0 and nothing
left behind; with its supervisor, however that ends; and the statuses of a
launcher that cannot serve."""

import os
import signal
import socket
import sys
import time

import httpx
import pytest

from . import servers
from .images import photo

pytestmark = pytest.mark.live

# How long a stop may take here: far below the shutdown timeout (30 s).
STOP_SECONDS = 10


def _render_a_thumbnail(port: int) -> None:
    """Upload a picture and render a thumbnail of it: render processes start."""
    with httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=30) as http:
        image = http.post('/images', content=photo()).json()
        assert http.get(image['thumbnails'][0]).status_code == 200


def _leftovers(tmp: os.PathLike) -> list[str]:
    """What multiprocessing left in a temporary directory (pymp-* directories)."""
    return [name for name in os.listdir(tmp) if name.startswith('pymp-')]


def _send(process, sig) -> None:
    if sig == signal.SIGINT:
        # Ctrl-C: a terminal sends it to every process of the server.
        os.killpg(process.pid, sig)
    else:
        # `kill`, or a service manager stopping the main process.
        process.send_signal(sig)


@pytest.mark.parametrize('workers', [1, 2])
@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['INT', 'TERM'])
def test_a_signal_stops_the_launcher_with_0_and_leaves_nothing(
    tmp_path, live_redis, sig, workers
):
    tmp = tmp_path / 'tmp'
    tmp.mkdir()
    port = servers.free_port()
    process = servers.start_launcher(
        tmp_path / 'images',
        live_redis,
        port,
        '--workers',
        str(workers),
        env={'TMPDIR': str(tmp)},
    )
    try:
        _render_a_thumbnail(port)
        _send(process, sig)
        status = process.wait(timeout=STOP_SECONDS)
    finally:
        servers.stop(process)

    _, stderr = process.communicate()
    assert status == 0, stderr.decode()
    assert b'Traceback' not in stderr
    assert _leftovers(tmp) == []


@pytest.mark.parametrize('workers', [1, 2])
def test_a_stopped_uvicorn_leaves_no_temporary_directory(tmp_path, live_redis, workers):
    tmp = tmp_path / 'tmp'
    tmp.mkdir()
    port = servers.free_port()
    process = servers.start_uvicorn(
        tmp_path / 'images',
        live_redis,
        port,
        '--workers',
        str(workers),
        env={'TMPDIR': str(tmp)},
    )
    try:
        _render_a_thumbnail(port)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=STOP_SECONDS)
    finally:
        servers.stop(process)

    assert _leftovers(tmp) == []


def test_a_second_ctrl_c_stops_at_once_without_a_traceback(tmp_path, live_redis):
    port = servers.free_port()
    process = servers.start_launcher(
        tmp_path / 'images', live_redis, port, '--shutdown-timeout', '60'
    )
    try:
        with socket.create_connection(('127.0.0.1', port)) as upload:
            # An upload whose body stops coming: the graceful stop waits for it.
            upload.sendall(
                b'POST /images HTTP/1.1\r\nHost: localhost\r\n'
                b'Content-Length: 100000\r\n\r\n' + photo()[:1000]
            )
            os.killpg(process.pid, signal.SIGINT)
            _wait_until_refused(port)
            assert process.poll() is None, 'stopped without waiting for the upload'

            started = time.monotonic()
            os.killpg(process.pid, signal.SIGINT)
            status = process.wait(timeout=STOP_SECONDS)
    finally:
        servers.stop(process)

    _, stderr = process.communicate()
    assert status == 0
    assert time.monotonic() - started < STOP_SECONDS
    assert b'Traceback' not in stderr
    assert b'cancelled, the server stopped without waiting' in stderr


def _wait_until_refused(port: int) -> None:
    """Return once nothing listens on port: the server's graceful stop began."""
    deadline = time.monotonic() + STOP_SECONDS
    while time.monotonic() < deadline:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
        except ConnectionRefusedError:
            return
        time.sleep(0.05)
    raise AssertionError(f'port {port} still accepts connections')


@pytest.mark.parametrize('command', ['launcher', 'uvicorn'])
def test_workers_end_with_their_supervisor_killed(tmp_path, live_redis, command):
    port = servers.free_port()
    start = servers.start_launcher if command == 'launcher' else servers.start_uvicorn
    supervisor = start(tmp_path / 'images', live_redis, port, '--workers', '2')
    try:
        _render_a_thumbnail(port)
        started = servers.descendants(supervisor.pid)
        # Two workers, each with its render processes.
        assert len(started) >= 4

        supervisor.kill()
        supervisor.wait()

        deadline = time.monotonic() + STOP_SECONDS
        while time.monotonic() < deadline and any(map(servers.alive, started)):
            time.sleep(0.05)
        assert [pid for pid in started if servers.alive(pid)] == []
    finally:
        servers.stop(supervisor)
        supervisor.communicate()

    # The port is free again: another server takes it.
    again = servers.start_launcher(tmp_path / 'images', live_redis, port)
    servers.stop(again)
    again.communicate()


@pytest.mark.parametrize(
    ('setting', 'status'),
    [('ASGI_LOOK_MIN_THUMB_SIZE', 2), ('ASGI_LOOK_STORAGE_PATH', 3)],
    ids=['bad setting', 'failed start'],
)
def test_a_launcher_that_cannot_serve_says_why_in_its_status(tmp_path, setting, status):
    not_a_directory = tmp_path / 'file'
    not_a_directory.write_bytes(b'')
    values = {
        'ASGI_LOOK_MIN_THUMB_SIZE': 'abc',
        'ASGI_LOOK_STORAGE_PATH': str(not_a_directory),
    }
    port = str(servers.free_port())

    exited, stderr, _ = servers.run_until_exit(
        [sys.executable, '-m', 'asgilook', '--port', port],
        env={'ASGI_LOOK_STORAGE_PATH': str(tmp_path), setting: values[setting]},
    )

    assert exited == status
    assert setting in stderr
    assert 'Traceback' not in stderr
