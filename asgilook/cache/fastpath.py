"""FastPath: a plain ASGI wrapper that sends what memory keeps before Falcon routes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from ..conditional import CONDITIONAL_HEADERS
from .memory import Kept
from .middleware import CACHED_METHODS, RedisCache
from .tiers import Tiers, Token

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# As ASGI spells header names: lower case bytes.
_CONDITIONAL = frozenset(name.lower().encode() for name in CONDITIONAL_HEADERS)


class FastPath:
    """Send a plain GET or HEAD that memory keeps an answer for, as a Hit.

    Routing, middleware and the request and response objects cost more than
    sending bytes that are already known; the answer is the one the cache's
    middleware would send (same status, headers and body), under the same
    conditions (`Tiers.servable`). A conditional request, and everything
    else, goes to the app; the scope it gets is the one the server gave.
    """

    def __init__(self, app: ASGIApp, cache: RedisCache) -> None:
        self.app = app
        self._tiers: Tiers = cache.tiers
        self._token: Token = cache.tiers.token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] == 'http' and scope['method'] in CACHED_METHODS:
            hit = self._kept(scope)
            if hit is not None:
                headers = scope['headers']
                if type(headers) is not list:
                    # ASGI allows one-shot iterables (falcon.testing sends
                    # them): read them once, and give the app a scope of its
                    # own that it can still read. Servers send lists.
                    headers = [tuple(pair) for pair in headers]
                    scope = {**scope, 'headers': headers}
                if not _conditional(headers):
                    # Sent here, not by a helper: one coroutine less a Hit.
                    await send(
                        {
                            'type': 'http.response.start',
                            'status': 200,
                            'headers': hit.asgi_headers,
                        }
                    )
                    body = b'' if scope['method'] == 'HEAD' else hit.entry.body
                    await send({'type': 'http.response.body', 'body': body})
                    return
        await self.app(scope, receive, send)

    def _kept(self, scope: Scope) -> Kept | None:
        path: str = scope['path']
        query: bytes = scope.get('query_string', b'')
        if query:
            if not query.isascii():
                # Kept answers have plain queries (pages); this is none.
                return None
            path = f'{path}?{query.decode()}'
        return self._tiers.servable(path, self._token())


def _conditional(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request carries a conditional header (left to the middleware)."""
    # A loop, not any(): no generator made on the hottest path.
    for name, _ in headers:  # noqa: SIM110
        if name in _CONDITIONAL:
            return True
    return False
