"""RequestMetrics: the Falcon middleware that counts and times every answer."""

from __future__ import annotations

import falcon.asgi

from ..http.bodies import RECEIVED
from .registry import UNMATCHED, Metrics


class RequestMetrics:
    """Count each answer by route (its URI template, never the path) and time it.

    The time is to the answer's headers (a streamed body is sent after).
    An answer to a POST of `uploads` (the collection) counts as an upload,
    with the size of its body if it was stored. The fast path counts what
    it sends itself (cache/fastpath.py).
    """

    def __init__(self, metrics: Metrics, uploads: str) -> None:
        self._metrics = metrics
        self._clock = metrics.clock
        self._uploads = uploads

    async def process_request(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        req.context.started = self._clock()

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        route = req.uri_template or UNMATCHED
        status = resp.status_code
        seconds = self._clock() - req.context.started
        self._metrics.answered(route, req.method, status, seconds)
        if route == self._uploads and req.method == 'POST':
            size = None
            if status == 201:
                # As the gate counted it; else as the client said it.
                size = req.scope.get(RECEIVED, req.content_length)
            self._metrics.uploaded(status, size)
