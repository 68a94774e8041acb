"""uvicorn's httptools protocol, with limits on a request head and on requests.

uvicorn with httptools takes a request head of any size (a 50 MiB header
grew a worker by ~150 MB) and waits for its end forever: a client that
connects and sends nothing, or half a head, holds a connection for good.
`LimitedHttpToolsProtocol` refuses a head over `max_header_size` bytes with
431 and one that has not arrived within `header_timeout` seconds of the
connection (or of its first byte, on a kept-alive connection) with 408,
and closes the connection. Both are read from the uvicorn `Config`
(`ServerConfig` carries them to every worker), with safe defaults for a
plain one: `uvicorn --http asgilook.serving.protocol:LimitedHttpToolsProtocol`.

A request that becomes an event stream gets a send buffer of
STREAM_SEND_BUFFER bytes from the kernel: left to grow, it held up to 4 MiB
of events for each client that reads nothing, of the memory all the
machine's TCP connections share (a few hundred such streams, resuming
from an old id, passed the kernel's limit).

It also counts the requests a worker answers at once (`--limit-concurrency`)
its own way: uvicorn counts every connection, so that idle keep-alive
connections and open event streams took the places of requests. Here a
request holds a place while the app answers it, unless it becomes an event
stream (which has a budget of its own: http/admission.py gives its place back
through the scope's RELEASE); one beyond the limit is a 503 in JSON, and
the refusals are logged once a minute.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import (
    STATUS_LINE,
    HttpToolsProtocol,
    RequestResponseCycle,
)
from uvicorn.server import ServerState

from ..http.admission import RELEASE
from ..logs import Throttled

logger = logging.getLogger('asgilook.server')

DEFAULT_MAX_HEADER_SIZE = 32 * 1024
DEFAULT_HEADER_TIMEOUT = 10.0
# What the kernel holds, at most, for an event stream's client (Linux
# doubles it, for its own bookkeeping): a few hundred events.
STREAM_SEND_BUFFER = 64 * 1024


class ServerConfig(uvicorn.Config):
    """A uvicorn Config that also carries the limits of a request head."""

    def __init__(
        self,
        app: Any,
        *,
        max_header_size: int = DEFAULT_MAX_HEADER_SIZE,
        header_timeout: float = DEFAULT_HEADER_TIMEOUT,
        **kwargs: Any,
    ) -> None:
        super().__init__(app, **kwargs)
        self.max_header_size = max_header_size
        self.header_timeout = header_timeout


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """HttpToolsProtocol that bounds the size and the time of each request head."""

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._max_head = getattr(config, 'max_header_size', DEFAULT_MAX_HEADER_SIZE)
        self._head_timeout = getattr(config, 'header_timeout', DEFAULT_HEADER_TIMEOUT)
        # Bytes of the head due, received so far, and the last bytes received
        # (its end, CR LF CR LF, may straddle two reads).
        self._head_size = 0
        self._head_tail = b''
        self._head_due = True
        self._head_timer: asyncio.TimerHandle | None = None
        # Counted here, not by uvicorn (see the module's docstring).
        self._requests = _requests(self.server_state, self.limit_concurrency)
        self.limit_concurrency = None

    # uvicorn's protocol narrows asyncio's BaseTransport to Transport, which
    # typeshed calls an incompatible override; this one keeps uvicorn's type.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # Counted before the parser sees them: a whole head in one read is
        # parsed, and handed to the app, within this call.
        if self._head_due and self._count_head(data) > self._max_head:
            self._refuse(
                431,
                'Request header fields too large',
                f'The request line and headers take more than {self._max_head} '
                'bytes. Send fewer or shorter headers.',
            )
            return
        super().data_received(data)

    def _count_head(self, data: bytes) -> int:
        """Add the bytes of data up to the head's end; return the head's size."""
        seen = self._head_tail + data
        end = seen.find(b'\r\n\r\n')
        if end < 0:
            self._head_size += len(data)
            self._head_tail = seen[-3:]
        else:
            self._head_size += end + 4 - len(self._head_tail)
            self._head_tail = b''
        return self._head_size

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to what httptools cannot parse, as JSON like
        # every other error of asgilook's; also when it is the body of the
        # request in flight (a bad chunk), which nothing has answered yet.
        cycle = self.cycle
        self._refuse(
            400,
            'Bad request',
            'The request is not well-formed HTTP (an unknown method, a bad '
            'Content-Length or chunk, bare line feeds, bytes that are not '
            'ASCII in the path). Send a well-formed request.',
            in_flight=cycle is not None
            and cycle.more_body
            and not cycle.response_started,
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        # The first byte of a request on a kept-alive connection.
        if self._head_timer is None:
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._head_due, self._head_size, self._head_tail = False, 0, b''
        self._disarm_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_due = True

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        scope = cast(dict[str, Any], cycle.scope)
        answer = self._requests.admit(scope, app, self.transport)
        super()._start_asgi_task(cycle, answer)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(
            self._head_timeout, self._head_timed_out
        )

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        self._refuse(
            408,
            'Request timeout',
            f'The request line and headers did not arrive within '
            f'{self._head_timeout:g} s. Send the whole request head at once.',
        )

    def _refuse(
        self, status: int, title: str, description: str, in_flight: bool = False
    ) -> None:
        # An answer only where none is being sent: never inside another, but
        # in place of the one to a request in flight that is refused itself.
        answerable = not self.transport.is_closing() and (
            self.cycle is None or self.cycle.response_complete or in_flight
        )
        if in_flight and self.cycle is not None:
            # Whatever the app sends for it now goes nowhere.
            self.cycle.disconnected = True
        if answerable:
            body = json.dumps({'title': title, 'description': description}).encode()
            self.transport.write(
                b''.join(
                    [
                        STATUS_LINE[status],
                        b'content-type: application/json\r\n',
                        b'content-length: %d\r\n' % len(body),
                        b'connection: close\r\n\r\n',
                        body,
                    ]
                )
            )
        self.transport.close()


ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]


class _Requests:
    """The requests one server's worker answers now, and the most it takes."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.in_flight = 0
        self._refusals = Throttled(logger)

    def admit(
        self, scope: dict[str, Any], app: ASGIApp, transport: asyncio.Transport
    ) -> ASGIApp:
        """Return what answers a request: app, counted, or a 503 past the limit.

        A request that becomes an event stream (it calls the scope's RELEASE)
        gives back its place and gets a send buffer of STREAM_SEND_BUFFER.
        """
        if self.limit is not None and self.in_flight >= self.limit:
            self._refusals.warning(
                'refused a request: this worker answers %d at once, its most '
                '(--limit-concurrency)',
                self.limit,
            )
            return _busy
        self.in_flight += 1
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.in_flight -= 1

        def streaming() -> None:
            release()
            _bound_send_buffer(transport)

        scope[RELEASE] = streaming

        async def counted(scope: Any, receive: Any, send: Any) -> None:
            try:
                await app(scope, receive, send)
            finally:
                release()

        return counted


