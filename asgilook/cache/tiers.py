"""The way of a GET through the tiers: kept in memory, a flight, an entry in Redis."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any

from ..auth.signing import ServiceKey
from ..config import Config
from .backend import RedisBackend
from .entries import Entry
from .flights import Flight, Flights
from .memory import Kept, MemoryTier, kept
from .redis_tier import RedisTier, VersionNow

# The catalog's change token now (None: it cannot say; nothing is kept).
Token = Callable[[], bytes | None]
# Counts a lookup of a tier ('memory', 'flight', 'redis'): whether it found.
LookedUp = Callable[[str, bool], Any]


@dataclasses.dataclass(slots=True)
class Lookup:
    """What a GET that memory could not answer learned on its way."""

    key: str
    token: bytes | None
    # Whether Redis may be asked (else the answer is a Bypass).
    reachable: bool
    version: str | None = None
    # What the answer is computed from now: asked again once it is stored.
    version_now: VersionNow | None = None
    flight: Flight[Kept] | None = None
    locked: bool = False
    # The route (URI template) asked for.
    route: str = ''


class Tiers:
    """Memory, flights and Redis, asked in that order; nothing of HTTP here.

    A kept answer is served from memory while the catalog's token is the one
    it was kept under, for `memory_ttl` at most, and while Redis answered
    within `liveness`. Otherwise the answer's version decides: memory again
    if its entry is of that version, else a flight of this process, else
    Redis (its entry, or its lock and a render here).
    """

    def __init__(
        self,
        config: Config,
        token: Token,
        service_key: ServiceKey,
        content_types: frozenset[str],
        looked_up: LookedUp | None = None,
    ) -> None:
        self._timing = config.cache_timing
        self._looked_up = looked_up or _not_counted
        self._clock = config.clock
        self.token = token
        self._content_types = content_types
        self.backend = RedisBackend(config)
        self._redis = RedisTier(config, self.backend, service_key, content_types)
        self._memory: MemoryTier[Kept] = MemoryTier(config.memory_cache_size)
        self._flights: Flights[Kept] = Flights()

    async def close(self) -> None:
        """Finish the writes on their way, and close the clients."""
        await self._redis.close()
        await self.backend.close()

    def servable(self, key: str, token: bytes | None) -> Kept | None:
        """Return what memory keeps for key if it may be sent as it is now."""
        now = self._clock()
        if not self.backend.alive(now):
            return None
        item = self._memory.get(key)
        if item is None or item.token != token or now >= item.fresh_until:
            # (Asked again, at its version, by lookup: counted there.)
            return None
        self._looked_up('memory', True)
        return item

    async def lookup(self, lookup: Lookup, version: str | None) -> Kept | None:
        """Return the Hit for the lookup at version; None: a Miss, to compute.

        RedisUnavailableError if Redis does not answer in time.
        """
        lookup.version = version
        if version is None:
            # Nothing stored is shown at this key: there is nothing to cache.
            return None
        key = lookup.key
        item = self._memory.get(key)
        alive = self.backend.alive(self._clock())
        found = item is not None and item.entry.version == version and alive
        self._looked_up('memory', found)
        if item is not None and found:
            # Still what the storage holds: no need to fetch it again.
            return self._keep(key, item.entry, lookup.token, item)
        # A HEAD takes part as a GET does: its responder may compute the
        # body too (then it is stored), or only the headers (then nothing is).
        flight, leading = self._flights.join(key, version)
        if not leading:
            followed = await self._flights.follow(flight, within=self._timing.lock_ttl)
            self._looked_up('flight', followed is not None)
            return followed
        lookup.flight = flight
        entry, lookup.locked = await self._redis.claim(key, version)
        self._looked_up('redis', entry is not None)
        if entry is None:
            return None
        hit = self._keep(key, entry, lookup.token, route=lookup.route)
        self._flights.land(flight, hit)
        return hit

    async def unchecked(self, lookup: Lookup) -> Kept | None:
        """What memory or Redis keeps for the lookup's key, of any version.

        For an answer that never changes under its URL, when the catalog
        cannot say what it is computed from (gone, for now). Not kept in
        memory again: no token vouches for it. RedisUnavailableError if
        Redis does not answer in time.
        """
        item = self._memory.get(lookup.key)
        if item is not None:
            return item
        # (Asked only of a lookup that may ask Redis: see RedisCache.)
        entry = await self._redis.any_version(lookup.key)
        return None if entry is None else kept(entry, None, self._clock())

    def land(self, lookup: Lookup, entry: Entry | None) -> Kept | None:
        """End the lookup's flight with the entry computed (None: none); its Hit."""
        hit = None
        if entry is not None and entry.sendable(self._content_types):
            fresh_until = self._clock() + self._timing.memory_ttl
            hit = kept(entry, lookup.token, fresh_until, lookup.route)
        if lookup.flight is not None:
            self._flights.land(lookup.flight, hit)
        return hit

    async def finish(self, lookup: Lookup, hit: Kept | None) -> None:
        """Keep and store what a Miss computed; or release the lock it took."""
        if not self.backend.available:
            return
        if hit is not None and lookup.version_now is not None:
            self._put(lookup.key, hit)
            await self._redis.store(lookup.key, hit.entry, lookup.version_now)
        elif lookup.locked:
            # Nothing to store: those waiting for this render compute their own.
            await self._redis.release(lookup.key)

    async def invalidate(self, keys: Iterable[str]) -> None:
        """Forget the answers at keys, in memory and in Redis."""
        if not self.backend.available:
            return
        keys = set(keys)
        for key in keys:
            self._memory.discard(key)
        await self._redis.drop(keys)

    def _keep(
        self,
        key: str,
        entry: Entry,
        token: bytes | None,
        was: Kept | None = None,
        route: str = '',
    ) -> Kept:
        fresh_until = self._clock() + self._timing.memory_ttl
        if was is None:
            hit = kept(entry, token, fresh_until, route)
        else:
            # Its headers are rendered already.
            hit = dataclasses.replace(was, token=token, fresh_until=fresh_until)
        self._put(key, hit)
        return hit

    def _put(self, key: str, hit: Kept) -> None:
        if hit.token is not None:
            self._memory.put(key, hit, len(hit.entry.body))


def _not_counted(tier: str, found: bool) -> None:
    """Count nothing (no metrics)."""
