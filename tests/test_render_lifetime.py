"""Render processes end with the worker they serve, however it ends, and leave
Ctrl-C to it (the watch on a process's end is the one workers use too)."""

import errno
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from asgilook.imaging import renderers
from asgilook.serving.lifetimes import when_ended

from . import servers
from .images import photo


@pytest.fixture
def process():
    """A short-lived process of the test's own, standing in for a worker."""
    started = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    yield started
    servers.stop(started)


def _ended_after(process, **options) -> bool:
    ended = threading.Event()
    when_ended(process.pid, ended.set, **options)
    assert not ended.wait(0.2), 'ended while the process still ran'
    process.kill()
    process.wait()
    return ended.wait(5)


def _no_pidfds(pid):
    raise OSError(errno.ENOSYS, 'Function not implemented')


def test_the_end_of_a_process_is_seen_at_once(process):
    assert _ended_after(process)


@pytest.mark.parametrize('pidfd_open', [None, _no_pidfds], ids=['none', 'ENOSYS'])
def test_without_pidfds_it_asks_until_the_worker_has_gone(process, pidfd_open):
    assert _ended_after(process, pidfd_open=pidfd_open, poll_interval=0.01)


@pytest.mark.parametrize('pidfd_open', [os.pidfd_open, None], ids=['pidfd', 'poll'])
def test_a_process_gone_before_the_watch_started_is_seen(process, pidfd_open):
    process.kill()
    process.wait()
    ended = threading.Event()

    when_ended(process.pid, ended.set, pidfd_open=pidfd_open)

    assert ended.wait(5)


@pytest.fixture
def sigint_handler():
    """Put back the handler of SIGINT that a test replaces."""
    found = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, found)


def test_a_render_process_leaves_ctrl_c_to_its_worker(sigint_handler):
    # As a render process's life goes: this process stands for one, whose
    # worker let it go at once.
    requests, closed = renderers.SPAWN.Pipe(duplex=False)
    closed.close()
    renderers.serve(requests, requests)

    # Ctrl-C reaches every process of a terminal's group: the worker stops
    # gracefully, letting the render finish, and a render process would
    # print a traceback.
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN


@pytest.mark.live
def test_a_killed_worker_leaves_no_process_behind(tmp_path, live_redis):
    port = servers.free_port()
    worker = servers.start_uvicorn(tmp_path / 'images', live_redis, port)
    try:
        with httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=30) as http:
            image = http.post('/images', content=photo()).json()
            assert http.get(image['thumbnails'][0]).status_code == 200
        started = servers.descendants(worker.pid)
        # The resource tracker and at least one render.
        assert len(started) >= 2

        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()

        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and any(map(servers.alive, started)):
            time.sleep(0.05)
        assert [pid for pid in started if servers.alive(pid)] == []
    finally:
        servers.stop(worker)
