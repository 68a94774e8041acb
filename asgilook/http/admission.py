"""Event streams' own budget: a worker holds at most so many at once.

A stream (Server-Sent Events, or a WebSocket, at `/events`) stays open as
long as its client likes. Counted with the requests a worker answers at
once (`--limit-concurrency`), a thousand idle streams made every other
request a 503; so a stream leaves that count as it is admitted (the server
protocol, serving/protocol.py, puts the way to leave it in the scope under RELEASE),
and streams have a budget of their own: `max_streams` a worker
(ASGI_LOOK_EVENTS_MAX_STREAMS). One beyond it is refused with a 503 in JSON
(a WebSocket too, where the server can answer a handshake with a response;
else it is closed with 1013, try again later), and the API is answered
however many streams are open.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ..logs import Throttle, Throttled

logger = logging.getLogger('asgilook.admission')

# The scope's key of what gives back a request's place among those a worker
# answers at once (see serving/protocol.py).
RELEASE = 'asgilook.release'

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

TRY_AGAIN_LATER = 1013
_RETRY_AFTER = b'5'


class StreamBudget:
    """Admit at most `limit` event streams of this worker at once."""

    def __init__(
        self,
        paths: frozenset[str],
        limit: int,
        throttle: Throttle | None = None,
        counted: Callable[[int], object] | None = None,
    ) -> None:
        self.paths = paths
        self.limit = limit
        # Streams open now; told as they change (the metrics' gauge).
        self.open = 0
        self._counted = counted or _not_counted
        self._refusals = Throttled(logger, throttle)

    def streams(self, scope: Scope) -> bool:
        """Whether a request (of a canonical path) opens an event stream."""
        if scope['path'] not in self.paths:
            return False
        return scope['type'] == 'websocket' or scope['method'] in ('GET', 'HEAD')

    async def serve(
        self, app: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run a stream's request through app if the budget has room; else refuse it."""
        if self.open >= self.limit:
            self._refusals.warning(
                'refused an event stream: this worker holds %d, its most '
                '(ASGI_LOOK_EVENTS_MAX_STREAMS)',
                self.limit,
            )
            await _refuse(scope, receive, send, self.limit)
            return
        self.open += 1
        self._counted(1)
        release = scope.get(RELEASE)
        if release is not None:
            release()
        try:
            await app(scope, receive, send)
        finally:
            self.open -= 1
            self._counted(-1)


def _not_counted(change: int) -> None:
    """Tell nobody (no metrics)."""


def _error(limit: int) -> bytes:
    return json.dumps(
        {
            'title': 'Too many event streams',
            'description': f'This server holds as many event streams as it '
            f'takes ({limit} a worker). Connect again in a few seconds, '
            'resuming from the last event id you received.',
        }
    ).encode()


async def _refuse(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
    body = _error(limit)
    headers = [
        (b'content-type', b'application/json'),
        (b'content-length', str(len(body)).encode()),
        (b'retry-after', _RETRY_AFTER),
    ]
    if scope['type'] == 'http':
        await send({'type': 'http.response.start', 'status': 503, 'headers': headers})
        await send({'type': 'http.response.body', 'body': body})
        return
    await receive()  # websocket.connect
    if 'websocket.http.response' in (scope.get('extensions') or {}):
        start = {'status': 503, 'headers': headers}
        await send({'type': 'websocket.http.response.start', **start})
        await send({'type': 'websocket.http.response.body', 'body': body})
        return
    await send({'type': 'websocket.accept'})
    await send(
        {
            'type': 'websocket.close',
            'code': TRY_AGAIN_LATER,
            'reason': 'too many event streams: connect again in a few seconds',
        }
    )
