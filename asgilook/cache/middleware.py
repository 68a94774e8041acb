"""RedisCache: the Falcon middleware that puts the tiers in front of the resources."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import falcon.asgi

from ..auth.signing import ServiceKey
from ..config import Config
from ..errors import StorageUnavailableError
from .answers import render_body
from .backend import RedisUnavailableError
from .entries import CONTENT_TYPES, STORED_HEADERS, Entry, largest_body
from .keys import cache_key, variants
from .memory import CACHE_HEADER, Kept
from .tiers import LookedUp, Lookup, Tiers, Token

# What a GET or HEAD is answered from the cache for; what a change drops.
CACHED_METHODS = frozenset({'GET', 'HEAD'})
INVALIDATE_ON = frozenset({'DELETE', 'POST', 'PUT'})

# What the answer to a GET of a route is computed from now, given the request
# and the route's fields (None: nothing to keep): an entry is served only
# while it is still so.
Version = Callable[..., Awaitable[str | None]]
# The other paths a change through a route shows at (its own path aside),
# given the request and the route's fields, asked before the change is made.
ShownAt = Callable[..., Awaitable[Iterable[str]]]
# What the fast path found of a request memory could not answer, for the
# middleware (fastpath.py): its cache key and the catalog's token.
LOOKED_UP = 'asgilook.cache.looked_up'


class RedisCache:
    """Serve repeated GETs from memory or Redis; a POST, PUT or DELETE invalidates.

    The routes whose answers are kept are named where the app is wired, by
    route template, each with its Version: `versions`. An entry is served
    only while its version still holds: no process serves an answer that
    another process's change, or a change made while Redis was away, made
    stale. A POST, PUT or DELETE that succeeds drops what is kept for its
    path, and for the paths its route's ShownAt names (`shown_at`).

    Redis only ever makes answers faster: every command is bounded by
    `Config.redis_timeout`, and while Redis is away answers say `Bypass` and
    are computed as if there were no cache. Entries are signed with the
    service key for their path, and only an answer asgilook could have
    computed (one of `content_types`, the stored headers in printable ASCII)
    is stored or sent. Each lookup of a tier is told to `looked_up` (the
    metrics).
    """

    def __init__(
        self,
        config: Config,
        token: Token | None = None,
        service_key: ServiceKey | None = None,
        content_types: frozenset[str] = CONTENT_TYPES,
        varying: frozenset[str] = frozenset(),
        versions: Mapping[str, Version] | None = None,
        shown_at: Mapping[str, ShownAt] | None = None,
        immutable: frozenset[str] = frozenset(),
        looked_up: LookedUp | None = None,
    ) -> None:
        self._service_key = service_key or ServiceKey(config)
        # The routes whose answers are kept, by template, and their versions.
        self.versions = dict(versions or {})
        # The routes whose changes show at other paths too.
        self.shown_at = dict(shown_at or {})
        # The routes whose answers never change under their URL: what is kept
        # of them is served while the catalog cannot say their version.
        self.immutable = immutable
        # The paths whose answer varies by Accept (see keys.cache_key).
        self.varying = varying
        self.tiers = Tiers(
            config, token or _no_token, self._service_key, content_types, looked_up
        )
        # An entry Redis could not give back within redis_timeout is not kept.
        self.largest_entry = largest_body(config)

    async def process_startup(
        self, scope: Mapping[str, Any], event: Mapping[str, Any]
    ) -> None:
        await self._service_key.load()
        backend = self.tiers.backend
        if await backend.ping():
            await backend.check_memory()

    async def process_shutdown(
        self, scope: Mapping[str, Any], event: Mapping[str, Any]
    ) -> None:
        await self.tiers.close()

    async def process_request(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        if req.method not in CACHED_METHODS:
            return
        tiers = self.tiers
        looked_up: tuple[str, bytes | None] | None = req.scope.get(LOOKED_UP)
        if looked_up is not None:
            # Memory was asked a moment ago, before Falcon.
            key, token = looked_up
        else:
            # Read before anything is computed: what is kept under it is no older.
            token = tiers.token()
            key = cache_key(_target(req), req.get_header('Accept'), self.varying)
            hit = tiers.servable(key, token)
            if hit is not None:
                _serve(resp, hit)
                return
        reachable = await tiers.backend.reachable()
        resp.context.cache = Lookup(key, token, reachable)
        resp.set_header(CACHE_HEADER, 'Miss' if reachable else 'Bypass')

    async def process_resource(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        params: dict[str, Any],
    ) -> None:
        template = req.uri_template or ''
        if req.method in INVALIDATE_ON:
            shown_at = self.shown_at.get(template)
            if shown_at is not None:
                resp.context.shown_at = await shown_at(req, **params)
            return
        lookup: Lookup | None = resp.context.get('cache')
        version = self.versions.get(template)
        if version is None:
            # Never cached (an event stream): its answer says nothing of it.
            resp.delete_header(CACHE_HEADER)
            return
        if lookup is None or not lookup.reachable:
            return
        lookup.version_now = functools.partial(version, req, **params)
        lookup.route = template
        try:
            hit = await self.tiers.lookup(lookup, await lookup.version_now())
        except RedisUnavailableError:
            resp.set_header(CACHE_HEADER, 'Bypass')
            return
        except StorageUnavailableError:
            hit = await self._unchecked(template, lookup)
            if hit is None:
                raise
        if hit is not None:
            _serve(resp, hit)

    async def process_response(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        resource: object,
        req_succeeded: bool,
    ) -> None:
        if req.method in INVALIDATE_ON:
            if req_succeeded:
                # And the other paths its route's change shows at.
                shown_at: Iterable[str] = resp.context.get('shown_at') or ()
                paths = (req.path, *shown_at)
                await self.tiers.invalidate(
                    [key for path in paths for key in variants(path, self.varying)]
                )
            return
        lookup: Lookup | None = resp.context.get('cache')
        if lookup is None:
            # Not a GET or HEAD, or served from memory: nothing to do.
            return
        entry = None
        version = lookup.version
        try:
            if req_succeeded and version is not None and _computed(req, resp):
                entry = await _response_entry(resp, version, self.largest_entry)
        finally:
            # Also when the body failed as it was read: its lock is let go.
            hit = self.tiers.land(lookup, entry)
            await self.tiers.finish(lookup, hit)

    async def _unchecked(self, template: str, lookup: Lookup) -> Kept | None:
        """What is kept of an answer that never changes, whatever its version."""
        if template not in self.immutable:
            return None
        try:
            return await self.tiers.unchecked(lookup)
        except RedisUnavailableError:
            return None


def _target(req: falcon.asgi.Request) -> str:
    """Return what a request asks for: its path and query (see keys.cache_key).

    Only answers of 200 are kept, and resources redirect or refuse the
    spellings of a query they do not take (see images.py), so junk queries
    keep nothing.
    """
    query = req.query_string
    return f'{req.path}?{query}' if query else req.path


def _no_token() -> bytes:
    return b''


def _serve(resp: falcon.asgi.Response, hit: Kept) -> None:
    """Answer with a Hit: its body and the headers it was kept with."""
    resp.set_headers(hit.headers)
    resp.data = hit.entry.body
    resp.complete = True


def _computed(req: falcon.asgi.Request, resp: falcon.asgi.Response) -> bool:
    """Whether the resource computed an answer worth an entry (a 200 Miss).

    A HEAD's stream is never sent, nor read here: it may stand for a body it
    is not (media.no_body).
    """
    if req.method == 'HEAD' and resp.stream is not None:
        return False
    return resp.status_code == 200 and resp.get_header(CACHE_HEADER) == 'Miss'


async def _response_entry(
    resp: falcon.asgi.Response, version: str, largest: int
) -> Entry | None:
    """Return what a Hit will need to repeat an answer; None if it has none.

    A HEAD whose responder set only the headers computed no body to keep;
    a body over largest bytes is not kept (see answers.py).
    """
    headers = {
        name: value
        for name in STORED_HEADERS
        if (value := resp.get_header(name)) is not None
    }
    body = await render_body(resp, largest)
    if body is None:
        return None
    # Without a type of its own, an answer is sent as the default media type.
    content_type = resp.content_type or resp.options.default_media_type
    return Entry(content_type, body, version, headers)
