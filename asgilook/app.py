"""create_app(): build the asgilook ASGI application from a Config."""

from __future__ import annotations

from typing import Any

import falcon
import falcon.asgi

from .bodies import BodyTimeoutError, IncompleteBodyError
from .cache import RedisCache
from .conditional import ConditionalRequests
from .config import Config
from .fastpath import CachedApp
from .images import Images, Thumbnails
from .signing import ServiceKey
from .store import StorageFullError, StorageUnavailableError, Store


def create_app(config: Config | None = None) -> falcon.asgi.App:
    """Wire the store, the resources, the cache and the error handlers."""
    config = config or Config()
    store = Store(config)
    # Loaded at start-up (by the cache, the first to need it).
    key = ServiceKey(config)
    cache = RedisCache(
        config, validator=store.version, generation=store.generation, key=key
    )
    images = Images(config, store)
    thumbnails = Thumbnails(store)

    # Responses pass through middleware in reverse order: the cache stores
    # the whole response before a 304 may replace it.
    app = CachedApp(
        cache,
        config.body_timeout,
        middleware=[_StoreLifespan(store, key), ConditionalRequests(), cache],
    )
    app.add_route('/images', images)
    app.add_route('/images/{image_id:uuid}.jpeg', images, suffix='image')
    app.add_route(
        '/thumbnails/{image_id:uuid}/{width:int}x{height:int}.jpeg', thumbnails
    )
    app.add_error_handler(falcon.HTTPRouteNotFound, _route_not_found)
    app.add_error_handler(falcon.HTTPMethodNotAllowed, _method_not_allowed)
    app.add_error_handler(StorageUnavailableError, _storage_unavailable)
    app.add_error_handler(StorageFullError, _storage_full)
    app.add_error_handler(IncompleteBodyError, _incomplete_body)
    app.add_error_handler(BodyTimeoutError, _body_timeout)
    app.set_error_serializer(_serialize_error)
    return app


class _StoreLifespan:
    """Prepare the store when the server starts; let its processes go at the end."""

    def __init__(self, store: Store, key: ServiceKey) -> None:
        self._store = store
        self._key = key

    async def process_startup(
        self, scope: dict[str, Any], event: dict[str, Any]
    ) -> None:
        await self._store.startup()
        # Made in the storage directory if there is none: before the catalog
        # looks at the directory, so that it finds it as it stays.
        await self._key.load()
        await self._store.open_catalog()

    async def process_shutdown(
        self, scope: dict[str, Any], event: dict[str, Any]
    ) -> None:
        await self._store.close()


async def _route_not_found(req, resp, ex, params) -> None:
    raise falcon.HTTPNotFound(
        title='No such resource',
        description='asgilook serves /images, /images/{id}.jpeg and '
        '/thumbnails/{id}/{width}x{height}.jpeg.',
    ) from ex


async def _method_not_allowed(req, resp, ex, params) -> None:
    allowed = ex.headers['Allow']
    raise falcon.HTTPMethodNotAllowed(
        allowed.split(', '),
        title='Method not allowed',
        description=f'{req.path} answers {allowed}.',
    ) from ex


async def _storage_unavailable(req, resp, ex, params) -> None:
    raise falcon.HTTPServiceUnavailable(
        title='Storage unavailable',
        description='The server cannot read or write images now. Try again later.',
        retry_after=60,
    ) from ex


async def _storage_full(req, resp, ex, params) -> None:
    raise falcon.HTTPInsufficientStorage(
        title='Storage full',
        description='The server has no room to record this change now. Nothing '
        'was changed; try again later.',
    ) from ex


async def _incomplete_body(req, resp, ex, params) -> None:
    raise falcon.HTTPBadRequest(
        title='Upload incomplete',
        description='The body ended before all of it arrived (the connection '
        'closed, or fewer bytes came than Content-Length said). Nothing was '
        'stored; send the whole file again.',
    ) from ex


async def _body_timeout(req, resp, ex, params) -> None:
    raise falcon.HTTPError(
        falcon.HTTP_408,
        title='Upload stalled',
        description=f'No byte of the body arrived for {ex.seconds:g} seconds. '
        'Nothing was stored; send the file again without pausing.',
    ) from ex


def _serialize_error(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, exception: falcon.HTTPError
) -> None:
    """Send every error as the JSON of the README, whatever the client accepts."""
    resp.data = exception.to_json()
    resp.content_type = falcon.MEDIA_JSON
