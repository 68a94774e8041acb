"""Flights: concurrent misses of one answer in a process wait for one computation."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Generic, TypeVar

T = TypeVar('T')


@dataclasses.dataclass(eq=False)
class Flight(Generic[T]):
    """One answer being computed: what it is computed from, and its outcome."""

    key: str
    version: str
    outcome: asyncio.Future[T | None]


class Flights(Generic[T]):
    """The answers this process is computing now, by key.

    The first request to miss a key leads: it computes the answer and lands
    its flight with the result. Requests that miss the same key at the same
    version meanwhile follow: they wait for the landing instead of computing
    the answer again.
    """

    def __init__(self) -> None:
        self._open: dict[str, Flight[T]] = {}

    def join(self, key: str, version: str) -> tuple[Flight[T], bool]:
        """Return the flight computing key at version, and whether the caller leads."""
        flight = self._open.get(key)
        if flight is not None and flight.version == version:
            return flight, False

        flight = Flight(key, version, asyncio.get_running_loop().create_future())
        self._open[key] = flight
        # However the leading request ends (an error, a cancelled task), its
        # followers are released when it does.
        leader = asyncio.current_task()
        # A request is a task: flights are joined by requests only.
        assert leader is not None
        leader.add_done_callback(lambda task: self.land(flight, None))
        return flight, True

    async def follow(self, flight: Flight[T], within: float) -> T | None:
        """Wait up to `within` seconds for a flight's result; None if none came."""
        try:
            return await asyncio.wait_for(asyncio.shield(flight.outcome), within)
        except TimeoutError:
            return None

    def land(self, flight: Flight[T], result: T | None) -> None:
        """End a flight with its result (None: followers compute their own)."""
        if not flight.outcome.done():
            flight.outcome.set_result(result)
        if self._open.get(flight.key) is flight:
            del self._open[flight.key]
