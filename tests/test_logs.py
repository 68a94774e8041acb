"""What a client can make the server log: one line a minute of each kind; and
what a stop that did not wait cut short: one line each."""

import asyncio
import logging
import sys

from asgilook import logs

from .fakes import FakeClock


def _record(message: str, exc_info=None) -> logging.LogRecord:
    return logging.LogRecord(
        'uvicorn.error', logging.ERROR, __file__, 1, message, (), exc_info
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