# Each server's count, shared by its connections (a worker runs one server).
_COUNTS: weakref.WeakKeyDictionary[ServerState, _Requests] = weakref.WeakKeyDictionary()


def _requests(state: ServerState, limit: int | None) -> _Requests:
    counts = _COUNTS.get(state)
    if counts is None:
        counts = _COUNTS[state] = _Requests(limit)
    return counts


_BUSY = json.dumps(
    {
        'title': 'Service busy',
        'description': 'The server answers as many requests as it takes at once. '
        'Send the request again in a moment.',
    }
).encode()


async def _busy(scope: Any, receive: Any, send: Any) -> None:
    headers = [
        (b'content-type', b'application/json'),
        (b'content-length', str(len(_BUSY)).encode()),
        (b'retry-after', b'1'),
        (b'connection', b'close'),
    ]
    await send({'type': 'http.response.start', 'status': 503, 'headers': headers})
    await send({'type': 'http.response.body', 'body': _BUSY})


def _bound_send_buffer(transport: asyncio.Transport) -> None:
    """Give an event stream's socket a send buffer of STREAM_SEND_BUFFER."""
    connection = transport.get_extra_info('socket')
    # A socket gone already has no buffer to bound.
    with contextlib.suppress(OSError):
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, STREAM_SEND_BUFFER)
