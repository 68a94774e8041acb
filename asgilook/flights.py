"""Request coalescing: concurrent misses of one response wait for one computation."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any


@dataclasses.dataclass(eq=False)
class Flight:
    """One response being computed: what it is computed from, and its outcome."""

    key: str
    version: str
    outcome: asyncio.Future


class Flights:
    """The responses this process is computing now, by key.

    The first request to miss a key leads: it computes the response and lands
    its flight with the result. Requests that miss the same key at the same
    version meanwhile follow: they wait for the landing instead of computing
    the response again.
    """

    def __init__(self) -> None:
        self._open: dict[str, Flight] = {}

    def join(self, key: str, version: str) -> tuple[Flight, bool]:
        """Return the flight computing key at version, and whether the caller leads."""
        flight = self._open.get(key)
        if flight is not None and flight.version == version:
            return flight, False

        flight = Flight(key, version, asyncio.get_running_loop().create_future())
        self._open[key] = flight
        # However the leading request ends (an error, a cancelled task), its
        # followers are released when it does.
        leader = asyncio.current_task()
        leader.add_done_callback(lambda task: self.land(flight, None))
        return flight, True

    async def follow(self, flight: Flight, within: float) -> Any:
        """Wait up to `within` seconds for a flight's result; None if none came."""
        try:
            return await asyncio.wait_for(asyncio.shield(flight.outcome), within)
        except TimeoutError:
            return None

    def land(self, flight: Flight, result: Any) -> None:
        """End a flight with its result (None: followers compute their own)."""
        if not flight.outcome.done():
            flight.outcome.set_result(result)
        if self._open.get(flight.key) is flight:
            del self._open[flight.key]
