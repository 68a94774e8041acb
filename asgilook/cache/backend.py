"""The Redis backend: its clients, commands bounded in time, and the outage breaker."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio.retry
import redis.backoff
import redis.exceptions

from .. import workers
from ..config import Config

# The cache's log lines are the package's, whichever module says them.
logger = logging.getLogger('asgilook.cache')

# What a lost, refused or timed-out Redis connection raises (TimeoutError,
# raised when a command outlives redis_timeout, is an OSError).
REDIS_ERRORS = (redis.exceptions.RedisError, OSError)
_TIMEOUTS = (redis.exceptions.TimeoutError, TimeoutError)


class RedisUnavailableError(Exception):
    """Redis did not answer a command in time; the request goes on without it."""


class RedisLateError(RedisUnavailableError):
    """Redis did not answer a command within redis_timeout."""


class RedisBackend:
    """Two Redis clients, every command bounded, and whether Redis answers.

    Lookups and the writes of entries have clients (and connections) of their
    own: a write cut short never holds up a lookup. Creating a client does no
    I/O; it connects on first use, and never retries: a cache does not make
    a request wait.

    The breaker: a refused or lost connection turns the cache off at once (the
    next request asks again: it costs nothing). A late answer of a Redis that
    was answering may be this process's fault (busy); a PING that nobody
    waits for decides. A Redis that hangs is asked again once a
    `retry_interval`, by one request.
    """

    def __init__(self, config: Config) -> None:
        self._config = config
        self._timing = config.cache_timing
        self._clock = config.clock
        self.lookups = self._client(config.redis_timeout)
        self.writes = self._client(
            max(config.redis_timeout, self._timing.store_timeout)
        )
        # None until the first answer or failure, then whether Redis answers.
        self._available: bool | None = None
        # Whether Redis has ever answered this process.
        self._answered = False
        self._retry_at = 0.0
        self._alive_until = 0.0
        # When each kind of refusal (an exception's name) may be logged again.
        self._refusals_logged: dict[str, float] = {}
        # The PING that decides whether a late answer was Redis's fault.
        self._suspicion: asyncio.Task[None] | None = None

    def _client(self, timeout: float) -> Any:
        return self._config.redis_from_url(
            self._config.redis_host,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0),
        )

    @property
    def available(self) -> bool:
        """Whether Redis answered the last time it was asked."""
        return bool(self._available)

    def alive(self, now: float) -> bool:
        """Whether Redis answered within `liveness` of now."""
        return now < self._alive_until and bool(self._available)

    def answered(self) -> None:
        """Note an answer Redis gave outside `command` (a write)."""
        self._alive_until = self._clock() + self._timing.liveness

    async def close(self) -> None:
        """Wait for a PING on its way, and close the clients."""
        if self._suspicion is not None:
            await self._suspicion
        await self.lookups.aclose()
        await self.writes.aclose()

    async def reachable(self) -> bool:
        """Whether a request may ask Redis now."""
        if self._suspicion is not None:
            # Redis was late; until a PING says why, nobody waits for it.
            return False
        if self._available:
            return True
        if self._clock() < self._retry_at:
            return False
        return await self.ping()

    async def ping(self) -> bool:
        """Ask Redis whether it answers (and say so when that changes)."""
        # One request at a time asks a Redis that went away.
        self._retry_at = self._clock() + self._timing.retry_interval
        try:
            await self.command(self.lookups.ping)
        except RedisUnavailableError:
            return False
        if self._available is False:
            logger.warning(
                'Redis at %s answers%s; serving from the cache',
                self._config.redis_host,
                ' again' if self._answered else '',
            )
        self._available = self._answered = True
        return True

    async def check_memory(self) -> None:
        """Warn if Redis keeps whatever it is given, or refuses writes when full.

        Its memory would grow with every image and thumbnail asked for. A
        Redis that does not say (INFO refused, as some hosted ones do) is
        taken at its word.
        """
        try:
            async with asyncio.timeout(self._config.redis_timeout):
                info = await self.lookups.info('memory')
        except REDIS_ERRORS:
            return
        limit, policy = info.get('maxmemory'), info.get('maxmemory_policy')
        if limit == 0:
            problem = 'has no memory limit (maxmemory): it will hold every answer'
        elif policy == 'noeviction':
            problem = 'refuses writes when its memory is full (noeviction)'
        else:
            return
        # One line for the server, however many workers find it so.
        workers.warn_once(
            logger,
            'redis-memory',
            'Redis at %s %s; start it with --maxmemory 256mb '
            '--maxmemory-policy allkeys-lru (or set them in redis.conf)',
            self._config.redis_host,
            problem,
        )

    async def command(
        self, command: Callable[..., Awaitable[Any]], *args: Any, **kwargs: Any
    ) -> Any:
        """Run one command within redis_timeout; RedisUnavailableError if not."""
        try:
            async with asyncio.timeout(self._config.redis_timeout):
                result = await command(*args, **kwargs)
        except redis.exceptions.ResponseError as ex:
            # Redis answered, refusing the command: it is there; this request
            # goes on without it (as any will until Redis takes them again).
            self.answered()
            self._refused(ex)
            raise RedisUnavailableError from ex
        except REDIS_ERRORS as ex:
            late = isinstance(ex, _TIMEOUTS)
            if self._available and late:
                self._suspect()
            else:
                self._lost(ex)
            raise (RedisLateError if late else RedisUnavailableError) from ex
        self._alive_until = self._clock() + self._timing.liveness
        return result

    async def quietly(self, command: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run one command within redis_timeout if Redis answers; never raise."""
        with contextlib.suppress(RedisUnavailableError):
            await self.command(command, *args)

    def _refused(self, ex: redis.exceptions.ResponseError) -> None:
        kind = type(ex).__name__
        now = self._clock()
        if now < self._refusals_logged.get(kind, -math.inf):
            return
        self._refusals_logged[kind] = now + self._timing.refusal_log_interval
        logger.warning(
            "Redis at %s refuses the cache's commands (%s: %s); answering "
            'without the cache until it takes them',
            self._config.redis_host,
            kind,
            ex,
        )

    def _suspect(self) -> None:
        # A command of a Redis that answered may be late because this process
        # was busy (a burst of large answers), not Redis. A PING decides;
        # nobody waits for it, so it is given retry_interval to answer.
        if self._suspicion is None:
            self._suspicion = asyncio.create_task(self._confirm())

    async def _confirm(self) -> None:
        budget = max(self._config.redis_timeout, self._timing.retry_interval)
        try:
            async with asyncio.timeout(budget):
                # The client that waits longer (also to connect) than lookups.
                await self.writes.ping()
        except REDIS_ERRORS as ex:
            self._lost(ex)
        else:
            self.answered()
        finally:
            self._suspicion = None

    def _lost(self, ex: Exception) -> None:
        if self._available is not False:
            reason = str(ex) or f'no answer within {self._config.redis_timeout} s'
            logger.warning(
                'Redis at %s cannot be reached (%s); serving without the cache',
                self._config.redis_host,
                reason,
            )
        self._available = False
        if not isinstance(ex, _TIMEOUTS):
            self._retry_at = 0.0
