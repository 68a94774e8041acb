"""Entries in Redis: a lookup that takes the key's lock, the wait, the writes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable

import redis.exceptions

from ..auth.signing import ServiceKey
from ..config import Config
from ..errors import UnsignedEntryError
from . import entries
from .backend import (
    REDIS_ERRORS,
    RedisBackend,
    RedisLateError,
    RedisUnavailableError,
    logger,
)
from .entries import Entry

# The Redis key of a cache key's entry is this and the cache key.
PREFIX = 'asgilook:'
# What the Redis key of a cache key holds while a process holds its lock: this, then
# the process's own token (it is no entry: entries are msgpack arrays).
LOCK_PREFIX = b'asgilook-rendering:'

# What an answer is computed from now (None: nothing); see RedisTier.store.
VersionNow = Callable[[], Awaitable[str | None]]


class RedisTier:
    """The entries of one Redis, shared by every process; the render lock.

    A lookup that finds no entry takes the key's lock in the same atomic
    command; another process that finds the lock waits for the entry, for
    `lock_ttl` at most. Entries are signed for their key; only one this
    process could have computed (one of `content_types`) is served. A Redis key
    whose lookup was late is measured, and deleted if it holds more than
    any entry (it would make every lookup of its key late).
    """

    def __init__(
        self,
        config: Config,
        backend: RedisBackend,
        service_key: ServiceKey,
        content_types: frozenset[str],
    ) -> None:
        self._config = config
        self._timing = config.cache_timing
        self._backend = backend
        self._service_key = service_key
        self._content_types = content_types
        # What this process writes into the Redis keys of the answers it renders.
        self._lock = LOCK_PREFIX + uuid.uuid4().hex.encode()
        # Whether Redis takes SET with both NX and GET (7.0 and later).
        self._set_nx_get = True
        # Unsigned entries are logged once: whoever wrote them may write many.
        self._unsigned_seen = False
        self._largest = entries.largest_entry(config)
        # So are values too large to be entries.
        self._oversized_seen = False
        self._storing: set[asyncio.Task[None]] = set()
        # The keys being measured (see _drop_if_oversized).
        self._measuring: set[asyncio.Task[None]] = set()

    async def claim(self, key: str, version: str) -> tuple[Entry | None, bool]:
        """Return the entry of key at version, and whether this process locked it.

        RedisUnavailableError if Redis does not answer in time.
        """
        redis_key = PREFIX + key
        try:
            data = await self._backend.command(self._take_lock, redis_key)
            if self._locked_by_another(data):
                return await self._rendered_elsewhere(key, version), False
        except RedisLateError:
            # Late, perhaps, for what the Redis key holds: nothing else would
            # replace a value too large to be read in time.
            self._measure(redis_key)
            raise
        return self._valid(data, key, version), data is None

    async def any_version(self, key: str) -> Entry | None:
        """The entry stored for key, whatever it was computed from (see Tiers).

        RedisUnavailableError if Redis does not answer in time.
        """
        data = await self._backend.command(self._backend.lookups.get, PREFIX + key)
        return self._valid(data, key, None)

    async def release(self, key: str) -> None:
        """Take back this process's lock of key: it stores nothing there."""
        await self._backend.quietly(self._backend.lookups.delete, PREFIX + key)

    async def drop(self, keys: Iterable[str]) -> None:
        """Delete the entries of keys."""
        redis_keys = [PREFIX + key for key in keys]
        await self._backend.quietly(self._backend.lookups.delete, *redis_keys)

    async def store(self, key: str, entry: Entry, version_now: VersionNow) -> None:
        """Write an entry (it replaces the lock), waiting redis_timeout at most.

        Past the timeout the answer goes on, and the entry on its way, for up
        to `store_timeout`. Once written, the entry is kept only if what it
        was computed from still holds (version_now).
        """
        data = entries.pack(entry, key, self._service_key)
        task = asyncio.create_task(self._write(key, data, entry.version, version_now))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)
        await asyncio.wait({task}, timeout=self._config.redis_timeout)

    async def close(self) -> None:
        """Wait for the entries on their way (each within store_timeout).

        A Redis key being measured is left: the next late lookup measures it again.
        """
        for task in self._measuring:
            task.cancel()
        await asyncio.gather(*self._measuring, return_exceptions=True)
        await asyncio.gather(*self._storing)

    def _measure(self, redis_key: str) -> None:
        task = asyncio.create_task(self._drop_if_oversized(redis_key))
        self._measuring.add(task)
        task.add_done_callback(self._measuring.discard)

    async def _drop_if_oversized(self, redis_key: str) -> None:
        """Delete what redis_key holds if it is larger than any entry; log it once."""
        command, lookups = self._backend.command, self._backend.lookups
        try:
            size = await command(lookups.strlen, redis_key)
            if size <= self._largest:
                return
            await command(lookups.delete, redis_key)
        except RedisUnavailableError:
            # Measured again at its next late lookup.
            return
        if not self._oversized_seen:
            self._oversized_seen = True
            logger.warning(
                'Redis at %s held %d bytes under %r, more than any entry '
                'asgilook stores (%d at most) and too many to read within the '
                'timeout: every lookup of its path was late; they were deleted',
                self._config.redis_host,
                size,
                redis_key,
                self._largest,
            )

    async def _write(
        self, key: str, data: bytes, version: str, version_now: VersionNow
    ) -> None:
        redis_key = PREFIX + key
        writes = self._backend.writes
        try:
            await writes.set(redis_key, data, ex=self._timing.entry_ttl)
            # A change answered while this answer was computed (a DELETE of
            # its image) dropped the Redis key before it was written: what the
            # entry shows must not stay behind it.
            if await _still_shows(version_now, version):
                self._backend.answered()
                return
            await writes.delete(redis_key)
        except REDIS_ERRORS:
            # A write cut short (a large entry on a busy machine, a connection
            # lost mid-way, which the client then drops) says little of Redis;
            # a PING, held to the rule of lookups, says whether it answers.
            await self._backend.ping()

    async def _take_lock(self, redis_key: str) -> bytes | None:
        """Lock redis_key for this process if it holds nothing; return what it held.

        A Redis key that holds no string (a list, a hash: nothing asgilook wrote)
        is removed first, as an entry that cannot be decoded is replaced.
        """
        try:
            return await self._lock_key(redis_key)
        except redis.exceptions.ResponseError as ex:
            if not _wrong_type(ex):
                raise
        await self._backend.lookups.delete(redis_key)
        return await self._lock_key(redis_key)

    async def _lock_key(self, redis_key: str) -> bytes | None:
        """One atomic step, so nobody can store an entry and release their lock
        in between: `SET key lock NX PX ttl GET`, or on a Redis older than 7.0
        (which takes NX or GET, not both) a GET and a SET NX in one MULTI.
        """
        ttl = int(self._timing.lock_ttl * 1000)
        lookups = self._backend.lookups
        if self._set_nx_get:
            try:
                held: bytes | None = await lookups.set(
                    redis_key, self._lock, nx=True, px=ttl, get=True
                )
                return held
            except redis.exceptions.ResponseError as ex:
                # (Refused for another reason: its memory full, the key's kind.)
                if 'syntax error' not in str(ex):
                    raise
                self._set_nx_get = False
        pipe = lookups.pipeline(transaction=True)
        pipe.get(redis_key)
        pipe.set(redis_key, self._lock, nx=True, px=ttl)
        held, _ = await pipe.execute()
        return held

    async def _rendered_elsewhere(self, key: str, version: str) -> Entry | None:
        """Wait while another process renders key; return its entry."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._timing.lock_ttl
        while loop.time() < deadline:
            await asyncio.sleep(self._timing.poll_interval)
            data = await self._backend.command(self._backend.lookups.get, PREFIX + key)
            if not self._locked_by_another(data):
                return self._valid(data, key, version)
        return None

    def _valid(self, data: bytes | None, key: str, version: str | None) -> Entry | None:
        """Return the entry stored for key if it still shows what holds now.

        Of any version if version is None.
        """
        try:
            entry = entries.unpack(data, key, self._service_key)
        except UnsignedEntryError:
            if not self._unsigned_seen:
                self._unsigned_seen = True
                logger.warning(
                    "Redis at %s holds entries not signed with this service's "
                    'key (another ASGI_LOOK_SECRET, or forged); they are '
                    'treated as misses',
                    self._config.redis_host,
                )
            return None
        if (
            entry is None
            or (version is not None and entry.version != version)
            or not entry.sendable(self._content_types)
        ):
            return None
        return entry

    def _locked_by_another(self, data: bytes | None) -> bool:
        # A lock of this process is one its render could not release while
        # Redis was away: nobody is rendering the key.
        return data is not None and data.startswith(LOCK_PREFIX) and data != self._lock


def _wrong_type(ex: redis.exceptions.ResponseError) -> bool:
    """Whether Redis refused a command for the kind of value its key holds."""
    # (A MULTI's error names the command first.)
    return 'WRONGTYPE' in str(ex)


async def _still_shows(version_now: VersionNow, version: str) -> bool:
    try:
        return await version_now() == version
    except Exception:
        # The storage cannot say now (gone, unreadable): keep nothing it
        # might deny.
        return False
