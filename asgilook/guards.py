"""Guards: the checks a request passes before Falcon takes it, as an ASGI wrapper."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import falcon

from . import departures
from .bodies import GuardedBody

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Requests whose body asgilook reads.
_BODY_METHODS = frozenset({'POST', 'PUT', 'PATCH'})
# What Falcon answers; it raises at anything else (HTTP/0.9, say).
_HTTP_VERSIONS = frozenset({'1.0', '1.1', '2', '3'})


class Guards:
    """Refuse what Falcon cannot take; read bodies through `GuardedBody`.

    An HTTP version Falcon does not speak is a 505, a query string that is
    not UTF-8 a 400, both answered as the app answers errors (JSON). A
    request of one of the `streams` paths gets a `Departure` (departures.py).
    `app` is the application at the centre (Falcon's), for code that wants
    its API.
    """

    def __init__(
        self, app: ASGIApp, body_timeout: float, streams: frozenset[str] = frozenset()
    ) -> None:
        self._app = app
        self.app: Any = getattr(app, 'app', app)
        self._body_timeout = body_timeout
        self._streams = streams

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] == 'http':
            if scope.get('http_version', '1.1') not in _HTTP_VERSIONS:
                await send_error(send, _VERSION_NOT_SUPPORTED)
                return
            if not _decodable(scope.get('query_string', b'')):
                await send_error(send, _QUERY_NOT_UTF8)
                return
            if scope['method'] in _BODY_METHODS:
                receive = GuardedBody(scope, receive, self._body_timeout)
            elif scope['path'] in self._streams:
                scope, receive = departures.watched(scope, receive)
        await self._app(scope, receive, send)


_VERSION_NOT_SUPPORTED = falcon.HTTPVersionNotSupported(
    title='HTTP version not supported',
    description='asgilook speaks HTTP/1.0, HTTP/1.1 and later. Send the request '
    'again in one of them.',
)


_QUERY_NOT_UTF8 = falcon.HTTPBadRequest(
    title='Invalid query string',
    description='The query string is not UTF-8. Percent-encode its bytes, as '
    'in ?limit=100.',
)


def _decodable(query: bytes) -> bool:
    """Whether Falcon can read a query string (it takes UTF-8 only)."""
    if query.isascii():
        return True
    try:
        query.decode()
    except UnicodeDecodeError:
        return False
    return True


async def send_error(send: Send, error: falcon.HTTPError) -> None:
    """Send an error as the app would, for a request Falcon does not take."""
    body = error.to_json()
    headers = [
        (b'content-type', falcon.MEDIA_JSON.encode()),
        (b'content-length', str(len(body)).encode()),
    ]
    await send(
        {'type': 'http.response.start', 'status': error.status_code, 'headers': headers}
    )
    await send({'type': 'http.response.body', 'body': body})
