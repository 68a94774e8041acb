"""RedisCache: Falcon middleware keeping GET responses in Redis."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import falcon.asgi
import msgpack
import redis.exceptions

from .config import Config

logger = logging.getLogger(__name__)

# What a lost, refused or timed-out Redis connection raises.
_REDIS_ERRORS = (redis.exceptions.RedisError, OSError)


class RedisCache:
    """Serve repeated GETs from Redis; a POST, PUT or DELETE invalidates its path.

    A resource whose change shows at other paths too lists them in
    `resp.context.invalidate`. With a `validator` (an async callable returning
    what a path shows now, or None), an entry is served only while what it was
    computed from still holds: no process serves an answer that another
    process's change, or a change made while Redis was away, made stale.
    """

    PREFIX = 'asgilook:'
    INVALIDATE_ON = frozenset({'DELETE', 'POST', 'PUT'})
    CACHE_HEADER = 'X-ASGILook-Cache'
    TTL = 3600

    def __init__(
        self,
        config: Config,
        validator: Callable[[str], Awaitable[str | None]] | None = None,
    ) -> None:
        self._config = config
        self._validator = validator or _always_valid
        # Creating the client does no I/O; it connects on first use.
        self._redis = config.redis_from_url(config.redis_host)
        self._available = False
        self._warned = False

    async def process_startup(
        self, scope: dict[str, Any], event: dict[str, Any]
    ) -> None:
        try:
            await self._redis.ping()
        except _REDIS_ERRORS as ex:
            self._available = False
            if not self._warned:
                self._warned = True
                logger.warning(
                    'Redis at %s cannot be reached (%s); serving without the cache',
                    self._config.redis_host,
                    ex,
                )
        else:
            self._available = True

    async def process_shutdown(
        self, scope: dict[str, Any], event: dict[str, Any]
    ) -> None:
        await self._redis.aclose()

    async def process_request(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        if req.method != 'GET':
            return
        if not self._available:
            resp.set_header(self.CACHE_HEADER, 'Bypass')
            return

        version = await self._validator(req.path)
        resp.context.cache_version = version
        try:
            data = await self._redis.get(self._key(req.path))
        except _REDIS_ERRORS:
            resp.set_header(self.CACHE_HEADER, 'Bypass')
            return

        cached = _decode(data)
        if cached is None or version is None or cached[2] != version:
            resp.set_header(self.CACHE_HEADER, 'Miss')
            return
        resp.content_type, resp.data, _ = cached
        resp.complete = True
        resp.set_header(self.CACHE_HEADER, 'Hit')

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        if not req_succeeded or not self._available:
            return

        if req.method in self.INVALIDATE_ON:
            # The resource may name other paths its change shows through.
            paths = {req.path, *getattr(resp.context, 'invalidate', ())}
            await self._call(self._redis.delete, *map(self._key, paths))
        elif (
            resp.get_header(self.CACHE_HEADER) == 'Miss'
            and resp.status_code == 200
            and resp.context.cache_version is not None
        ):
            body = await _render_body(resp)
            entry = [resp.content_type, body, resp.context.cache_version]
            data = msgpack.packb(entry, use_bin_type=True)
            await self._call(self._redis.set, self._key(req.path), data, ex=self.TTL)

    def _key(self, path: str) -> str:
        return self.PREFIX + path

    async def _call(self, command, *args, **kwargs) -> None:
        with contextlib.suppress(_REDIS_ERRORS):
            await command(*args, **kwargs)


async def _always_valid(path: str) -> str:
    return ''


def _decode(data: bytes | None) -> tuple[str, bytes, str] | None:
    """Return the content type, body and version stored under a key, if any."""
    if data is None:
        return None
    try:
        content_type, body, version = msgpack.unpackb(data, raw=False)
    except (ValueError, TypeError):
        # Not an entry this version wrote: treat it as absent; it is overwritten.
        return None
    if (
        isinstance(content_type, str)
        and isinstance(body, bytes)
        and isinstance(version, str)
    ):
        return content_type, body, version
    return None


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
