"""The gate: the checks a request passes before Falcon takes it, as an ASGI wrapper."""

from __future__ import annotations

import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

import falcon
from falcon.asgi_spec import WSCloseCode

from ..errors import ClientGoneError
from . import disconnects
from .admission import StreamBudget
from .bodies import GuardedBody

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Requests whose body asgilook reads.
_BODY_METHODS = frozenset({'POST', 'PUT', 'PATCH'})
# What Falcon answers; it raises at anything else (HTTP/0.9, say).
_HTTP_VERSIONS = frozenset({'1.0', '1.1', '2', '3'})


class Gate:
    """Refuse what Falcon cannot take; read bodies through `GuardedBody`.

    An HTTP version Falcon does not speak is a 505, a query string that is
    not UTF-8 (raw or percent-encoded) a 400, both answered as the app
    answers errors (JSON). A path Falcon's router reads as another
    (`//images`, `images`: it strips every slash before the first segment)
    is a 308 to that one, so that every later step (the cache's keys, the
    streams' budget) sees one spelling of each path. A request of an event
    stream goes through `streams` (its budget, http/admission.py) and gets a
    `Departure`, one of a `listened` path (the whole list, which may be
    long) a `Listener` (disconnects.py), which cuts a long answer its client
    reads nothing of for body_timeout. A WebSocket handshake to any path
    but a stream's is refused here, unlogged. `app` is the application at
    the centre (Falcon's), for code that wants its API.
    """

    def __init__(
        self,
        app: ASGIApp,
        body_timeout: float,
        streams: StreamBudget,
        listened: frozenset[str] = frozenset(),
    ) -> None:
        self._app = app
        self.app: Any = getattr(app, 'app', app)
        self._body_timeout = body_timeout
        self.streams = streams
        self._listened = listened

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope['type']
        if kind == 'http':
            if scope.get('http_version', '1.1') not in _HTTP_VERSIONS:
                await send_error(send, _VERSION_NOT_SUPPORTED)
                return
            if not _decodable(scope.get('query_string', b'')):
                await send_error(send, _QUERY_NOT_UTF8)
                return
            path = canonical(scope['path'])
            if path != scope['path']:
                await _redirect(send, path, scope.get('query_string', b''))
                return
            if scope['method'] in _BODY_METHODS:
                receive = GuardedBody(scope, receive, self._body_timeout)
        elif kind == 'websocket':
            await self._socket(scope, receive, send)
            return
        if kind == 'http' and self.streams.streams(scope):
            scope, receive = disconnects.watched(scope, receive)
            await self.streams.serve(self._app, scope, receive, send)
            return
        if kind == 'http' and scope['path'] in self._listened:
            await self._listening(scope, receive, send)
            return
        await self._app(scope, receive, send)

    async def _socket(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A handshake cannot be redirected: it is taken as its one path.
        scope = {**scope, 'path': canonical(scope['path'])}
        if scope['path'] in self.streams.paths:
            await self.streams.serve(self._app, scope, receive, send)
        else:
            await _no_socket_here(receive, send)

    async def _listening(self, scope: Scope, receive: Receive, send: Send) -> None:
        listener = scope[disconnects.LISTENER] = disconnects.Listener(receive)
        send = listener.stalling(send, self._body_timeout)
        try:
            await self._app(scope, receive, send)
        except ClientGoneError:
            # Left, or read nothing for body_timeout, while its answer was
            # sent: there is nobody to answer.
            pass
        finally:
            listener.stop()
            # The scope holds the listener, which holds the server's receive,
            # which holds the scope: a cycle only the garbage collector would
            # free, its pauses a list's 99th percentile (2 ms to 13 ms).
            del scope[disconnects.LISTENER]


def canonical(path: str) -> str:
    """Return the path as Falcon's router reads it: one slash before the rest."""
    return '/' + path.lstrip('/')


async def _no_socket_here(receive: Receive, send: Send) -> None:
    """Refuse a WebSocket handshake where asgilook takes none, unlogged.

    Falcon would refuse it too (3404, a 403 to the client), and log an ERROR
    each time: one client opening sockets in a loop would fill the log.
    """
    await receive()
    await send({'type': 'websocket.close', 'code': WSCloseCode.PATH_NOT_FOUND})


async def _redirect(send: Send, path: str, query: bytes) -> None:
    """Send a 308 to the one spelling of a path, with the query as it came."""
    location = urllib.parse.quote(path, safe=_PATH_SAFE)
    if query:
        location += '?' + urllib.parse.quote(query, safe=_QUERY_SAFE)
    headers = [(b'location', location.encode()), (b'content-length', b'0')]
    await send({'type': 'http.response.start', 'status': 308, 'headers': headers})
    await send({'type': 'http.response.body', 'body': b''})


# What a path and a query keep as they are in a Location (RFC 3986, 3.3, 3.4).
_PATH_SAFE = "/:@!$&'()*+,;=-._~"
_QUERY_SAFE = _PATH_SAFE + '?%'


_VERSION_NOT_SUPPORTED = falcon.HTTPVersionNotSupported(
    title='HTTP version not supported',
    description='asgilook speaks HTTP/1.0, HTTP/1.1 and later. Send the request '
    'again in one of them.',
)


_QUERY_NOT_UTF8 = falcon.HTTPBadRequest(
    title='Invalid query string',
    description='The query string, or what its percent-escapes stand for, is '
    'not UTF-8. Percent-encode the UTF-8 bytes of its text, as in ?limit=100.',
)


def _decodable(query: bytes) -> bool:
    """Whether Falcon can read a query string: UTF-8, and its escapes too.

    Falcon reads an escape that is no UTF-8 (`%ff`) as U+FFFD, which the
    resource would be left to refuse as another (unknown) parameter.
    """
    if not query.isascii() and not _utf8(query):
        return False
    return b'%' not in query or _utf8(urllib.parse.unquote_to_bytes(query))


def _utf8(data: bytes) -> bool:
    try:
        data.decode()
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
