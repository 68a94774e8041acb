"""A client that leaves a stream, or a long answer, told to it at once.

Falcon notices that a Server-Sent Events client went only when it next
sends it something (the next heartbeat, at the latest); until then the
stream's coroutine waits for events nobody reads. So the guards watch the
requests of the streaming paths for the server's `http.disconnect`, and
call what the stream registered with the request's `Departure` (found in
its scope under DEPARTURE).

An answer sent as a stream of its own (the whole list of a large catalog)
is worse off: Falcon reads no more of the request, and uvicorn drops what
is sent to a client gone without a word, so the answer would be computed
to its end for nobody. The guards give the requests of such paths a
`Listener`, which the answer asks to listen once Falcon has read the
request: a task waits for the disconnect, until the request is answered.
A client that stays but reads nothing is as good as gone (`Listener.stalling`): it
held its snapshot of the catalog open, which keeps SQLite from moving its
WAL into the database, for as long as it liked.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import ClientGoneError

DEPARTURE = 'asgilook.departure'

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Departure:
    """What to call when the client of one request goes."""

    __slots__ = ('_callbacks', 'gone')

    def __init__(self) -> None:
        self._callbacks: list[Callable[[], None]] = []
        self.gone = False

    def on_leave(self, callback: Callable[[], None]) -> None:
        """Call callback when the client goes (now, if it went)."""
        if self.gone:
            callback()
        else:
            self._callbacks.append(callback)

    def leave(self) -> None:
        """The client went: call what was registered, once."""
        if not self.gone:
            self.gone = True
            for callback in self._callbacks:
                callback()


def watched(scope: dict[str, Any], receive: Receive) -> tuple[dict[str, Any], Receive]:
    """Return the scope with a Departure, and a receive that tells it."""
    departure = Departure()

    async def receive_watched() -> dict[str, Any]:
        message = await receive()
        if message['type'] == 'http.disconnect':
            departure.leave()
        return message

    return {**scope, DEPARTURE: departure}, receive_watched


# The scope's key of a request's Listener.
LISTENER = 'asgilook.listener'


class Listener:
    """Wait, once asked, for the client of a request with no body to leave."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._waiting: asyncio.Task[None] | None = None

    def listen(self) -> Departure:
        """Start waiting for the client to leave; the request's Departure.

        Asked once, when the app has read the request (it reads no more of it).
        """
        departure = Departure()
        self._waiting = asyncio.get_running_loop().create_task(self._wait(departure))
        return departure

    def stalling(self, send: Send, seconds: float) -> Send:
        """Return send, raising ClientGoneError when its client reads nothing.

        Once listened to (a long answer), a send that waits seconds is the
        end: the server's send waits while what it holds for the client is
        more than it buffers, as long as the client stays and reads nothing.
        A short answer is sent as it is.
        """

        async def send_bounded(message: dict[str, Any]) -> None:
            if self._waiting is None:
                await send(message)
                return
            try:
                async with asyncio.timeout(seconds):
                    await send(message)
            except TimeoutError:
                raise ClientGoneError from None

        return send_bounded

    def stop(self) -> None:
        """Wait no more: the request was answered."""
        if self._waiting is not None:
            self._waiting.cancel()

    async def _wait(self, departure: Departure) -> None:
        # The rest of the request's (empty) body, then its end: the
        # disconnect, as the ASGI specification has it, and nothing else.
        message = await self._receive()
        while message['type'] == 'http.request' and message.get('more_body'):
            message = await self._receive()
        if message['type'] == 'http.request':
            message = await self._receive()
        if message['type'] == 'http.disconnect':
            departure.leave()
