"""Thumbnails render in processes of their own: the same bytes, and no 500."""

import asyncio
import concurrent.futures
import contextlib
import errno
import os
import pathlib
import pickle
import signal
import struct
import time

import fakeredis
import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.imaging import convert, renderers

from . import servers
from .fakes import dying_render, make_config, stuck_render
from .images import photo


def _app(storage_path, redis_server, render_processes):
    config = make_config(storage_path, redis_server)
    config.render_processes = render_processes
    return create_served_app(config)


def _render_processes() -> list[int]:
    """The processes this one started afresh through multiprocessing: the renders."""
    renders = []
    for child in servers.descendants(os.getpid()):
        with open(f'/proc/{child}/cmdline', 'rb') as cmdline:
            if b'spawn_main' in cmdline.read():
                renders.append(child)
    return renders


@pytest.mark.parametrize('size', [(1920, 1080), (1999, 1333)])
async def test_processes_render_what_threads_render(storage_path, redis_server, size):
    in_processes = _app(storage_path, redis_server, 2)
    in_threads = _app(storage_path, fakeredis.FakeServer(), 0)
    async with (
        falcon.testing.ASGIConductor(in_processes) as one,
        falcon.testing.ASGIConductor(in_threads) as other,
    ):
        image = (await one.simulate_post('/images', body=photo(size))).json
        for uri in image['thumbnails']:
            rendered = await one.simulate_get(uri)
            also_rendered = await other.simulate_get(uri)
            assert rendered.headers['X-ASGILook-Cache'] == 'Miss'
            assert also_rendered.headers['X-ASGILook-Cache'] == 'Miss'
            assert rendered.content == also_rendered.content, uri


async def test_a_render_process_that_died_is_replaced(storage_path, redis_server):
    app = _app(storage_path, redis_server, 2)
    async with falcon.testing.ASGIConductor(app) as conductor:
        image = (await conductor.simulate_post('/images', body=photo())).json
        first, second = image['thumbnails'][:2]
        assert (await conductor.simulate_get(first)).status_code == 200
        killed = _render_processes()
        assert killed
        for pid in killed:
            os.kill(pid, signal.SIGKILL)

        resp = await conductor.simulate_get(second)

    assert resp.status_code == 200
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'


async def test_renders_go_on_while_their_processes_are_killed(
    storage_path, redis_server
):
    # Whether a process is found dead as a render is handed to it, or as its
    # outcome is read, is the operating system's timing: both happen here.
    app = _app(storage_path, redis_server, 2)
    async with falcon.testing.ASGIConductor(app) as conductor:
        image = await conductor.simulate_post('/images', body=photo((4000, 3000)))
        uris = image.json['thumbnails']
        answers = []
        for uri in uris:
            answers.append(await conductor.simulate_get(uri))
            for pid in _render_processes():
                os.kill(pid, signal.SIGKILL)

    assert [resp.status_code for resp in answers] == [200] * len(uris)


async def test_a_render_whose_process_dies_each_time_is_a_503(
    storage_path, redis_server, monkeypatch
):
    app = _app(storage_path, redis_server, 2)
    async with falcon.testing.ASGIConductor(app) as conductor:
        image = (await conductor.simulate_post('/images', body=photo())).json
        monkeypatch.setattr(convert, 'resize', dying_render)
        failures = await asyncio.gather(
            *(conductor.simulate_get(uri) for uri in image['thumbnails'][:2])
        )
        monkeypatch.undo()
        again = await conductor.simulate_get(image['thumbnails'][0])

    for failed in failures:
        assert failed.status_code == 503
        assert failed.json['title'] == 'Thumbnail not rendered'
        assert 'Try again later' in failed.json['description']
        assert failed.headers['Retry-After'] == '10'
    assert again.status_code == 200


