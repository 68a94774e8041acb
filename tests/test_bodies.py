"""Upload bodies that never finish: cut, short, stalled; and memory while they wait."""

import asyncio
import os
import pathlib
import random

import falcon
import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.http.bodies import GuardedBody
from asgilook.storage.files import TEMPORARY_DIRECTORY

from .asgi import DISCONNECT, STALL, body, call
from .images import encode, gradient, image_files


@pytest.fixture
def png():
    return encode(gradient((320, 200)), 'PNG')


def post(app, events, headers=()):
    return falcon.async_to_sync(call, app, 'POST', '/images', events, headers)


def assert_nothing_stored(app, storage_path):
    assert image_files(storage_path) == []
    assert falcon.testing.TestClient(app).simulate_get('/images').json == []


@pytest.mark.parametrize('cut', [0.1, 0.5, 0.99])
def test_a_client_that_goes_away_mid_body_stores_nothing(config, storage_path, cut):
    png = encode(gradient((320, 200)), 'PNG')
    app = create_served_app(config)
    sent = int(len(png) * cut)
    events = [body(png[:sent], more=True), DISCONNECT]

    status, _, error, _ = post(app, events, [('Content-Length', str(len(png)))])

    assert status == 400
    assert error['title'] == 'Upload incomplete'
    assert_nothing_stored(app, storage_path)


def test_a_chunked_upload_cut_at_a_chunk_boundary_stores_nothing(
    config, storage_path, png
):
    # Every byte up to IEND arrived, but the client never said the body ended.
    app = create_served_app(config)
    events = [body(png[:100], more=True), body(png[100:], more=True), DISCONNECT]

    status, _, error, _ = post(app, events)

    assert (status, error['title']) == (400, 'Upload incomplete')
    assert_nothing_stored(app, storage_path)


def test_a_body_shorter_than_its_content_length_stores_nothing(
    config, storage_path, png
):
    app = create_served_app(config)
    events = [body(png)]

    status, _, error, _ = post(app, events, [('Content-Length', str(len(png) + 10))])

    assert (status, error['title']) == (400, 'Upload incomplete')
    assert 'Content-Length' in error['description']
    assert_nothing_stored(app, storage_path)


@pytest.mark.parametrize('size', [10_000, 3 * 1024 * 1024])
def test_a_stalled_body_times_out_and_leaves_nothing(config, storage_path, size):
    # Small bodies wait in memory, large ones in a spool file: neither stays.
    config.body_timeout = 0.05
    app = create_served_app(config)
    noise = random.Random(size)
    events = [body(b'\x89PNG\r\n\x1a\n' + noise.randbytes(size % 1024), more=True)]
    events += [body(noise.randbytes(1024 * 1024), more=True)] * (size // (1024 * 1024))
    events.append(STALL)

    status, _, error, _ = post(app, events)

    assert status == 408
    assert error['title'] == 'Upload stalled'
    assert '0.05 seconds' in error['description']
    assert image_files(storage_path) == []
    assert_nothing_stored(app, storage_path)


def test_a_complete_upload_is_not_timed_by_its_pauses_before_it(config, png):
    # The timeout bounds each wait for the body, not the whole upload.
    config.body_timeout = 0.2
    app = create_served_app(config)

    async def slow_but_steady():
        events = [body(png[i : i + 4096], more=True) for i in range(0, len(png), 4096)]
        events.append(body(b''))
        return await call(app, 'POST', '/images', events)

    status, _, image, _ = falcon.async_to_sync(slow_but_steady)

    assert status == 201
    assert image['size'] == [320, 200]


def test_expect_100_continue_over_the_limit_is_refused_before_the_body(config):
    config.max_upload_size = 1000
    app = create_served_app(config)
    headers = [('Content-Length', '5000'), ('Expect', '100-continue')]

    # The server sends "100 Continue" at the app's first receive(): none here.
    status, _, error, pulled = post(app, [body(b'x' * 5000)], headers)

    assert (status, error['title']) == (413, 'Upload too large')
    assert pulled == 0


def test_expect_100_continue_within_the_limit_uploads(config, png):
    app = create_served_app(config)
    headers = [('Content-Length', str(len(png))), ('Expect', '100-continue')]

    status, headers, image, pulled = post(app, [body(png)], headers)

    assert status == 201
    assert headers['location'] == image['image']
    assert pulled == 1


def test_waiting_uploads_share_one_memory_budget(config, storage_path, png):
    """Uploads beyond the worker's budget wait on disk; all are stored whole."""
    half = len(png) // 2
    config.upload_memory = 3 * half + 100
    app = create_served_app(config)
    gate = asyncio.Event()
    events = [body(png[:half], more=True), gate, body(png[half:])]

    async def main():
        uploads = [
            asyncio.ensure_future(call(app, 'POST', '/images', events))
            for _ in range(8)
        ]
        while len(spool_files()) < 5:  # noqa: ASYNC110 (files, not tasks)
            await asyncio.sleep(0.01)
        waiting = spool_files()
        gate.set()
        return waiting, await asyncio.gather(*uploads)

    def spool_files():
        incoming = pathlib.Path(storage_path) / TEMPORARY_DIRECTORY
        return os.listdir(incoming) if incoming.is_dir() else []

    waiting, responses = falcon.async_to_sync(main)

    # Three halves fit in memory; the other five waited in spool files.
    assert len(waiting) == 5
    assert all(name.startswith(f'{os.getpid()}-') for name in waiting)
    assert [status for status, *_ in responses] == [201] * 8
    assert len(image_files(storage_path)) == 8
    assert spool_files() == []


def test_http_0_9_is_refused_with_json(config):
    app = create_served_app(config)

    status, headers, error, _ = falcon.async_to_sync(
        call, app, 'GET', '/images', [body(b'')], (), '0.9'
    )

    assert status == 505
    assert headers['content-type'] == 'application/json'
    assert error['title'] == 'HTTP version not supported'


async def test_after_the_whole_body_events_pass_as_they_are():
    # Falcon waits for a disconnect while it streams a response: that wait is
    # neither timed out nor an error once the body has come whole.
    events = [body(b'abc'), DISCONNECT]

    async def receive():
        return events.pop(0)

    guarded = GuardedBody({'headers': [(b'content-length', b'3')]}, receive, 0.01)

    assert await guarded() == body(b'', more=True)
    assert await guarded() == body(b'abc')
    assert await guarded() == DISCONNECT
