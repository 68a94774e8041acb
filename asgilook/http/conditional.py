"""Conditional requests: 412 when a precondition fails, 304 when a copy is current."""

from __future__ import annotations

from typing import Literal

import falcon
import falcon.asgi

from ..errors import PreconditionFailedError

# The headers that make a GET or HEAD conditional (RFC 9110, section 13.1).
CONDITIONAL_HEADERS = (
    'If-Match',
    'If-Unmodified-Since',
    'If-None-Match',
    'If-Modified-Since',
)
# What describes the answer a 412 replaces, and must not describe the 412:
# a shared cache would keep an error marked public and immutable.
_REPRESENTATION_HEADERS = (
    'Cache-Control',
    'Content-Length',
    'Content-Type',
    'ETag',
    'Last-Modified',
    'Link',
)


class ConditionalRequests:
    """Answer a GET or HEAD with 412 or 304 when its preconditions say so.

    It runs after every other middleware has finished the response (a cached
    one included), so it judges exactly what would have been sent, in the
    order of RFC 9110, section 13.2.2: `If-Match`, or else
    `If-Unmodified-Since` (412 if it fails); then the `ETag` against
    `If-None-Match`, or else `Last-Modified` against `If-Modified-Since`
    (304 if the client's copy is current).
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
        if not preconditions_hold(req, resp.etag, resp.get_header('Last-Modified')):
            await _drop_body(resp)
            for name in _REPRESENTATION_HEADERS:
                resp.delete_header(name)
            raise PreconditionFailedError
        tags, since = map(req.get_header, ('If-None-Match', 'If-Modified-Since'))
        if (tags is None and since is None) or not _not_modified(req, resp, since):
            return

        await _drop_body(resp)
        # A 304 describes the client's copy only by its validators.
        resp.delete_header('Content-Length')
        resp.delete_header('Content-Type')
        resp.status = falcon.HTTP_NOT_MODIFIED


def preconditions_hold(
    req: falcon.asgi.Request, etag: str | None, last_modified: str | None
) -> bool:
    """Whether `If-Match`, or else `If-Unmodified-Since`, holds (or is absent).

    For a current representation of what the request targets: etag is its
    `ETag` as the header spells it (`"x"`), last_modified its `Last-Modified`
    (None: it has none).
    """
    tags = req.if_match
    if tags is not None:
        # `*`: any current representation, and there is one.
        return '*' in tags or _strong_match(tags, etag)
    since = req.get_header('If-Unmodified-Since')
    if since is None or last_modified is None:
        return True
    unmodified = _unmodified_since(last_modified, since)
    return True if unmodified is None else unmodified


def none_match_holds(req: falcon.asgi.Request, etag: str | None) -> bool:
    """Whether `If-None-Match` names no current representation (or is absent).

    For a request that changes what it targets, whose current representation
    has etag (None: it has none). A match fails such a request, where a GET
    or HEAD is told its copy is current (RFC 9110, section 13.1.2).
    """
    tags = req.if_none_match
    return tags is None or not _weak_match(tags, etag)


def _strong_match(tags: list[falcon.ETag | Literal['*']], etag: str | None) -> bool:
    """The strong comparison: a weak tag matches none (RFC 9110, section 8.8.3.2)."""
    if etag is None:
        return False
    current = falcon.ETag.loads(etag)
    return any(
        isinstance(tag, falcon.ETag) and tag.strong_compare(current) for tag in tags
    )


async def _drop_body(resp: falcon.asgi.Response) -> None:
    """Send no body of what was computed: a 412 or a 304 is sent in its place."""
    stream, resp.stream = resp.stream, None
    if stream is not None and hasattr(stream, 'close'):
        # Falcon closes a stream it sends; this one is not sent.
        await stream.close()
    resp.data = None
    resp.media = None
    resp.text = None
    # An event stream not begun: its generator never ran.
    resp.sse = None


def _not_modified(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, since: str | None
) -> bool:
    tags = req.if_none_match
    if tags is not None:
        return _weak_match(tags, resp.etag)

    last_modified = resp.get_header('Last-Modified')
    if last_modified is None or since is None:
        return False
    return bool(_unmodified_since(last_modified, since))


def _weak_match(tags: list[falcon.ETag | Literal['*']], etag: str | None) -> bool:
    """`*` for any current representation, or etag by weak comparison.

    W/"x" matches "x" (RFC 9110, section 8.8.3.2).
    """
    return etag is not None and any(
        tag == '*' or tag == etag.removeprefix('W/').strip('"') for tag in tags
    )


def _unmodified_since(last_modified: str, since: str) -> bool | None:
    """Whether what was last modified then is no newer than since.

    None if either date does not parse: it is ignored, as if not sent.
    """
    try:
        return falcon.http_date_to_dt(last_modified) <= falcon.http_date_to_dt(since)
    except ValueError:
        return None
