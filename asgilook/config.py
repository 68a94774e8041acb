"""Settings of asgilook: one typed object, read from the environment once.

An operator sets what docs/configuration.md lists, through
`ASGI_LOOK_*` variables; the knobs below them (how long the cache waits,
how much the catalog remembers, the clock) are plain attributes, set on the
instance by tests. Every attribute may be replaced before `create_app`.
"""

from __future__ import annotations

import os
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio

from .errors import ConfigError
from .limits import CacheTiming, CatalogLimits, EventSettings

# What the name of each setting's variable starts with; variables read by
# asgilook's tests alone (tests/servers.py, tests/browser.py) start with
# TEST_PREFIX.
PREFIX = 'ASGI_LOOK_'
TEST_PREFIX = 'ASGI_LOOK_TEST_'

# What the storage directory may be given as: a str, a pathlib.Path, pytest's tmpdir.
StrPath = str | os.PathLike[str]
# A monotonic clock in seconds: time.monotonic, or a test's.
Clock = Callable[[], float]


class Config:
    """Every setting of the service; attributes may be replaced before use."""

    DEFAULT_STORAGE_PATH = '/tmp/asgilook'
    DEFAULT_MIN_THUMB_SIZE = 64
    DEFAULT_REDIS_HOST = 'redis://localhost'
    DEFAULT_MAX_UPLOAD_SIZE = 32 * 1024 * 1024
    DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
    DEFAULT_IMAGE_WORKERS = os.cpu_count() or 1
    DEFAULT_RENDER_PROCESSES = os.cpu_count() or 1
    DEFAULT_JPEG_QUALITY = 90
    # Within 1.5 dB of JPEG's 90 (PSNR against the picture, on the ladder of
    # 1920x1080 photos): WebP in 29-50% of its bytes, AVIF in 23-41%.
    DEFAULT_WEBP_QUALITY = 80
    DEFAULT_AVIF_QUALITY = 60
    DEFAULT_REDIS_TIMEOUT = 0.25
    DEFAULT_MEMORY_CACHE_SIZE = 64 * 1024 * 1024
    DEFAULT_UPLOAD_MEMORY = 16 * 1024 * 1024
    DEFAULT_BODY_TIMEOUT = 30.0
    DEFAULT_REDIS_FROM_URL = staticmethod(redis.asyncio.from_url)
    DEFAULT_UUID_GENERATOR = staticmethod(uuid.uuid4)
    # An upload up to this size waits for a Pillow worker in memory (within
    # upload_memory); a larger one on disk.
    DEFAULT_SPOOL_IN_MEMORY = 1024 * 1024

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = _Environment(os.environ if environ is None else environ)
        self.storage_path: StrPath = env.text(
            'ASGI_LOOK_STORAGE_PATH', self.DEFAULT_STORAGE_PATH
        )
        self.min_thumb_size = env.whole(
            'ASGI_LOOK_MIN_THUMB_SIZE', self.DEFAULT_MIN_THUMB_SIZE
        )
        self.redis_host = env.redis_url('ASGI_LOOK_REDIS_HOST', self.DEFAULT_REDIS_HOST)
        self.max_upload_size = env.whole(
            'ASGI_LOOK_MAX_UPLOAD_SIZE', self.DEFAULT_MAX_UPLOAD_SIZE
        )
        self.max_image_pixels = env.whole(
            'ASGI_LOOK_MAX_IMAGE_PIXELS', self.DEFAULT_MAX_IMAGE_PIXELS
        )
        self.image_workers = env.whole(
            'ASGI_LOOK_IMAGE_WORKERS', self.DEFAULT_IMAGE_WORKERS
        )
        self.render_processes = env.whole(
            'ASGI_LOOK_RENDER_PROCESSES', self.DEFAULT_RENDER_PROCESSES, minimum=0
        )
        self.jpeg_quality = env.whole(
            'ASGI_LOOK_JPEG_QUALITY', self.DEFAULT_JPEG_QUALITY, maximum=100
        )
        self.redis_timeout = env.seconds(
            'ASGI_LOOK_REDIS_TIMEOUT', self.DEFAULT_REDIS_TIMEOUT
        )
        self.memory_cache_size = env.whole(
            'ASGI_LOOK_MEMORY_CACHE_SIZE', self.DEFAULT_MEMORY_CACHE_SIZE, minimum=0
        )
        self.upload_memory = env.whole(
            'ASGI_LOOK_UPLOAD_MEMORY', self.DEFAULT_UPLOAD_MEMORY, minimum=0
        )
        self._read_thumbnail_qualities(env)
        self._read_connections(env)
        self._read_shared_storage(env)
        # Every variable read above: the settings, named nowhere else, and
        # the values each accepts.
        self.setting_names = frozenset(env.names)
        self.accepted_values = dict(env.accepted)
        self._set_knobs()

    def _read_thumbnail_qualities(self, env: _Environment) -> None:
        """Read the quality of WebP and AVIF thumbnails (JPEG's is jpeg_quality)."""
        self.webp_quality = env.whole(
            'ASGI_LOOK_WEBP_QUALITY', self.DEFAULT_WEBP_QUALITY, maximum=100
        )
        self.avif_quality = env.whole(
            'ASGI_LOOK_AVIF_QUALITY', self.DEFAULT_AVIF_QUALITY, maximum=100
        )

    def _read_connections(self, env: _Environment) -> None:
        """Read what bounds a client's connection, and the service key."""
        self.body_timeout = env.seconds(
            'ASGI_LOOK_BODY_TIMEOUT', self.DEFAULT_BODY_TIMEOUT
        )
        self.events = EventSettings(
            heartbeat=env.seconds(
                'ASGI_LOOK_EVENTS_HEARTBEAT', EventSettings.heartbeat
            ),
            max_streams=env.whole(
                'ASGI_LOOK_EVENTS_MAX_STREAMS', EventSettings.max_streams
            ),
        )
        # The key that signs what asgilook keeps in Redis; None: the one kept
        # in the storage directory (made at the first start).
        self.secret = env.secret('ASGI_LOOK_SECRET')
        # The other sites whose pages may call the API (http/cors.py).
        self.cors_origins = env.origins('ASGI_LOOK_CORS_ORIGINS')
        # Whether GET /metrics answers (metrics/).
        self.metrics = env.flag('ASGI_LOOK_METRICS', True)
        # Where the workers of one server keep their metrics together (set by
        # the launcher, or by hand for several uvicorn workers); None: alone.
        self.metrics_directory = env.text('PROMETHEUS_MULTIPROC_DIR', '') or None

    def _read_shared_storage(self, env: _Environment) -> None:
        """Read where several hosts keep the catalog and the images; both or none.

        None: the catalog in SQLite and the images in the storage directory.
        """
        self.database_url = env.url(
            'ASGI_LOOK_DATABASE_URL',
            _DATABASE_SCHEMES,
            'postgresql://user:password@host:5432/dbname',
        )
        self.storage_url = env.url(
            'ASGI_LOOK_STORAGE_URL', _STORAGE_SCHEMES, 's3://bucket/prefix', False
        )
        if (self.database_url is None) != (self.storage_url is None):
            raise ConfigError(
                'ASGI_LOOK_DATABASE_URL and ASGI_LOOK_STORAGE_URL are set '
                'together (several hosts share the catalog and the images), '
                'or neither (one host keeps both in ASGI_LOOK_STORAGE_PATH)'
            )

    def _set_knobs(self) -> None:
        """Set what only tests change: fakes, the clock, timings and limits."""
        self.redis_from_url: Callable[..., Any] = self.DEFAULT_REDIS_FROM_URL
        self.uuid_generator: Callable[[], uuid.UUID] = self.DEFAULT_UUID_GENERATOR
        self.clock: Clock = time.monotonic
        self.cache_timing = CacheTiming()
        self.catalog_limits = CatalogLimits()
        # How a worker reads the catalog's change token, in order of
        # preference (asgilook/catalog/watch.py): 'wal-index', 'data-version'.
        self.change_token_sources: tuple[str, ...] = ('wal-index', 'data-version')
        self.spool_in_memory = self.DEFAULT_SPOOL_IN_MEMORY


