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
import redis.asyncio.retry
import redis.backoff
import redis.exceptions

from . import entries
from .config import Config
from .entries import Entry
from .flights import Flight, Flights
from .memory import MemoryTier
from .signing import ServiceKey

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
class _Kept:
    """An entry in this process's memory, and until when it may be served."""

    entry: Entry
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

    Entries are signed with the service key for the path they answer, and
    only an entry asgilook could have computed itself (one of
    `content_types`, the stored headers in printable ASCII) is stored or
    sent: whoever can write to Redis cannot make asgilook send anything else.
    """

    PREFIX = 'asgilook:'
    # What the key of a path holds while a process renders it: this, then
    # the process's token (it is no entry: entries are msgpack arrays).
    RENDERING = b'asgilook-rendering:'
    INVALIDATE_ON = frozenset({'DELETE', 'POST', 'PUT'})
    CACHED_METHODS = frozenset({'GET', 'HEAD'})
    CACHE_HEADER = 'X-ASGILook-Cache'
    # Headers a Hit repeats from the Miss that stored it.
    STORED_HEADERS = entries.STORED_HEADERS
    # The types of the responses asgilook computes: no other is stored or sent.
    CONTENT_TYPES = frozenset({'image/jpeg', 'application/json', 'application/msgpack'})
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
    # How long an entry may take to be written once its response is computed
    # (several megabytes on a busy machine). The response waits for it no
    # longer than redis_timeout; the write goes on without it.
    STORE_TIMEOUT = 2.0

    def __init__(
        self,
        config: Config,
        validator: Callable[[str], Awaitable[str | None]] | None = None,
        generation: Callable[[], bytes | None] | None = None,
        key: ServiceKey | None = None,
        content_types: frozenset[str] = CONTENT_TYPES,
    ) -> None:
        self._config = config
        self._validator = validator or _always_valid
        self._generation = generation or _no_generation
        self._service_key = key or ServiceKey(config)
        self._content_types = content_types
        self._memory = MemoryTier(config.memory_cache_size)
        self._alive_until = 0.0
        # Creating a client does no I/O; it connects on first use. Retries
        # are left to the next request: a cache does not make one wait.
        # Lookups and the writes of entries have clients (and connections)
        # of their own: a write cut short never holds up a lookup.
        self._redis = self._client(config.redis_timeout)
        self._store_redis = self._client(max(config.redis_timeout, self.STORE_TIMEOUT))
        self._storing: set[asyncio.Task] = set()
        # Unsigned entries are logged once: whoever wrote them may write many.
        self._unsigned_seen = False
        self._flights = Flights()
        # What this process writes into the keys of the paths it renders.
        self._rendering = self.RENDERING + uuid.uuid4().hex.encode()
        # Whether Redis takes SET with both NX and GET (7.0 and later).
        self._set_nx_get = True
        # None until the first answer or failure, then whether Redis answers.
        self._available: bool | None = None
        # Whether Redis has ever answered this process.
        self._answered = False
        self._retry_at = 0.0
        # The PING that decides whether a late answer was Redis's fault.
        self._suspicion: asyncio.Task | None = None

    def _client(self, timeout: float) -> Any:
        return self._config.redis_from_url(
            self._config.redis_host,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0),
        )

    async def process_startup(
        self, scope: dict[str, Any], event: dict[str, Any]
    ) -> None:
        await self._service_key.load()
        await self._ping()

    async def process_shutdown(
        self, scope: dict[str, Any], event: dict[str, Any]
    ) -> None:
        # Entries on their way are written (each within STORE_TIMEOUT) first.
        await asyncio.gather(*self._storing)
        if self._suspicion is not None:
            await self._suspicion
        await self._redis.aclose()
        await self._store_redis.aclose()

    async def process_request(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        if req.method not in self.CACHED_METHODS:
            return
        # Read before anything is computed: what is kept under it is no older.
        generation = self._generation()

        kept = self._servable(_cache_path(req), generation)
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
                and req_succeeded
                and resp.status_code == 200
                and lookup.version is not None
            ):
                entry = await _response_entry(resp, lookup.version)
                if entry is not None and not entry.sendable(self._content_types):
                    entry = None
        finally:
            if lookup.flight is not None:
                self._flights.land(lookup.flight, entry)
        if not self._available:
            return
        path = _cache_path(req)
        if entry is not None:
            self._keep(path, entry, lookup.generation)
            # The entry takes the place of this render's mark.
            await self._store(path, entry)
        elif lookup.locked:
            # Nothing to store: those waiting for this render compute their own.
            await self._quietly(self._redis.delete, self._key(path))

    async def _store(self, path: str, entry: Entry) -> None:
        """Write an entry to Redis, waiting for it redis_timeout at most."""
        data = entries.pack(entry, path, self._service_key)
        task = asyncio.create_task(self._write(path, data, entry.version))
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)
        # Past the timeout the response goes on, and the entry on its way.
        await asyncio.wait({task}, timeout=self._config.redis_timeout)

    async def _write(self, path: str, data: bytes, version: str) -> None:
        key = self._key(path)
        try:
            await self._store_redis.set(key, data, ex=self.TTL)
            # A change answered while this response was computed (a DELETE
            # of its image) dropped the key before it was written: what the
            # entry shows must not stay behind it.
            if await self._still_shows(path, version):
                self._alive_until = time.monotonic() + self.LIVENESS
                return
            await self._store_redis.delete(key)
        except _REDIS_ERRORS:
            # A write cut short (a large entry on a busy machine, a connection
            # lost mid-way, which the client then drops) says little of Redis;
            # a PING, held to the rule of lookups, says whether it answers.
            await self._ping()

    async def _still_shows(self, path: str, version: str) -> bool:
        try:
            return await self._validator(path) == version
        except Exception:
            # The storage cannot say now (gone, unreadable): keep nothing it
            # might deny.
            return False

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
        path = _cache_path(req)
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

        # A HEAD takes part as a GET does: its responder may compute the
        # body too (then it is stored), or only the headers (then nothing is).
        flight, leading = self._flights.join(path, version)
        if not leading:
            entry = await self._flights.follow(flight, within=self.LOCK_TTL)
            return 'Miss' if entry is None else self._serve(resp, entry)
        lookup.flight = flight
        data = await self._command(self._mark, self._key(path))
        lookup.locked = data is None
        entry = self._valid(data, path, version)
        if self._rendered_by_another(data):
            entry = await self._rendered_elsewhere(path, version)

        if entry is None:
            return 'Miss'
        self._keep(path, entry, lookup.generation)
        self._flights.land(flight, entry)
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

    async def _rendered_elsewhere(self, path: str, version: str) -> Entry | None:
        """Wait while another process renders path; return its entry."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.LOCK_TTL
        while loop.time() < deadline:
            await asyncio.sleep(self.POLL_INTERVAL)
            data = await self._command(self._redis.get, self._key(path))
            if not self._rendered_by_another(data):
                return self._valid(data, path, version)
        return None

    def _valid(self, data: bytes | None, path: str, version: str) -> Entry | None:
        """Return the entry stored for path if it still shows what holds now."""
        try:
            entry = entries.unpack(data, path, self._service_key)
        except entries.UnsignedEntryError:
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
            or entry.version != version
            or not entry.sendable(self._content_types)
        ):
            return None
        return entry

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
        path = scope['path']
        query = scope.get('query_string')
        if query:
            if not query.isascii():
                # Kept answers have plain queries (pages); this is none.
                return None
            path = f'{path}?{query.decode()}'
        kept = self._servable(path, self._generation())
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

    def _keep(self, path: str, entry: Entry, generation: bytes | None) -> None:
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

    def _serve(self, resp: falcon.asgi.Response, entry: Entry) -> str:
        resp.content_type = entry.content_type
        resp.data = entry.body
        for name, value in entry.headers.items():
            resp.set_header(name, value)
        resp.complete = True
        return 'Hit'

    async def _reachable(self) -> bool:
        if self._suspicion is not None:
            # Redis was late; until a PING says why, nobody waits for it.
            return False
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
                'Redis at %s answers%s; serving from the cache',
                self._config.redis_host,
                ' again' if self._answered else '',
            )
        self._available = self._answered = True
        return True

    async def _command(self, command, *args, **kwargs):
        """Run one Redis command within redis_timeout; _CacheUnavailable if not."""
        try:
            async with asyncio.timeout(self._config.redis_timeout):
                result = await command(*args, **kwargs)
        except _REDIS_ERRORS as ex:
            if self._available and isinstance(ex, _TIMEOUTS):
                self._suspect()
            else:
                self._lost(ex)
            raise _CacheUnavailable from ex
        self._alive_until = time.monotonic() + self.LIVENESS
        return result

    def _suspect(self) -> None:
        # A command of a Redis that answered may be late because this process
        # was busy (a burst of large responses), not Redis. A PING decides;
        # nobody waits for it, so it is given RETRY_INTERVAL to answer.
        if self._suspicion is None:
            self._suspicion = asyncio.create_task(self._confirm())

    async def _confirm(self) -> None:
        budget = max(self._config.redis_timeout, self.RETRY_INTERVAL)
        try:
            async with asyncio.timeout(budget):
                # The client that waits longer (also to connect) than lookups.
                await self._store_redis.ping()
        except _REDIS_ERRORS as ex:
            self._lost(ex)
        else:
            self._alive_until = time.monotonic() + self.LIVENESS
        finally:
            self._suspicion = None

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


