"""CachedApp: the Falcon app, answering what memory keeps before routing."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from .bodies import GuardedBody
from .cache import RedisCache

# Requests whose body asgilook reads.
_BODY_METHODS = frozenset({'POST', 'PUT', 'PATCH'})
# What Falcon answers; it raises at anything else (HTTP/0.9, say).
_HTTP_VERSIONS = frozenset({'1.0', '1.1', '2', '3'})


class CachedApp(falcon.asgi.App):
    """A falcon.asgi.App that sends a Hit kept in memory without routing it.

    Routing, middleware and the request and response objects cost more than
    sending bytes that are already known; a plain GET or HEAD whose answer
    the cache keeps in this process is sent as the middleware would have
    sent it (same status, headers and body). Everything else is the app's;
    the body of a request that carries one is read through `GuardedBody`.
    """

    def __init__(self, cache: RedisCache, body_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cache = cache
        self._body_timeout = body_timeout

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope['type'] == 'http':
            if scope.get('http_version', '1.1') not in _HTTP_VERSIONS:
                await send_error(send, _VERSION_NOT_SUPPORTED)
                return
            if not _decodable(scope.get('query_string', b'')):
                await send_error(send, _QUERY_NOT_UTF8)
                return
            answer = self._cache.kept_answer(scope)
            if answer is not None:
                headers, body = answer
                await send(
                    {'type': 'http.response.start', 'status': 200, 'headers': headers}
                )
                if scope['method'] == 'HEAD':
                    body = b''
                await send({'type': 'http.response.body', 'body': body})
                return
            if scope['method'] in _BODY_METHODS:
                receive = GuardedBody(scope, receive, self._body_timeout)
        await super().__call__(scope, receive, send)


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


async def send_error(send: Any, error: falcon.HTTPError) -> None:
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
