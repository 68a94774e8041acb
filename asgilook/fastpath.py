"""CachedApp: the Falcon app, answering what memory keeps before routing."""

from __future__ import annotations

from typing import Any

import falcon.asgi

from .cache import RedisCache


class CachedApp(falcon.asgi.App):
    """A falcon.asgi.App that sends a Hit kept in memory without routing it.

    Routing, middleware and the request and response objects cost more than
    sending bytes that are already known; a plain GET or HEAD whose answer
    the cache keeps in this process is sent as the middleware would have
    sent it (same status, headers and body). Everything else is the app's.
    """

    def __init__(self, cache: RedisCache, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cache = cache

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope['type'] == 'http':
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
        await super().__call__(scope, receive, send)
