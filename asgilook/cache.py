"""RedisCache: Falcon middleware keeping GET responses in Redis."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import falcon.asgi
import msgpack
import redis.asyncio.retry
import redis.backoff
import redis.exceptions

from .config import Config
from .flights import Flight, Flights
from .memory import MemoryTier

logger = logging.getLogger(__name__)

# What a lost, refused or timed-out Redis connection raises (TimeoutError,
# raised when a command outlives redis_timeout, is an OSError).
_REDIS_ERRORS = (redis.exceptions.RedisError, OSError)
_TIMEOUTS = (redis.exceptions.TimeoutError, TimeoutError)


# A request carrying one of these is answered through the middleware.
_CONDITIONAL_HEADERS = frozenset({b'if-none-match', b'if-modified-since'})


class _CacheUnavailable(Exception):
    """Redis did not answer a command in time; the request goes on without it."""


@dataclasses.dataclass(frozen=True)
class _Entry:
    """One cached response and the version of what it was computed from."""

    content_type: str
    body: bytes
    version: str
    headers: dict[str, str]


@dataclasses.dataclass(frozen=True)
class _Kept:
    """An entry in this process's memory, and until when it may be served."""

    entry: _Entry
    generation: bytes
    fresh_until: float
    # The ASGI headers of a Hit, ready for the fast path to send.
    asgi_headers: list[tuple[bytes, bytes]]


@dataclasses.dataclass
class _Lookup:
    """What a request that was not served from memory learned on its way."""

    generation: bytes | None
    version: str | None = None
    flight: Flight | None = None
    locked: bool = False


