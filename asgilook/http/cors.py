"""CORS: the other sites whose pages may call the API, with Falcon's own policy."""

from __future__ import annotations

import falcon
import falcon.asgi

# What a page of an allowed origin may read of an answer, beside the
# CORS-safelisted headers: where an upload went, the next page, the tag.
EXPOSED = ('Location', 'Link', 'ETag')


class Cors(falcon.CORSMiddleware[falcon.asgi.Request, falcon.asgi.Response]):
    """Falcon's CORS policy for ASGI_LOOK_CORS_ORIGINS, and `Vary: Origin`.

    A preflight (OPTIONS) of an allowed origin is answered with the methods
    of the route and the headers it asks for (Authorization, for a DELETE);
    every answer says `Vary: Origin`, so that no cache in between hands the
    headers of one origin's answer to another. Added before the cache's
    middleware, it runs after it: what the cache keeps is the same for
    every origin, and the headers of the asking one are added as it is sent
    (by the fast path too: `asgi_headers`).
    """

    def __init__(self, origins: frozenset[str]) -> None:
        super().__init__(allow_origins=origins, expose_headers=EXPOSED)
        self.origins = origins
        self._exposed = ', '.join(EXPOSED).encode()

    async def process_response_async(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        self.process_response(req, resp, resource, req_succeeded)
        # (No responder of asgilook varies by Origin itself.)
        vary = resp.get_header('Vary')
        resp.set_header('Vary', 'Origin' if vary is None else f'{vary}, Origin')

    def asgi_headers(
        self, headers: list[tuple[bytes, bytes]], origin: bytes | None
    ) -> list[tuple[bytes, bytes]]:
        """Return a kept answer's headers as this policy sends them to origin."""
        sent = []
        varied = False
        for name, value in headers:
            if name == b'vary':
                value += b', Origin'
                varied = True
            sent.append((name, value))
        if not varied:
            sent.append((b'vary', b'Origin'))
        if origin is not None and origin.decode('latin-1') in self.origins:
            sent.append((b'access-control-allow-origin', origin))
            sent.append((b'access-control-expose-headers', self._exposed))
        return sent
