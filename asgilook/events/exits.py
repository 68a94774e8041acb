"""The server's exit, heard early: open streams end as soon as it is asked.

uvicorn runs the lifespan's shutdown only after every open connection has
finished; a stream that ends only then would keep it waiting (forever,
without --timeout-graceful-shutdown). So, while the app runs, a handler of
its own comes before the server's for SIGINT and SIGTERM: it closes the
feed (every stream ends at once) and calls the server's handler, which
goes on with its shutdown. The lifespan's shutdown closes the feed too, for
servers that run it first; and puts the server's handlers back.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

from .feed import Feed

SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[int, FrameType | None], object]


class ExitSignals:
    """Call `on_exit` on the event loop when the process is asked to stop."""

    def __init__(self, on_exit: Callable[[], None]) -> None:
        self._on_exit = on_exit
        self._installed: dict[int, tuple[Handler, Handler]] = {}

    def install(self) -> None:
        """Come before the handlers the server installed (on its event loop)."""
        if threading.current_thread() is not threading.main_thread():
            # Only the main thread may handle signals: a server in another
            # thread (a test's) stops the app through its lifespan.
            return
        loop = asyncio.get_running_loop()
        for number in SIGNALS:
            previous = signal.getsignal(number)
            if not callable(previous) or number in self._installed:
                # The default action ends the process anyway.
                continue

            def handler(
                signum: int, frame: FrameType | None, previous: Handler = previous
            ) -> None:
                if not loop.is_closed():
                    loop.call_soon_threadsafe(self._on_exit)
                previous(signum, frame)

            signal.signal(number, handler)
            self._installed[number] = (handler, previous)

    def uninstall(self) -> None:
        """Give the signals back to the server's handlers, unless replaced since."""
        for number, (handler, previous) in self._installed.items():
            if signal.getsignal(number) is handler:
                signal.signal(number, previous)
        self._installed.clear()


class FeedLifespan:
    """Falcon middleware: start the feed with the server; end its streams first."""

    def __init__(self, feed: Feed) -> None:
        self._feed = feed
        self._signals = ExitSignals(feed.close)

    async def process_startup(
        self, scope: Mapping[str, Any], event: Mapping[str, Any]
    ) -> None:
        self._feed.start()
        self._signals.install()

    async def process_shutdown(
        self, scope: Mapping[str, Any], event: Mapping[str, Any]
    ) -> None:
        self._signals.uninstall()
        self._feed.close()
