"""Conditional requests: 304 Not Modified when the client's copy is current."""

from __future__ import annotations

import falcon
import falcon.asgi

# The headers that make a GET or HEAD conditional (RFC 9110, section 13.1).
CONDITIONAL_HEADERS = ('If-None-Match', 'If-Modified-Since')


class ConditionalRequests:
    """Answer a GET or HEAD with 304 when its validators match the response.

    It runs after every other middleware has finished the response (a cached
    one included), so it judges exactly what would have been sent: the
    `ETag` against `If-None-Match`, or else `Last-Modified` against
    `If-Modified-Since` (RFC 9110, section 13.2.2).
    """

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        if req.method not in ('GET', 'HEAD') or resp.status_code != 200:
            return
        tags, since = map(req.get_header, CONDITIONAL_HEADERS)
        if (tags is None and since is None) or not _not_modified(req, resp, since):
            return

        stream, resp.stream = resp.stream, None
        if stream is not None and hasattr(stream, 'close'):
            # Falcon closes a stream it sends; this one is not sent.
            await stream.close()
        resp.data = None
        resp.media = None
        resp.text = None
        # A 304 describes the client's copy only by its validators.
        resp.delete_header('Content-Length')
        resp.delete_header('Content-Type')
        resp.status = falcon.HTTP_NOT_MODIFIED


def _not_modified(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, since: str | None
) -> bool:
    etag = resp.etag
    tags = req.if_none_match
    if tags is not None:
        # The weak comparison: W/"x" matches "x" (RFC 9110, section 8.8.3.2).
        return etag is not None and any(
            tag == '*' or tag == etag.removeprefix('W/').strip('"') for tag in tags
        )

    last_modified = resp.get_header('Last-Modified')
    if last_modified is None or since is None:
        return False
    try:
        return falcon.http_date_to_dt(last_modified) <= falcon.http_date_to_dt(since)
    except ValueError:
        # A date that does not parse is ignored, as if it had not been sent.
        return False
