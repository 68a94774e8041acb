"""create_app(): the asgilook Falcon app of a Config; create_served_app(): as served."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import falcon
import falcon.asgi

from .auth.deletes import DeleteTokens
from .auth.signing import ServiceKey
from .cache import FastPath, RedisCache
from .config import Config
from .events import Events, Feed, FeedLifespan
from .gallery import Assets, Gallery
from .http import errors, media
from .http.admission import StreamBudget
from .http.conditional import ConditionalRequests
from .http.cors import Cors
from .http.gate import Gate
from .http.health import Health
from .images import Images, Thumbnails, Versions
from .metrics import Metrics, MetricsExport, RequestMetrics
from .openapi import Document
from .store import Store

FalconApp = falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]

# The routes of the HTTP API.
IMAGES = '/images'
IMAGE = '/images/{image_id:uuid}.jpeg'
THUMBNAIL = '/thumbnails/{image_id:uuid}/{width:int}x{height:int}.{extension}'
EVENTS = '/events'
HEALTH = '/health'
METRICS = '/metrics'
OPENAPI = '/openapi.json'

# The answers that differ by Accept: the list and its pages (JSON or
# MessagePack, http/media.py); an image is one JPEG for all, and each format
# of a thumbnail has a URL of its own.
_BY_ACCEPT = frozenset({IMAGES})


def create_app(config: Config | None = None) -> FalconApp:
    """Wire the store, the resources, the cache and the error handlers.

    Return the Falcon app, as the tutorial does: a test, or an app of your
    own, can add routes and middleware to it. A server runs it wrapped in
    what comes before Falcon: `create_served_app`.
    """
    return _Wiring(config or Config()).app


def create_served_app(config: Config | None = None) -> Gate:
    """Return the app a server runs: create_app's, behind the gate and the fast path.

    The gate (http/gate.py) refuses what Falcon cannot take, sends every
    other spelling of a path to its one URL, and guards bodies and streams;
    the cache's fast path sends what memory keeps before Falcon. Its `.app`
    is the Falcon app.
    """
    return _Wiring(config or Config()).served()


class _Wiring:
    """Everything one app is made of, wired once."""

    def __init__(self, config: Config) -> None:
        self.config = config
        store = Store(config)
        # Kept in the catalog; loaded at start-up, once the store opened it.
        key = ServiceKey(config, store.service_secret)
        self.metrics = metrics = (
            Metrics(config.clock, config.metrics_directory) if config.metrics else None
        )
        self.cache = cache = _cache(config, store, key, metrics)
        images = Images(config, store, DeleteTokens(key))
        thumbnails = Thumbnails(store, None if metrics is None else metrics.rendering)
        feed = Feed(store, config)
        self.cors = Cors(config.cors_origins) if config.cors_origins else None

        # Responses pass through middleware in reverse order: the cache
        # stores the whole response before a 304 may replace it, and before
        # CORS headers are added (kept alike for every origin).
        app: FalconApp = falcon.asgi.App()
        if metrics is not None:
            app.add_middleware(RequestMetrics(metrics, IMAGES))
            if metrics.shared is not None:
                app.add_middleware(metrics.shared)
            app.add_route(METRICS, MetricsExport(metrics))
        app.add_middleware(_StoreLifespan(store, key))
        # Started after the store; its streams end before the store closes.
        app.add_middleware(FeedLifespan(feed))
        app.add_middleware(ConditionalRequests())
        if self.cors is not None:
            app.add_middleware(self.cors)
        app.add_middleware(cache)
        app.add_route(IMAGES, images)
        app.add_route(IMAGE, images, suffix='image')
        app.add_route(THUMBNAIL, thumbnails)
        app.add_route(EVENTS, Events(feed, config.cors_origins))
        app.add_route(HEALTH, Health(store, cache.tiers.backend))
        app.add_route(OPENAPI, Document(config))
        assets = Assets(('gallery.css', 'gallery.js', 'favicon.svg'))
        app.add_route('/', Gallery(store, feed, assets.files))
        app.add_route('/gallery/{name}', assets)
        app.add_route('/favicon.ico', assets, suffix='favicon')
        media.register(app)
        errors.register(app)
        self.app = app

    def served(self) -> Gate:
        metrics, cors = self.metrics, self.cors
        streams = StreamBudget(
            frozenset({EVENTS}),
            self.config.events.max_streams,
            counted=None if metrics is None else metrics.subscribers.inc,
        )
        # The whole list is listened to: sent long, it stops when its client goes.
        listened = frozenset({IMAGES})
        fast = FastPath(
            self.app,
            self.cache,
            answered=None if metrics is None else metrics.answered,
            cors=None if cors is None else cors.asgi_headers,
            clock=self.config.clock,
        )
        return Gate(fast, self.config.body_timeout, streams, listened)


def _cache(
    config: Config, store: Store, key: ServiceKey, metrics: Metrics | None
) -> RedisCache:
    """The cache of an app: which answers it keeps, what each is computed from."""
    versions = Versions(store)
    return RedisCache(
        config,
        token=store.token,
        service_key=key,
        varying=_BY_ACCEPT,
        versions={
            IMAGES: versions.of_list,
            IMAGE: versions.of_image,
            THUMBNAIL: versions.of_thumbnail,
        },
        # A delete shows in the list and in the image's thumbnails too.
        shown_at={IMAGE: versions.shown_with_image},
        # Served from the cache while the catalog is away.
        immutable=frozenset({IMAGE, THUMBNAIL}),
        looked_up=None if metrics is None else metrics.looked_up,
    )


class _StoreLifespan:
    """Prepare the store when the server starts; let its processes go at the end."""

    def __init__(self, store: Store, key: ServiceKey) -> None:
        self._store = store
        self._key = key

    async def process_startup(
        self, scope: Mapping[str, Any], event: Mapping[str, Any]
    ) -> None:
        await self._store.startup()
        await self._key.load()

    async def process_shutdown(
        self, scope: Mapping[str, Any], event: Mapping[str, Any]
    ) -> None:
        await self._store.close()
