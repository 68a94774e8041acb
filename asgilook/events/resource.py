"""GET /events: the service's events, as Server-Sent Events or over a WebSocket."""

from __future__ import annotations

from collections.abc import AsyncIterator

import falcon
import falcon.asgi

from ..http import media, queries
from ..http.disconnects import DEPARTURE
from ..store import MAX_INTEGER
from . import origins, sockets
from .feed import Feed, Subscription, SubscriptionEnded


class Events:
    """Stream every upload and delete to whoever listens, from any worker."""

    def __init__(self, feed: Feed, other_origins: frozenset[str] = frozenset()) -> None:
        self._feed = feed
        # The origins of other sites whose pages may open a WebSocket: those
        # of ASGI_LOOK_CORS_ORIGINS.
        self._other_origins = other_origins

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        subscription = await self._feed.subscribe(_resume_after(req))
        departure = req.scope.get(DEPARTURE)
        if departure is not None:
            departure.on_leave(subscription.end)
        resp.sse = self._stream(subscription)
        _stream_headers(resp)

    async def on_head(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        """Answer as GET would begin to, with no stream: nothing is subscribed."""
        _resume_after(req)
        resp.content_type = 'text/event-stream'
        resp.stream = media.no_body()
        _stream_headers(resp)

    async def on_websocket(
        self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket
    ) -> None:
        if not origins.allowed(req, self._other_origins):
            # Before it is accepted: a page of another site reads nothing.
            await ws.close(origins.FORBIDDEN)
            return
        try:
            after = _event_id(after_param(req), 'after')
        except falcon.HTTPBadRequest as ex:
            # Accepted first: a server turns a refused handshake into a bare
            # 403, with no word of what was wrong.
            await sockets.refuse(ws, ex.title or 'Bad request')
            return
        await sockets.serve(ws, self._feed, after)

    async def _stream(
        self, subscription: Subscription
    ) -> AsyncIterator[falcon.asgi.SSEvent]:
        settings = self._feed.settings
        # The id tells an EventSource where to resume should this stream
        # break before its first event.
        yield falcon.asgi.SSEvent(
            event_id=str(subscription.cursor),
            retry=settings.retry_ms,
            comment='asgilook events',
        )
        try:
            while True:
                events = await subscription.next()
                if events is None:
                    yield _HEARTBEAT
                    continue
                for event in events:
                    yield event.sse
        except SubscriptionEnded as ended:
            # The client reconnects, sending the id of the last event it took.
            yield falcon.asgi.SSEvent(comment=f'end: {ended.ending.value}')


_HEARTBEAT = falcon.asgi.SSEvent(comment='heartbeat')


def _resume_after(req: falcon.asgi.Request) -> int | None:
    """Return the id a stream resumes after; HTTPBadRequest for a bad one."""
    # An EventSource that reconnects sends the id of the last event it
    # took, and the URL it was first given: the header is the newer.
    # Both are read: a bad one is refused even where the other is good.
    header = _event_id(req.get_header('Last-Event-ID'), 'Last-Event-ID')
    param = _event_id(after_param(req), 'after')
    return param if header is None else header


def _stream_headers(resp: falcon.asgi.Response) -> None:
    resp.cache_control = ['no-store']
    # Sent as it comes through a proxy that would buffer it (nginx).
    resp.set_header('X-Accel-Buffering', 'no')


def after_param(req: falcon.asgi.Request) -> str | None:
    """Return the query's `after`; HTTPBadRequest for any other parameter."""
    given = queries.parameters(
        req.query_string,
        frozenset({'after'}),
        lambda name: (
            f'/events takes after, not {name}: /events?after=<id> '
            'resumes after the event of that id.'
        ),
        'Give after once, as in /events?after=1234.',
    )
    return given.get('after')


def _event_id(text: str | None, name: str) -> int | None:
    """Return the id a client resumes after; None if it gave none."""
    if text is None or not text.strip():
        return None
    event_id = queries.whole_number(text, 19)
    if event_id is not None and event_id <= MAX_INTEGER:
        return event_id
    raise falcon.HTTPBadRequest(
        title='Invalid event id',
        description=f'{name} must be the id of an event (a whole number, as in '
        '/events?after=1234), to resume after it. Leave it out to start from now.',
    )
