"""Start-up among workers: logs, settings said once, a supervisor gone, retries."""

import asyncio
import io
import logging
import os
import signal
import subprocess
import sys
import threading

import pytest

from asgilook import logs, workers
from asgilook.app import create_served_app
from asgilook.errors import StorageUnavailableError
from asgilook.serving import startup
from asgilook.serving.startup import AppAtStartup

from .fakes import make_config
from .lifespans import bad_setting, lifespan, request, status_and_json


def test_the_started_app_logs_with_time_level_and_pid():
    logger = logging.getLogger('asgilook-test-logs')
    logger.propagate = False
    stream = io.StringIO()

    assert logs.configure(logger, stream)
    assert not logs.configure(logger, stream)
    logger.warning('Redis does not answer')

    line = stream.getvalue()
    assert line.endswith(
        f' WARNING asgilook-test-logs[{os.getpid()}]: Redis does not answer\n'
    )
    assert line[:4].isdigit()


def test_a_level_the_user_chose_is_kept():
    logger = logging.getLogger('asgilook-test-level')
    logger.propagate = False
    logger.setLevel(logging.ERROR)

    assert logs.configure(logger, io.StringIO())

    assert logger.level == logging.ERROR


def test_a_librarys_warnings_are_logged_as_asgilooks_and_its_chatter_is_not():
    name = 'asgilook-test-library'
    logging.getLogger(name).propagate = False
    stream = io.StringIO()

    assert logs.configure_libraries((name,), stream) == [name]
    assert logs.configure_libraries((name,), stream) == []
    # As psycopg's pool says a connection was taken, and the database is away.
    pool = logging.getLogger(f'{name}.pool')
    pool.info('connection requested from %r', 'pool-1')
    pool.warning('error connecting in %r: %s', 'pool-1', 'connection refused')

    [line] = stream.getvalue().splitlines()
    assert line.endswith(
        f" WARNING {name}.pool[{os.getpid()}]: error connecting in 'pool-1': "
        'connection refused'
    )
    assert line[:4].isdigit()


async def _started(scope, receive, send):
    """An app that starts and stops, as a server runs it."""
    await receive()
    await send({'type': 'lifespan.startup.complete'})
    await receive()
    await send({'type': 'lifespan.shutdown.complete'})


@pytest.fixture
def supervisor(claims):
    """A process standing in for the supervisor of a worker of this process.

    A worker that has started watches it, and when it ends, sends this
    process SIGTERM: the Event the fixture yields is set then.
    """
    stopped = threading.Event()
    found = signal.signal(signal.SIGTERM, lambda *args: stopped.set())
    process = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    try:
        yield process, stopped
    finally:
        process.kill()
        process.wait()
        # A watch the test started ends with a SIGTERM, for this handler.
        stopped.wait(5)
        signal.signal(signal.SIGTERM, found)


MISSPELLED = {'ASGI_LOOK_REDIS_URL': 'redis://cache.internal'}
MISSPELLED_WARNING = (
    'unknown setting ASGI_LOOK_REDIS_URL (did you mean ASGI_LOOK_REDIS_HOST?)'
)


def _warnings(caplog):
    return [r.getMessage() for r in caplog.records if r.levelname == 'WARNING']


async def test_the_first_worker_warns_of_an_unknown_setting_for_all(caplog, claims):
    # Two workers of one supervisor, as two apps in one process; their start
    # fails, as a started worker would watch its supervisor, and this one is
    # no process.
    supervisor = 10**9 + os.getpid()
    workers = [
        AppAtStartup(
            bad_setting,
            supervisor_pid=lambda: supervisor,
            report_hold=0,
            environ=MISSPELLED,
        )
        for _ in range(2)
    ]

    for worker in workers:
        await lifespan(worker, ['lifespan.startup'])

    assert _warnings(caplog) == [MISSPELLED_WARNING]


async def test_workers_do_not_repeat_what_the_launcher_said(caplog, claims):
    launcher = 10**9 + os.getpid()
    worker = AppAtStartup(
        bad_setting, supervisor_pid=lambda: launcher, report_hold=0, environ=MISSPELLED
    )

    startup.warn_of_unknown_settings(MISSPELLED, launcher)
    await lifespan(worker, ['lifespan.startup'])

    assert _warnings(caplog) == [MISSPELLED_WARNING]


