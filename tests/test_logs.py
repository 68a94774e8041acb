"""What a client can make the server log: one line a minute of each kind; and
what a stop that did not wait cut short: one line each."""

import asyncio
import logging
import sys

import pytest
import uvicorn

from asgilook import logs

from .fakes import FakeClock


def _record(message: str, exc_info=None, args=()) -> logging.LogRecord:
    return logging.LogRecord(
        'uvicorn.error', logging.ERROR, __file__, 1, message, args, exc_info
    )


def _failure():
    try:
        b'\xff'.decode()
    except UnicodeDecodeError:
        return sys.exc_info()


def test_client_noise_is_let_through_once_an_interval_without_its_traceback():
    clock = FakeClock()
    noise = logs.ClientNoise(interval=60, clock=clock)
    line = 'Invalid UTF-8 sequence received from client.'

    records = [_record(line, _failure()) for _ in range(5)]
    passed = [noise.filter(record) for record in records]
    clock.advance(60)
    later = _record(line, _failure())

    assert passed == [True, False, False, False, False]
    assert records[0].getMessage() == line
    assert records[0].exc_info is None
    assert noise.filter(later)
    assert later.getMessage() == f'{line} (4 more in the last 60 s)'


def test_each_kind_of_noise_has_its_own_interval_and_other_lines_pass():
    noise = logs.ClientNoise(clock=FakeClock())
    failure = _failure()

    assert noise.filter(_record('Invalid HTTP request received.'))
    assert noise.filter(_record('Unsupported upgrade request.'))
    assert not noise.filter(_record('Invalid HTTP request received.'))
    kept = _record('Exception in ASGI application\n', failure)
    assert noise.filter(kept)
    assert kept.exc_info is failure


# What uvicorn and the websockets library log at each WebSocket (their
# formats, as their sources have them), with the arguments they give.
WEBSOCKET_LINES = [
    ('%s - "WebSocket %s" [accepted]', ('127.0.0.1:50000', '/events')),
    ('%s - "WebSocket %s" 403', ('127.0.0.1:50000', '/events?after=0')),
    ('%s - "WebSocket %s" %d', ('127.0.0.1:50000', '/events', 426)),
    ('connection open', ()),
    ('connection closed', ()),
    ('connection rejected (%d %s)', (403, 'Forbidden')),
    ('connection rejected (%d %s)', (400, 'Bad Request')),
    ('HTTP response sent (%d %s)', (400, 'Bad Request')),
]


@pytest.fixture
def uvicorn_access(monkeypatch):
    """uvicorn's access logger, as it was again after the test."""
    logger = logging.getLogger('uvicorn.access')
    monkeypatch.setattr(logger, 'handlers', list(logger.handlers))
    monkeypatch.setattr(logger, 'propagate', logger.propagate)
    return logger


@pytest.mark.usefixtures('uvicorn_access')
@pytest.mark.parametrize('access_log', [True, False], ids=['access-log', 'none'])
def test_websocket_lines_are_logged_as_uvicorns_access_log_is(access_log):
    # Added at the start of a worker, after uvicorn's logging was set up.
    noise = logs.ClientNoise(clock=FakeClock())
    uvicorn.Config(app=None, access_log=access_log, log_config=None)
    records = [_record(line, args=args) for line, args in WEBSOCKET_LINES * 3]

    passed = [noise.filter(record) for record in records]

    assert passed == [access_log] * len(records)
    assert noise.filter(_record('Application startup complete.'))


def test_websocket_lines_pass_while_the_access_log_has_a_handler():
    # A logger of no hierarchy: one handler or none, as uvicorn leaves its own.
    access = logging.Logger('access')
    noise = logs.ClientNoise(access=access)
    line, args = WEBSOCKET_LINES[0]

    unheard = noise.filter(_record(line, args=args))
    access.addHandler(logging.NullHandler())
    heard = _record(line, args=args)

    assert not unheard
    assert noise.filter(heard)
    assert heard.getMessage() == '127.0.0.1:50000 - "WebSocket /events" [accepted]'


def test_a_record_of_another_kind_of_message_passes():
    noise = logs.ClientNoise(access=logging.Logger('access'))

    assert noise.filter(_record(ValueError('not a format')))


def test_the_filter_is_added_to_uvicorns_logger_once():
    logger = logging.getLogger('asgilook-test-noise')
    try:
        assert logs.quiet_client_noise(logger)
        assert not logs.quiet_client_noise(logger)
        assert len(logger.filters) == 1
    finally:
        logger.filters.clear()


def test_throttled_warnings_say_how_many_were_held_back(caplog):
    clock = FakeClock()
    throttled = logs.Throttled(
        logging.getLogger('asgilook.test'), logs.Throttle(10, clock)
    )
    caplog.set_level(logging.WARNING, logger='asgilook.test')

    for _ in range(3):
        throttled.warning('refused %s', 'one')
    clock.advance(10)
    throttled.warning('refused %s', 'one')
    clock.advance(10)
    throttled.warning('refused %s', 'one')

    assert [record.getMessage() for record in caplog.records] == [
        'refused one',
        'refused one (2 more in the last 10 s)',
        'refused one',
    ]


def test_a_task_the_stop_cancelled_is_one_warning_under_the_launcher():
    config = logs.uvicorn_config()
    [name] = config['loggers']['uvicorn.error']['filters']
    cancelled_by_the_stop = config['filters'][name]['()']()
    formatter = logging.Formatter(logs.FORMAT)
    cancelled = _record(
        'Exception in ASGI application\n',
        (asyncio.CancelledError, asyncio.CancelledError(), None),
    )
    failed = _record('Exception in ASGI application\n', _failure())

    assert cancelled_by_the_stop.filter(cancelled)
    assert cancelled_by_the_stop.filter(failed)

    assert cancelled.levelname == 'WARNING'
    assert formatter.format(cancelled).endswith(
        ': Exception in ASGI application: cancelled, the server stopped without waiting'
    )
    assert failed.levelname == 'ERROR'
    assert formatter.format(failed).endswith(
        'UnicodeDecodeError: ' + str(_failure()[1])
    )