def _cache_path(req: falcon.asgi.Request) -> str:
    """Return what a request's answer is kept under: its path and query.

    Only answers of 200 are kept, and resources redirect or refuse the
    spellings of a query they do not take (see images.py), so junk queries
    keep nothing.
    """
    query = req.query_string
    return f'{req.path}?{query}' if query else req.path


async def _always_valid(path: str) -> str:
    return ''


def _no_generation() -> bytes:
    return b''


async def _response_entry(resp: falcon.asgi.Response, version: str) -> Entry | None:
    """Return what a Hit will need to repeat a response; None if it has no body.

    A HEAD whose responder set only the headers computed no body to keep.
    """
    headers = {
        name: value
        for name in RedisCache.STORED_HEADERS
        if (value := resp.get_header(name)) is not None
    }
    body = await _render_body(resp)
    if body is None:
        return None
    # Without a type of its own, a response is sent as the default media type.
    content_type = resp.content_type or resp.options.default_media_type
    return Entry(content_type, body, version, headers)


async def _render_body(resp: falcon.asgi.Response) -> bytes | None:
    """Return the body of a response (None: none), turning a stream into data first.

    A stream can be read only once: what is cached must also be what is sent.
    """
    stream = resp.stream
    if stream is None:
        return await resp.render_body()

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