def test_a_worker_stops_when_its_supervisor_has_gone(supervisor, caplog):
    process, stopped = supervisor
    worker = AppAtStartup(lambda: _started, supervisor_pid=lambda: process.pid)
    asyncio.run(lifespan(worker))
    assert not stopped.wait(0.2), 'stopped while the supervisor still ran'

    process.kill()

    assert stopped.wait(5)
    assert 'the supervisor of this worker has gone' in caplog.text


async def test_a_worker_that_cannot_start_beside_others_waits_out_of_service(
    caplog, claims, storage_path
):
    # One started in place of one that died, its storage away for a while.
    attempts = []

    def factory():
        attempts.append(len(sent))
        if len(attempts) < 3:
            raise StorageUnavailableError('cannot store images in /srv (read-only)')
        return create_served_app(make_config(storage_path))

    app = AppAtStartup(
        factory,
        supervisor_pid=os.getpid,
        others_serving=lambda supervisor: supervisor == os.getpid(),
        retry_interval=0.01,
    )
    sent = []

    async def send(event):
        sent.append(event)

    events = [{'type': 'lifespan.startup'}, {'type': 'lifespan.shutdown'}]

    async def receive():
        return events.pop(0)

    scope = {'type': 'lifespan', 'asgi': {'version': '3.0'}, 'state': {}}
    async with asyncio.timeout(10):
        await app(scope, receive, send)

    # Its start told the server only once it started, at its third attempt:
    # until then the server took no connection on it.
    assert attempts == [0, 0, 0]
    assert sent == [
        {'type': 'lifespan.startup.complete'},
        {'type': 'lifespan.shutdown.complete'},
    ]
    assert [r.getMessage() for r in caplog.records if r.name == 'asgilook.startup'] == [
        'cannot start: cannot store images in /srv (read-only); the other workers '
        'of this server serve: this one takes no request and tries again every '
        '0.01 s',
        'started at last: this worker serves too',
    ]


def test_a_worker_that_serves_is_seen_by_the_others(claims):
    supervisor = 10**9 + os.getpid()

    before = workers.others_serve(supervisor)
    workers.mark_serving(supervisor)
    # (Marked once: a second mark of the same process is the same.)
    workers.mark_serving(supervisor)

    served = workers.others_serve(supervisor)
    # As the worker's exit does.
    workers.let_go()

    assert not before
    assert served
    assert not workers.others_serve(supervisor)
    assert not workers.others_serve(supervisor + 1)
    assert not workers.others_serve(None)
    assert not workers.others_serve(supervisor, unix='/nonexistent/net/unix')


def test_what_every_worker_finds_is_said_once_for_the_server(caplog, claims):
    supervisor = 10**9 + os.getpid()
    logger = logging.getLogger('asgilook.test')

    for _ in range(2):
        workers.warn_once(logger, 'test', 'found %s', 'this', supervisor=supervisor)
    workers.warn_once(logger, 'test', 'found %s', 'that', supervisor=supervisor + 1)

    assert [r.getMessage() for r in caplog.records] == ['found this', 'found that']


async def test_a_worker_waiting_to_start_stops_with_the_server(caplog):
    app = AppAtStartup(
        bad_setting,
        supervisor_pid=os.getpid,
        others_serving=lambda supervisor: True,
        retry_interval=60,
    )
    running = asyncio.create_task(lifespan(app))

    def waiting() -> bool:
        # It says so as it begins to wait to try again.
        return any('tries again every' in r.getMessage() for r in caplog.records)

    async with asyncio.timeout(10):
        while not waiting():  # noqa: ASYNC110 (a log line, not a task)
            await asyncio.sleep(0.01)
    # What SIGINT or SIGTERM does to it.
    app.stop_retrying()
    async with asyncio.timeout(10):
        sent = await running
    refused = await request(app)

    # It never started: the server goes on to its shutdown.
    assert sent == [
        {'type': 'lifespan.startup.complete'},
        {'type': 'lifespan.shutdown.complete'},
    ]
    status, body = status_and_json(refused)
    assert (status, body['title']) == (503, 'Service unavailable')
