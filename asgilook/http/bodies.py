"""Request bodies as they arrive: cut bodies told apart, stalled ones timed out.

Falcon's request stream ends quietly when the client goes away (ASGI's
`http.disconnect`), so a body cut short reads like a whole one. `GuardedBody`
wraps the ASGI `receive` of a request that carries a body and raises instead:
the store then keeps nothing of an upload nobody will get a 201 for.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from ..errors import BodyTimeoutError, IncompleteBodyError

Receive = Callable[[], Awaitable[dict[str, Any]]]
# The scope's key of how many bytes a body had, once it all arrived.
RECEIVED = 'asgilook.received'


class GuardedBody:
    """The `receive` of one request, raising when its body does not come whole.

    Until the last body event has arrived, every wait is bounded by `timeout`
    seconds (BodyTimeoutError), a disconnect raises IncompleteBodyError, and
    so does a body that ends before the length its Content-Length promised.
    Afterwards it passes events through as they are.

    The first call (Falcon's, before it routes the request) is answered with
    an empty body event of its own; the body is first really asked for when
    the responder reads it. So whatever goes wrong with the body is raised
    where the responder's errors are handled, and a server sends
    `100 Continue` to a client that asked for it (`Expect: 100-continue`)
    only then: an upload refused from its headers alone (over the size
    limit) is refused before its body is sent.
    """

    def __init__(self, scope: dict[str, Any], receive: Receive, timeout: float) -> None:
        self._receive = receive
        self._scope = scope
        self._timeout = timeout
        self._complete = False
        self._received = 0
        self._promised: int | None = None
        self._deferred = True
        # ASGI allows one-shot iterables here, of one-shot pairs too (as
        # falcon.testing sends them); Falcon reads the list after us.
        scope['headers'] = headers = [tuple(pair) for pair in scope['headers']]
        for name, value in headers:
            if name == b'content-length' and value.isdigit():
                self._promised = int(value)

    async def __call__(self) -> dict[str, Any]:
        if self._deferred:
            self._deferred = False
            return {'type': 'http.request', 'body': b'', 'more_body': True}
        if self._complete:
            return await self._receive()
        try:
            async with asyncio.timeout(self._timeout):
                event = await self._receive()
        except TimeoutError as ex:
            self._complete = True
            raise BodyTimeoutError(self._timeout) from ex
        if event['type'] != 'http.request':
            self._complete = True
            raise IncompleteBodyError('the client went away')
        self._received += len(event.get('body', b''))
        if not event.get('more_body', False):
            self._complete = True
            self._scope[RECEIVED] = self._received
            if self._promised is not None and self._received < self._promised:
                raise IncompleteBodyError(
                    f'{self._received} of {self._promised} bytes arrived'
                )
        return event