class _Environment:
    """The environment's settings, each checked as it is read."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ
        # The name of every setting asked for, set or not, with the values
        # it accepts, in the words of its error (docs/configuration.md shows them).
        self.accepted: dict[str, str] = {}

    @property
    def names(self) -> set[str]:
        return set(self.accepted)

    def _get(self, name: str, accepted: str) -> str:
        self.accepted[name] = accepted
        return self._environ.get(name, '')

    def text(self, name: str, default: str) -> str:
        return self._get(name, 'a directory') or default

    def whole(
        self, name: str, default: int, minimum: int = 1, maximum: int | None = None
    ) -> int:
        upper = f' up to {maximum}' if maximum is not None else ''
        accepted = f'a whole number from {minimum}{upper}'
        raw = self._get(name, accepted).strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum or (maximum is not None and value > maximum):
            raise ConfigError(f'{name} must be {accepted}, not {raw!r}')
        return value

    def seconds(self, name: str, default: float) -> float:
        raw = self._get(name, 'a number of seconds above 0').strip()
        if not raw:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = 0.0
        # Also refuses nan and inf: neither bounds a wait.
        if not 0 < value < float('inf'):
            raise ConfigError(
                f'{name} must be a number of seconds above 0, not {raw!r}'
            )
        return value

    def flag(self, name: str, default: bool) -> bool:
        accepted = '1 or 0 (on or off)'
        raw = self._get(name, accepted).strip().lower()
        if not raw:
            return default
        if raw not in _FLAGS:
            raise ConfigError(f'{name} must be {accepted}, not {raw!r}')
        return _FLAGS[raw]

    def origins(self, name: str) -> frozenset[str]:
        """Return comma-separated origins as browsers send them (none if unset)."""
        accepted = (
            'origins separated by commas, each a scheme, a host and maybe a '
            'port, such as https://app.example.com'
        )
        found = set()
        for item in self._get(name, accepted).split(','):
            if not item.strip():
                continue
            origin = _origin(item.strip())
            if origin is None:
                raise ConfigError(f'{name} must be {accepted}, not {item.strip()!r}')
            found.add(origin)
        return frozenset(found)

    def redis_url(self, name: str, default: str) -> str:
        accepted = 'a Redis URL such as redis://localhost:6379/0'
        url = self._get(name, accepted).strip() or default
        if urllib.parse.urlsplit(url).scheme not in _REDIS_SCHEMES:
            raise ConfigError(f'{name} must be {accepted}, not {url!r}')
        return url

    def url(
        self, name: str, schemes: frozenset[str], example: str, path: bool = True
    ) -> str | None:
        """Return a URL of one of schemes with a host (and a path), None if unset."""
        accepted = f'a URL such as {example}'
        raw = self._get(name, accepted).strip()
        if not raw:
            return None
        parts = urllib.parse.urlsplit(raw)
        try:
            # A port that is no number fails here.
            parts.port  # noqa: B018
            port = True
        except ValueError:
            port = False
        if (
            not port
            or parts.scheme not in schemes
            or not parts.hostname
            or (path and not parts.path[1:])
        ):
            # Its password is not said again.
            shown = raw.replace(f':{parts.password}@', ':***@', 1)
            raise ConfigError(f'{name} must be {accepted}, not {shown!r}')
        return raw

    def secret(self, name: str) -> bytes | None:
        raw = self._get(name, f'at least {_MIN_SECRET_LENGTH} characters').strip()
        if not raw:
            return None
        if len(raw) < _MIN_SECRET_LENGTH:
            raise ConfigError(
                f'{name} must be at least {_MIN_SECRET_LENGTH} characters long '
                '(a random string: python3 -c "import secrets; '
                f'print(secrets.token_urlsafe())"), not one of {len(raw)}'
            )
        return raw.encode()


def _origin(text: str) -> str | None:
    """Return an origin (scheme://host[:port]) as a browser says it; None: no origin."""
    parts = urllib.parse.urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if (
        parts.scheme not in _DEFAULT_PORTS
        or not host
        or not text.isascii()
        or parts.username is not None
        or (parts.path, parts.query, parts.fragment) != ('', '', '')
        or '?' in text
        or '#' in text
    ):
        return None
    host = f'[{host}]' if ':' in host else host
    shown = '' if port in (None, _DEFAULT_PORTS[parts.scheme]) else f':{port}'
    return f'{parts.scheme}://{host}{shown}'


_FLAGS = {'1': True, 'on': True, 'true': True, 'yes': True}
_FLAGS.update({'0': False, 'off': False, 'false': False, 'no': False})
_DEFAULT_PORTS = {'http': 80, 'https': 443}
_MIN_SECRET_LENGTH = 16
_REDIS_SCHEMES = frozenset({'redis', 'rediss', 'unix'})
_DATABASE_SCHEMES = frozenset({'postgresql', 'postgres'})
_STORAGE_SCHEMES = frozenset({'s3'})
