"""A client that leaves a stream, told to the stream at once.

Falcon notices that a Server-Sent Events client went only when it next
sends it something (the next heartbeat, at the latest); until then the
stream's coroutine waits for events nobody reads. So the guards watch the
requests of the streaming paths for the server's `http.disconnect`, and
call what the stream registered with the request's `Departure` (found in
its scope under DEPARTURE).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

DEPARTURE = 'asgilook.departure'

Receive = Callable[[], Awaitable[dict[str, Any]]]


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
