"""The events over a WebSocket: the same events, one JSON text message each.

A client resumes with `?after=<id>` in the URL, or with `{"after": <id>}`
as its first message, sent before an event reaches it. It sends nothing
else: any other message closes its socket (and only its socket) with a
code that says why (see CLOSE_CODES). The server pings; it sends no
heartbeat of its own.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import falcon.asgi
from falcon.errors import PayloadTypeError, WebSocketDisconnected

from ..store import MAX_INTEGER
from .feed import Ending, Feed, Subscription, SubscriptionEnded
from .messages import Event

# The codes a socket is closed with, and why (RFC 6455, section 7.4.1).
# (When the server stops, a socket its own shutdown reaches first is closed
# by it with 1012, service restart.)
GOING_AWAY = 1001
UNSUPPORTED_DATA = 1003
POLICY_VIOLATION = 1008
TRY_AGAIN_LATER = 1013
# Falcon's code for a 400: 3000 + the HTTP status.
BAD_REQUEST = 3400
_ENDINGS = {
    Ending.GOING_AWAY: GOING_AWAY,
    Ending.TOO_SLOW: TRY_AGAIN_LATER,
    Ending.UNAVAILABLE: TRY_AGAIN_LATER,
    Ending.LEFT: 1000,
}
# A first message longer than this is no position.
_LONGEST_MESSAGE = 100


class _Refused(Exception):
    """The client sent what the socket does not take: close it so."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


async def refuse(ws: falcon.asgi.WebSocket, reason: str) -> None:
    """Close a socket whose URL asks for what /events does not take."""
    await ws.accept()
    await ws.close(BAD_REQUEST, reason)


async def serve(ws: falcon.asgi.WebSocket, feed: Feed, after: int | None) -> None:
    """Send the feed's events to a WebSocket until either side ends it."""
    await ws.accept()
    session = _Session(ws, feed, may_resume=after is None)
    tasks = [
        asyncio.create_task(session.listen()),
        asyncio.create_task(session.send_events(after)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
    for task in done:
        # Both may end in one step: each outcome is taken, the first acted on.
        task.exception()
    try:
        next(task for task in tasks if task in done).result()
    except _Refused as refused:
        await ws.close(refused.code, refused.reason)
    except SubscriptionEnded as ended:
        await ws.close(_ENDINGS[ended.ending], ended.ending.value)
    except WebSocketDisconnected:
        pass


class _Session:
    """One socket: what its client may still send, and the events it is sent."""

    def __init__(self, ws: falcon.asgi.WebSocket, feed: Feed, may_resume: bool):
        self._ws = ws
        self._feed = feed
        self._may_resume = may_resume
        # The id the client's first message resumes after.
        self._resume: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def listen(self) -> None:
        """Read the client's messages until it goes; _Refused at one it may not send."""
        while True:
            try:
                message = await self._ws.receive_text()
            except PayloadTypeError as ex:
                raise _Refused(UNSUPPORTED_DATA, 'send text messages only') from ex
            if not self._may_resume:
                raise _Refused(
                    POLICY_VIOLATION,
                    'only a first message {"after": <id>}, before any event, is read',
                )
            self._may_resume = False
            self._resume.set_result(_position(message))

    async def send_events(self, after: int | None) -> None:
        """Send the events after id `after` (None: from now, or the first message's)."""
        subscription = await self._feed.subscribe(after)
        if after is None:
            subscription = await self._started(subscription)
        while True:
            events = await subscription.next()
            # None: a heartbeat, which a WebSocket needs not (the server pings).
            if events is not None:
                await self._send(events)

    async def _started(self, subscription: Subscription) -> Subscription:
        """Send the first events, unless the client's first message comes before."""
        while True:
            taking = asyncio.create_task(subscription.next())
            either: list[asyncio.Future[Any]] = [taking, self._resume]
            try:
                await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            finally:
                # Also when the client went or was refused meanwhile: no
                # task is left waiting for an event nobody takes.
                taking.cancel()
            if self._resume.done():
                return await self._feed.subscribe(self._resume.result())
            events = taking.result()
            # A heartbeat sends nothing: the client may still resume.
            if events is not None:
                self._may_resume = False
                await self._send(events)
                return subscription

    async def _send(self, events: list[Event]) -> None:
        for event in events:
            await self._ws.send_text(event.text)


def _position(message: str) -> int:
    """Return the id a first message resumes after; _Refused if it is not one."""
    try:
        parsed: Any = json.loads(message) if len(message) <= _LONGEST_MESSAGE else None
    except ValueError:
        parsed = None
    after = parsed.get('after') if isinstance(parsed, dict) else None
    if (
        isinstance(parsed, dict)
        and set(parsed) == {'after'}
        and type(after) is int
        and 0 <= after <= MAX_INTEGER
    ):
        return after
    raise _Refused(
        POLICY_VIOLATION, 'the first message may be {"after": <id>} and nothing else'
    )
