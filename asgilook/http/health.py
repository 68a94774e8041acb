"""GET /health: whether this worker can serve, for a load balancer or a probe."""

from __future__ import annotations

import asyncio

import falcon
import falcon.asgi

from ..cache.backend import RedisBackend
from ..store import Store

# What each part is said to be.
OK = 'ok'
UNAVAILABLE = 'unavailable'


class Health:
    """Ask the catalog, the storage and Redis one cheap question each.

    200 `ok` when all answer; 200 `degraded` when only Redis does not (the
    service works without its cache, slower); 503 `unavailable` when the
    catalog or the storage does not: no image can be listed, stored or sent.
    Never cached: it says how things are now.
    """

    def __init__(self, store: Store, redis: RedisBackend) -> None:
        self._store = store
        self._redis = redis

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        stored, cached = await asyncio.gather(self._store.check(), self._redis.ping())
        checks = {name: OK if works else UNAVAILABLE for name, works in stored.items()}
        checks['redis'] = OK if cached else UNAVAILABLE
        if not all(stored.values()):
            status = UNAVAILABLE
            resp.status = falcon.HTTP_503
        else:
            status = OK if cached else 'degraded'
        resp.media = {'status': status, 'checks': checks}
        resp.cache_control = ['no-store']

    on_head = on_get
