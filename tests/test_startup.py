"""The app a server runs is built at its start, and a failed start stops it."""

import asyncio
import importlib
import os
import signal

import falcon.asgi
import falcon.testing
import pytest

from asgilook import workers
from asgilook.app import create_served_app
from asgilook.errors import StorageUnavailableError
from asgilook.serving import startup
from asgilook.serving.startup import AppAtStartup

from .fakes import as_listed, make_config
from .images import photo
from .lifespans import bad_setting, lifespan, request, status_and_json


def _cannot_start_lines(caplog):
    return [
        record.getMessage()
        for record in caplog.records
        if record.getMessage().startswith('cannot start')
    ]


async def test_importing_the_served_app_reads_no_setting(monkeypatch):
    monkeypatch.setenv('ASGI_LOOK_MIN_THUMB_SIZE', 'abc')
    import asgilook.asgi

    module = importlib.reload(asgilook.asgi)
    assert isinstance(module.app, AppAtStartup)


async def test_a_bad_setting_fails_the_start_in_one_line(caplog):
    sent = await lifespan(AppAtStartup(bad_setting), ['lifespan.startup'])

    # No message: uvicorn would log it again, in every worker.
    assert sent == [{'type': 'lifespan.startup.failed'}]
    assert _cannot_start_lines(caplog) == [
        'cannot start: ASGI_LOOK_MIN_THUMB_SIZE must be a whole number from 1, '
        "not 'abc'"
    ]
    assert 'Traceback' not in caplog.text


async def test_storage_that_takes_no_files_fails_the_start_in_one_line(
    tmp_path, redis_server, caplog
):
    not_a_directory = tmp_path / 'file'
    not_a_directory.write_bytes(b'')
    config = make_config(not_a_directory, redis_server)

    sent = await lifespan(AppAtStartup(lambda: create_served_app(config)))

    assert sent == [{'type': 'lifespan.startup.failed'}]
    [line] = _cannot_start_lines(caplog)
    assert str(not_a_directory) in line
    assert 'ASGI_LOOK_STORAGE_PATH' in line
    assert 'Traceback' not in caplog.text


async def test_an_unexpected_failure_is_reported_with_its_traceback(caplog):
    def broken():
        raise RuntimeError('a bug')

    sent = await lifespan(AppAtStartup(broken))

    assert sent == [{'type': 'lifespan.startup.failed'}]
    [line] = _cannot_start_lines(caplog)
    assert 'Traceback' in line
    assert line.endswith('RuntimeError: a bug')


@pytest.mark.parametrize(
    ('inner', 'reason'),
    [
        ('raises', 'RuntimeError: lifespan broke'),
        ('returns', 'the application ended its lifespan without an answer'),
        ('says why', 'the database is away'),
        ('says nothing', 'no reason given'),
    ],
)
async def test_an_app_whose_own_startup_fails_is_reported(caplog, inner, reason):
    async def app(scope, receive, send):
        await receive()
        if inner == 'raises':
            raise RuntimeError('lifespan broke')
        if inner == 'says why':
            await send({'type': 'lifespan.startup.failed', 'message': reason})
        elif inner == 'says nothing':
            await send({'type': 'lifespan.startup.failed'})

    sent = await lifespan(AppAtStartup(lambda: app), ['lifespan.startup'])

    assert sent == [{'type': 'lifespan.startup.failed'}]
    [line] = _cannot_start_lines(caplog)
    assert line.endswith(reason)


class _StorageAway:
    async def process_startup(self, scope, event):
        raise StorageUnavailableError('cannot store images in /gone')


async def test_a_falcon_middleware_that_cannot_start_is_reported_in_its_words(
    caplog,
):
    app = falcon.asgi.App(middleware=[_StorageAway()])

    sent = await lifespan(AppAtStartup(lambda: app), ['lifespan.startup'])

    assert sent == [{'type': 'lifespan.startup.failed'}]
    assert _cannot_start_lines(caplog) == ['cannot start: cannot store images in /gone']
    assert 'Traceback' not in caplog.text


async def test_a_failed_shutdown_is_passed_on():
    async def app(scope, receive, send):
        await receive()
        await send({'type': 'lifespan.startup.complete'})
        await receive()
        await send({'type': 'lifespan.shutdown.failed', 'message': 'stuck'})

    sent = await lifespan(AppAtStartup(lambda: app))

    assert sent == [
        {'type': 'lifespan.startup.complete'},
        {'type': 'lifespan.shutdown.failed', 'message': 'stuck'},
    ]


async def test_the_app_is_served_once_started(config):
    async with falcon.testing.ASGIConductor(
        AppAtStartup(lambda: create_served_app(config))
    ) as conductor:
        posted = await conductor.simulate_post('/images', body=photo())
        listed = await conductor.simulate_get('/images')

    assert posted.status_code == 201
    assert listed.json == [as_listed(posted.json)]


async def test_without_a_lifespan_the_first_request_starts_the_app(config):
    app = AppAtStartup(lambda: create_served_app(config))

    first, second = await asyncio.gather(request(app), request(app))

    assert status_and_json(first) == (200, [])
    assert status_and_json(second) == (200, [])


async def test_without_a_lifespan_a_failed_start_is_a_503_and_stops(caplog):
    stops = []
    app = AppAtStartup(bad_setting, stop=lambda: stops.append('stop'))

    first = await request(app)
    second = await request(app)
    websocket = await request(app, '/events', kind='websocket')

    for sent in (first, second):
        status, body = status_and_json(sent)
        assert status == 503
        assert body['title'] == 'Service unavailable'
    assert websocket == [{'type': 'websocket.close', 'code': 1011}]
    assert stops == ['stop']
    assert len(_cannot_start_lines(caplog)) == 1


async def test_one_worker_of_a_supervisor_reports_a_failed_start(caplog, claims):
    # Two workers of one supervisor, as two apps in one process.
    supervisor = 10**9 + os.getpid()
    workers = [
        AppAtStartup(bad_setting, supervisor_pid=lambda: supervisor, report_hold=0)
        for _ in range(2)
    ]

    for worker in workers:
        assert await lifespan(worker, ['lifespan.startup']) == [
            {'type': 'lifespan.startup.failed'}
        ]

    assert len(_cannot_start_lines(caplog)) == 1


def test_stopping_signals_the_supervisor_else_this_process():
    kills = []

    startup.stop_server(lambda: 12345, kill=lambda *args: kills.append(args))
    startup.stop_server(lambda: None, kill=lambda *args: kills.append(args))

    assert kills == [(12345, signal.SIGTERM), (os.getpid(), signal.SIGTERM)]


def test_every_worker_reports_where_none_can_claim():
    # A supervisor pid no name can be made of: the claim fails, not the report.
    assert workers.first_to_report(None)
    assert workers.first_to_report('\0' * 200)
