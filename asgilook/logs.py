"""asgilook's log lines: time, level and process id, unless the user chose otherwise."""

from __future__ import annotations

import asyncio
import copy
import logging
import math
import time
from collections.abc import Callable
from typing import Any, TextIO

from uvicorn.config import LOGGING_CONFIG

# 2026-11-21 18:40:00,123 WARNING asgilook.cache[12345]: Redis does not answer
FORMAT = '%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s'


# The libraries that tell what an operator must know (PostgreSQL away:
# psycopg.pool; the object store: botocore), from WARNING up: their INFO
# lines come at every request.
LIBRARIES = ('psycopg', 'botocore', 'aiobotocore')


def configure(
    logger: logging.Logger | None = None,
    stream: TextIO | None = None,
    level: int = logging.INFO,
) -> bool:
    """Give asgilook's loggers a handler to stream (stderr) in FORMAT, at level.

    Left alone (False) where logging already reaches a handler: one the user
    configured (uvicorn's --log-config, logging.basicConfig) or this one.
    Python's last resort otherwise prints bare messages, and with several
    workers nobody can tell who said what.
    """
    logger = logger or logging.getLogger('asgilook')
    if logger.hasHandlers():
        return False
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(level)
    return True


def configure_libraries(
    names: tuple[str, ...] = LIBRARIES, stream: TextIO | None = None
) -> list[str]:
    """Give the loggers of libraries asgilook's format, from WARNING up, as
    configure does; the names of those it configured."""
    return [
        name
        for name in names
        if configure(logging.getLogger(name), stream, logging.WARNING)
    ]


def uvicorn_config() -> dict[str, Any]:
    """uvicorn's logging configuration, its lines in FORMAT as asgilook's are."""
    config = copy.deepcopy(LOGGING_CONFIG)
    formatters = config['formatters']
    formatters['default']['fmt'] = FORMAT
    formatters['access']['fmt'] = FORMAT.replace(
        '%(message)s', '%(client_addr)s - "%(request_line)s" %(status_code)s'
    )
    config['filters'] = {'cancelled': {'()': CancelledByTheStop}}
    config['loggers']['uvicorn.error']['filters'] = ['cancelled']
    return config


# What uvicorn logs at each request or frame of a client that sends what it
# cannot take (or, under its own --limit-concurrency, one too many): any
# client can send as many as it likes.
CLIENT_NOISE = frozenset(
    {
        'Invalid HTTP request received.',
        'Invalid UTF-8 sequence received from client.',
        'Unsupported upgrade request.',
        'Exceeded concurrency limit.',
        # A long list cut because its client read nothing (http/disconnects.py).
        'ASGI callable returned without completing response.',
    }
)


class Throttle:
    """Let one kind of line through at most once an interval; count the rest."""

    def __init__(
        self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval = interval
        self._clock = clock
        self._next = -math.inf
        self._held = 0

    def take(self) -> str | None:
        """Return what to add to a line let through now; None: hold it back."""
        now = self._clock()
        if now < self._next:
            self._held += 1
            return None
        held, self._held = self._held, 0
        self._next = now + self._interval
        return f' ({held} more in the last {self._interval:g} s)' if held else ''


class Throttled:
    """A logger's warnings of one kind, at most one an interval.

    For what a client can make happen as often as it likes (a refused
    request): one line an interval says it, and how many more came.
    """

    def __init__(self, logger: logging.Logger, throttle: Throttle | None = None):
        self._logger = logger
        self._throttle = throttle or Throttle()

    def warning(self, message: str, *args: object) -> None:
        if (more := self._throttle.take()) is not None:
            self._logger.warning(message + more, *args)


# What uvicorn, and the websockets library through uvicorn's error logger,
# log at every WebSocket handshake and close, at INFO: a WebSocket's access
# log, which uvicorn's --no-access-log does not silence.
WEBSOCKET_ACCESS = frozenset(
    {
        '%s - "WebSocket %s" [accepted]',
        '%s - "WebSocket %s" 403',
        '%s - "WebSocket %s" %d',
        'connection open',
        'connection closed',
        'connection rejected (%d %s)',
        'HTTP response sent (%d %s)',
    }
)


class ClientNoise(logging.Filter):
    """Let each of uvicorn's CLIENT_NOISE lines through once an interval.

    Without its traceback: a client's bad frame is no fault of the server.
    The WEBSOCKET_ACCESS lines pass while uvicorn's access log (the logger
    access) is on, and none while it is off.
    """

    def __init__(
        self,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        access: logging.Logger | None = None,
    ) -> None:
        super().__init__()
        self._throttles = {line: Throttle(interval, clock) for line in CLIENT_NOISE}
        self._access = access or logging.getLogger('uvicorn.access')

    def filter(self, record: logging.LogRecord) -> bool:
        if not isinstance(record.msg, str):
            return True
        if record.msg in WEBSOCKET_ACCESS:
            # uvicorn turns its access log off by leaving its logger no
            # handler, and not propagating; asked at each line, since
            # logging can be configured again after the filter is added.
            return self._access.hasHandlers()
        throttle = self._throttles.get(record.msg)
        if throttle is None:
            return True
        more = throttle.take()
        if more is None:
            return False
        record.msg += more
        record.exc_info = record.exc_text = None
        return True


def quiet_client_noise(logger: logging.Logger | None = None) -> bool:
    """Add ClientNoise to uvicorn's error logger, unless it has one (False)."""
    logger = logger or logging.getLogger('uvicorn.error')
    if any(isinstance(each, ClientNoise) for each in logger.filters):
        return False
    logger.addFilter(ClientNoise())
    return True


class CancelledByTheStop(logging.Filter):
    """uvicorn's report of a task that its stop cancelled, as one warning.

    A forced stop (a second Ctrl-C), or one past the shutdown timeout,
    cancels the requests still in flight and the lifespan, and uvicorn
    reports each as an error of the application, with a traceback: it is
    none, and the traceback says nothing.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError):
            said = record.getMessage().strip()
            record.msg = f'{said}: cancelled, the server stopped without waiting'
            record.args = ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.WARNING, 'WARNING'
        return True
