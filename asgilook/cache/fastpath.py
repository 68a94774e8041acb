"""FastPath: a plain ASGI wrapper that sends what memory keeps before Falcon routes."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from ..http.conditional import CONDITIONAL_HEADERS
from .keys import cache_key
from .memory import Kept
from .middleware import CACHED_METHODS, LOOKED_UP, RedisCache
from .tiers import Tiers, Token

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]
# Counts an answer: its route, method, status and seconds (metrics/).
Answered = Callable[[str, str, int, float], None]
# A kept answer's headers as sent to a request's Origin (http/cors.py).
CorsHeaders = Callable[[Headers, bytes | None], Headers]

# As ASGI spells header names: lower case bytes.
_CONDITIONAL = frozenset(name.lower().encode() for name in CONDITIONAL_HEADERS)


class FastPath:
    """Send a plain GET or HEAD that memory keeps an answer for, as a Hit.

    Routing, middleware and the request and response objects cost more than
    sending bytes that are already known; the answer is the one the cache's
    middleware would send (same status, headers and body), under the same
    conditions (`Tiers.servable`). A conditional request, and everything
    else, goes to the app; the scope it gets is the one the server gave.
    What it sends is counted (answered) and given the CORS headers of its
    request's origin (cors), as the app's middleware would.
    """

    def __init__(
        self,
        app: ASGIApp,
        cache: RedisCache,
        answered: Answered | None = None,
        cors: CorsHeaders | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self._tiers: Tiers = cache.tiers
        self._token: Token = cache.tiers.token
        self._varying = cache.varying
        self._answered = answered
        self._cors = cors
        self._clock = clock

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope['type'] == 'http' and scope['method'] in CACHED_METHODS:
            started = self._clock()
            headers = scope['headers']
            if type(headers) is not list:
                # ASGI allows one-shot iterables (falcon.testing sends them):
                # read them once, and give the app a scope of its own that it
                # can still read. Servers send lists.
                headers = [tuple(pair) for pair in headers]
                scope = {**scope, 'headers': headers}
            hit = self._kept(scope, headers)
            if hit is not None:
                sent = hit.asgi_headers
                if self._cors is not None:
                    sent = self._cors(sent, _origin(headers))
                # Sent here, not by a helper: one coroutine less a Hit.
                await send(
                    {'type': 'http.response.start', 'status': 200, 'headers': sent}
                )
                method = scope['method']
                body = b'' if method == 'HEAD' else hit.entry.body
                await send({'type': 'http.response.body', 'body': body})
                if self._answered is not None:
                    self._answered(hit.route, method, 200, self._clock() - started)
                return
        await self.app(scope, receive, send)

    def _kept(self, scope: Scope, headers: list[tuple[bytes, bytes]]) -> Kept | None:
        """Return what memory keeps for a plain request; None: the app answers."""
        accept = None
        # One pass, no generator: the hottest path.
        for name, value in headers:
            if name in _CONDITIONAL:
                # Judged by the middleware against the answer.
                return None
            if name == b'accept':
                # As Falcon reads a header sent more than once.
                accept = value if accept is None else accept + b',' + value
        key: str = scope['path']
        query: bytes = scope.get('query_string', b'')
        if query:
            if not query.isascii():
                # Kept answers have plain queries (pages); this is none.
                return None
            key = f'{key}?{query.decode()}'
        if accept is not None:
            # The representation the client asks for, decided as the
            # middleware decides it.
            key = cache_key(key, accept.decode('latin-1'), self._varying)
        token = self._token()
        hit = self._tiers.servable(key, token)
        if hit is None:
            # Not computed again by the middleware.
            scope[LOOKED_UP] = (key, token)
        return hit


def _origin(headers: Headers) -> bytes | None:
    """Return the Origin a request says it comes from (None: none)."""
    for name, value in headers:
        if name == b'origin':
            return value
    return None