class RedisCache:
    """Serve repeated GETs from Redis; a POST, PUT or DELETE invalidates its path.

    A resource whose change shows at other paths too lists them in
    `resp.context.invalidate`. With a `validator` (an async callable returning
    what a path shows now, or None), an entry is served only while what it was
    computed from still holds: no process serves an answer that another
    process's change, or a change made while Redis was away, made stale.

    Redis only ever makes answers faster: every command is bounded by
    `Config.redis_timeout`, and while Redis is away responses say `Bypass` and
    are computed as if there were no cache. Concurrent misses of one path are
    computed once per process, and once across processes while Redis holds
    the lock of the path.
    """

    PREFIX = 'asgilook:'
    # What the key of a path holds while a process renders it: this, then
    # the process's token (it is no entry: entries are msgpack arrays).
    RENDERING = b'asgilook-rendering:'
    INVALIDATE_ON = frozenset({'DELETE', 'POST', 'PUT'})
    CACHED_METHODS = frozenset({'GET', 'HEAD'})
    CACHE_HEADER = 'X-ASGILook-Cache'
    # Headers a Hit repeats from the Miss that stored it (Content-Length is
    # the body's, Content-Type is kept on its own).
    STORED_HEADERS = ('ETag', 'Last-Modified', 'Cache-Control')
    TTL = 3600
    # How long a render may hold the key of its path; a process waiting for
    # another's render computes the response itself after this long.
    LOCK_TTL = 5.0
    # How often a waiting process looks for the entry another one renders.
    POLL_INTERVAL = 0.01
    # After a timed-out command, how long before Redis is asked again. A
    # refused connection costs nothing to retry, so the next request does.
    RETRY_INTERVAL = 1.0
    # An entry kept in this process's memory is served without asking Redis
    # or the storage directory while the generation token is the one it was
    # kept under (no process has changed the catalog since), for MEMORY_TTL
    # at most (a change made behind asgilook's back shows after that), and
    # while Redis has answered within LIVENESS (an outage shows as Bypass).
    MEMORY_TTL = 1.0
    LIVENESS = 0.5

    def __init__(
        self,
        config: Config,
        validator: Callable[[str], Awaitable[str | None]] | None = None,
        generation: Callable[[], bytes | None] | None = None,
    ) -> None:
        self._config = config
        self._validator = validator or _always_valid
        self._generation = generation or _no_generation
        self._memory = MemoryTier(config.memory_cache_size)
        self._alive_until = 0.0
        # Creating the client does no I/O; it connects on first use. Retries
        # are left to the next request: a cache does not make one wait.
        self._redis = config.redis_from_url(
            config.redis_host,
            socket_timeout=config.redis_timeout,
            socket_connect_timeout=config.redis_timeout,
            retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0),
        )
        self._flights = Flights()
        # What this process writes into the keys of the paths it renders.
        self._rendering = self.RENDERING + uuid.uuid4().hex.encode()
        # Whether Redis takes SET with both NX and GET (7.0 and later).
        self._set_nx_get = True
        # None until the first answer or failure, then whether Redis answers.
        self._available: bool | None = None
        self._retry_at = 0.0

    async def process_startup(
        self, scope: dict[str, Any], event: dict[str, Any]
    ) -> None:
        await self._ping()

    async def process_shutdown(
        self, scope: dict[str, Any], event: dict[str, Any]
    ) -> None:
        await self._redis.aclose()

    async def process_request(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        if req.method not in self.CACHED_METHODS:
            return
        # Read before anything is computed: what is kept under it is no older.
        generation = self._generation()

        kept = self._servable(req.path, generation)
        if kept is not None:
            resp.set_header(self.CACHE_HEADER, self._serve(resp, kept.entry))
            return

        resp.context.cache = lookup = _Lookup(generation)
        state = 'Bypass'
        if await self._reachable():
            with contextlib.suppress(_CacheUnavailable):
                state = await self._lookup(req, resp, lookup)
        resp.set_header(self.CACHE_HEADER, state)

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        if req.method in self.INVALIDATE_ON:
            if req_succeeded and self._available:
                await self._invalidate(req, resp)
            return
        lookup = getattr(resp.context, 'cache', None)
        if lookup is None:
            # Not a GET or HEAD, or served from memory: nothing to do.
            return

        entry = None
        try:
            if (
                resp.get_header(self.CACHE_HEADER) == 'Miss'
                and req.method == 'GET'
                and req_succeeded
                and resp.status_code == 200
                and lookup.version is not None
            ):
                entry = await _response_entry(resp, lookup.version)
        finally:
            if lookup.flight is not None:
                self._flights.land(lookup.flight, entry)
        if not self._available:
            return
        if entry is not None:
            self._keep(req.path, entry, lookup.generation)
            data = msgpack.packb(
                [entry.content_type, entry.body, entry.version, entry.headers],
                use_bin_type=True,
            )
            # The entry takes the place of this render's mark.
            await self._quietly(self._redis.set, self._key(req.path), data, ex=self.TTL)
        elif lookup.locked:
            # Nothing to store: those waiting for this render compute their own.
            await self._quietly(self._redis.delete, self._key(req.path))

    async def _invalidate(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        # The resource may name other paths its change shows through.
        paths = {req.path, *getattr(resp.context, 'invalidate', ())}
        for path in paths:
            self._memory.discard(path)
        await self._quietly(self._redis.delete, *map(self._key, paths))

    async def _lookup(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, lookup: _Lookup
    ) -> str:
        """Serve the response from Redis if it holds it; return Hit or Miss."""
        path = req.path
        lookup.version = version = await self._validator(path)
        if version is None:
            # Nothing stored is shown at this path: there is nothing to cache.
            return 'Miss'

        kept = self._memory.get(path)
        if (
            kept is not None
            and kept.entry.version == version
            and time.monotonic() < self._alive_until
        ):
            # Still what the storage holds: no need to fetch it again.
            self._keep(path, kept.entry, lookup.generation)
            return self._serve(resp, kept.entry)

        if req.method == 'GET':
            flight, leading = self._flights.join(path, version)
            if not leading:
                entry = await self._flights.follow(flight, within=self.LOCK_TTL)
                return 'Miss' if entry is None else self._serve(resp, entry)
            lookup.flight = flight
            data = await self._command(self._mark, self._key(path))
            lookup.locked = data is None
            entry = _valid(data, version)
            if self._rendered_by_another(data):
                entry = await self._rendered_elsewhere(path, version)
        else:
            # A HEAD serves what there is, and leaves rendering to GETs.
            entry = _valid(
                await self._command(self._redis.get, self._key(path)), version
            )

        if entry is None:
            return 'Miss'
        self._keep(path, entry, lookup.generation)
        if lookup.flight is not None:
            self._flights.land(lookup.flight, entry)
        return self._serve(resp, entry)

    async def _mark(self, key: str) -> bytes | None:
        """Mark key as rendered here if it holds nothing; return what it held.

        One atomic step, so nobody can store an entry and take their mark back
        in between: `SET key mark NX PX ttl GET`, or on a Redis older than 7.0
        (which takes NX or GET, not both) a GET and a SET NX in one MULTI.
        """
        ttl = int(self.LOCK_TTL * 1000)
        if self._set_nx_get:
            try:
                return await self._redis.set(
                    key, self._rendering, nx=True, px=ttl, get=True
                )
            except redis.exceptions.ResponseError:
                self._set_nx_get = False
        pipe = self._redis.pipeline(transaction=True)
        pipe.get(key)
        pipe.set(key, self._rendering, nx=True, px=ttl)
        data, _ = await pipe.execute()
        return data

    async def _rendered_elsewhere(self, path: str, version: str) -> _Entry | None:
        """Wait while another process renders path; return its entry."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.LOCK_TTL
        while loop.time() < deadline:
            await asyncio.sleep(self.POLL_INTERVAL)
            data = await self._command(self._redis.get, self._key(path))
            if not self._rendered_by_another(data):
                return _valid(data, version)
        return None

    def _rendered_by_another(self, data: bytes | None) -> bool:
        # A mark of this process is one its render could not take back while
        # Redis was away: nobody is rendering the path.
        return (
            data is not None
            and data.startswith(self.RENDERING)
            and data != self._rendering
        )

    def kept_answer(
        self, scope: dict[str, Any]
    ) -> tuple[list[tuple[bytes, bytes]], bytes] | None:
        """Return the headers and body of a Hit from memory for an ASGI request.

        Only a plain GET or HEAD qualifies (a conditional one is left to the
        middleware), under the same conditions as in process_request
        (`_servable`).
        """
        if scope['method'] not in self.CACHED_METHODS:
            return None
        kept = self._servable(scope['path'], self._generation())
        if kept is None:
            return None
        # ASGI allows one-shot iterables here; keep them readable for Falcon.
        scope['headers'] = headers = [tuple(pair) for pair in scope['headers']]
        for name, _ in headers:
            if name in _CONDITIONAL_HEADERS:
                return None
        return kept.asgi_headers, kept.entry.body

    def _servable(self, path: str, generation: bytes | None) -> _Kept | None:
        """Return what memory keeps for path if it may be served as it is now."""
        now = time.monotonic()
        if not self._available or now >= self._alive_until:
            return None
        kept = self._memory.get(path)
        if kept is None or kept.generation != generation or now >= kept.fresh_until:
            return None
        return kept

    def _keep(self, path: str, entry: _Entry, generation: bytes | None) -> None:
        if generation is None:
            return
        headers = [
            (b'content-type', entry.content_type.encode()),
            *(
                (name.lower().encode(), value.encode())
                for name, value in entry.headers.items()
            ),
            (b'content-length', str(len(entry.body)).encode()),
            (self.CACHE_HEADER.lower().encode(), b'Hit'),
        ]
        kept = _Kept(entry, generation, time.monotonic() + self.MEMORY_TTL, headers)
        self._memory.put(path, kept, len(entry.body))

    def _serve(self, resp: falcon.asgi.Response, entry: _Entry) -> str:
        resp.content_type = entry.content_type
        resp.data = entry.body
        for name, value in entry.headers.items():
            resp.set_header(name, value)
        resp.complete = True
        return 'Hit'

    async def _reachable(self) -> bool:
        if self._available:
            return True
        if time.monotonic() < self._retry_at:
            return False
        return await self._ping()

    async def _ping(self) -> bool:
        # One request at a time asks a Redis that went away.
        self._retry_at = time.monotonic() + self.RETRY_INTERVAL
        try:
            await self._command(self._redis.ping)
        except _CacheUnavailable:
            return False
        if self._available is False:
            logger.warning(
                'Redis at %s answers again; serving from the cache',
                self._config.redis_host,
            )
        self._available = True
        return True

    async def _command(self, command, *args, **kwargs):
        """Run one Redis command within redis_timeout; _CacheUnavailable if not."""
        try:
            async with asyncio.timeout(self._config.redis_timeout):
                result = await command(*args, **kwargs)
        except _REDIS_ERRORS as ex:
            self._lost(ex)
            raise _CacheUnavailable from ex
        self._alive_until = time.monotonic() + self.LIVENESS
        return result

    async def _quietly(self, command, *args, **kwargs) -> None:
        with contextlib.suppress(_CacheUnavailable):
            await self._command(command, *args, **kwargs)

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

    def _key(self, path: str) -> str:
        return self.PREFIX + path


async def _always_valid(path: str) -> str:
    return ''


def _no_generation() -> bytes:
    return b''


def _valid(data: bytes | None, version: str) -> _Entry | None:
    """Return the entry stored under a key if it still shows what holds now."""
    entry = _decode(data)
    return entry if entry is not None and entry.version == version else None


def _decode(data: bytes | None) -> _Entry | None:
    """Return the entry stored under a key, if it is one this version wrote."""
    if data is None:
        return None
    try:
        content_type, body, version, headers = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError):
        # Garbage or an older format: treat it as absent; it is overwritten.
        return None
    if (
        isinstance(content_type, str)
        and isinstance(body, bytes)
        and isinstance(version, str)
        and isinstance(headers, dict)
        and all(isinstance(item, str) for pair in headers.items() for item in pair)
    ):
        return _Entry(content_type, body, version, headers)
    return None


async def _response_entry(resp: falcon.asgi.Response, version: str) -> _Entry:
    """Return what a Hit will need to repeat a response."""
    headers = {
        name: value
        for name in RedisCache.STORED_HEADERS
        if (value := resp.get_header(name)) is not None
    }
    body = await _render_body(resp)
    # Without a type of its own, a response is sent as the default media type.
    content_type = resp.content_type or resp.options.default_media_type
    return _Entry(content_type, body, version, headers)


async def _render_body(resp: falcon.asgi.Response) -> bytes:
    """Return the body of a response, turning a stream into data first.

    A stream can be read only once: what is cached must also be what is sent.
    """
    stream = resp.stream
    if stream is None:
        return await resp.render_body() or b''

    resp.stream = None
    try:
        if hasattr(stream, 'read'):
            body = await stream.read()
        else:
            body = b''.join([chunk async for chunk in stream])
    finally:
        # Falcon awaits close() of a stream it sends; do what it would have done.
        if hasattr(stream, 'close'):
            await stream.close()
    resp.data = body
    return body