@pytest.fixture
def stored_photo(tmp_path):
    """A stored JPEG, and the bytes convert.resize renders of it at 960x540."""
    path = tmp_path / 'stored.jpeg'
    path.write_bytes(photo())
    return path, convert.resize(path, (960, 540), 90)


@contextlib.asynccontextmanager
async def _render_processes_of(workers, **params):
    with concurrent.futures.ThreadPoolExecutor(1) as threads:
        processes = renderers.RenderProcesses(workers, threads, **params)
        try:
            yield processes
        finally:
            await processes.close()


class _NoProcesses:
    """multiprocessing on a machine that refuses to start another process."""

    Pipe = staticmethod(renderers.SPAWN.Pipe)

    def Process(self, **kwargs):  # noqa: N802 (multiprocessing's name)
        return self

    def start(self):
        raise OSError(errno.EAGAIN, 'Resource temporarily unavailable')


async def test_where_no_process_can_start_thumbnails_render_in_threads(
    stored_photo, caplog
):
    path, expected = stored_photo
    async with _render_processes_of(2, context=_NoProcesses()) as processes:
        rendered = [await processes.resize(path, (960, 540), 90) for _ in range(3)]

    assert rendered == [expected] * 3
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith('asgilook')
    ]
    assert len(warnings) == 1
    assert warnings[0].startswith('cannot start processes to render thumbnails')
    assert 'Resource temporarily unavailable' in warnings[0]


def _appears(path: pathlib.Path, seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    return path.exists()


async def test_a_render_process_stuck_when_let_go_is_killed(stored_photo, monkeypatch):
    # A worker stopping waits for its renders, a few seconds at most.
    path, _ = stored_photo
    began = pathlib.Path(f'{path}.rendering')
    async with _render_processes_of(1, end_seconds=0.2) as processes:
        monkeypatch.setattr(convert, 'resize', stuck_render)
        render = asyncio.create_task(processes.resize(path, (960, 540), 90))
        assert await asyncio.to_thread(_appears, began)
        (stuck,) = _render_processes()
        # The request that asked for it has gone (a client that left).
        render.cancel()
        started = time.monotonic()
        await processes.close()
        took = time.monotonic() - started

    assert took < 5
    assert not servers.alive(stuck)
    assert render.cancelled()


def test_a_render_process_answers_each_render_in_turn(stored_photo, tmp_path):
    # The render process's side of its pipes, run in this process: it tells
    # each outcome, an error too, as its length and its pickle, and ends
    # when its worker lets it go (the pipe's end).
    path, expected = stored_photo
    requests_end, requests = renderers.SPAWN.Pipe(duplex=False)
    outcomes, outcomes_end = renderers.SPAWN.Pipe(duplex=False)
    for source in (path, tmp_path / 'gone.jpeg'):
        # As the worker sends each: its length, then its pickle.
        asked = pickle.dumps((convert.resize, (source, (960, 540), 90)))
        os.write(requests.fileno(), struct.pack('!Q', len(asked)) + asked)
    requests.close()
    # Read as the worker does, beside it: a thumbnail is more than a pipe holds.
    with concurrent.futures.ThreadPoolExecutor(1) as reader:
        reading = reader.submit(_read_to_end, outcomes)
        found = signal.getsignal(signal.SIGINT)
        try:
            renderers.serve(requests_end, outcomes_end)
        finally:
            signal.signal(signal.SIGINT, found)
            outcomes_end.close()
        told = reading.result(timeout=30)

    answers = []
    while told:
        (length,) = struct.unpack('!Q', told[:8])
        answers.append(pickle.loads(told[8 : 8 + length]))
        told = told[8 + length :]
    (rendered, thumbnail), (failed, error) = answers
    assert (rendered, thumbnail) == (True, expected)
    assert not failed
    assert isinstance(error, OSError)


def _read_to_end(connection) -> bytes:
    told = b''
    while chunk := os.read(connection.fileno(), 65536):
        told += chunk
    connection.close()
    return told
