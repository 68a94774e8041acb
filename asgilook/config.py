"""Settings of asgilook: one typed object, read from the environment once.

An operator sets what the README's configuration table lists, through
`ASGI_LOOK_*` variables; the knobs below them (how long the cache waits,
how much the catalog remembers, the clock) are plain attributes, set on the
instance by tests. Every attribute may be replaced before `create_app`.
"""

from __future__ import annotations

import dataclasses
import os
import time
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio

from .errors import ConfigError

# What the name of each setting's variable starts with; variables read by
# asgilook's tests alone (tests/servers.py, tests/browser.py) start with
# TEST_PREFIX.
PREFIX = 'ASGI_LOOK_'
TEST_PREFIX = 'ASGI_LOOK_TEST_'

# What the storage directory may be given as: a str, a pathlib.Path, pytest's tmpdir.
StrPath = str | os.PathLike[str]
# A monotonic clock in seconds: time.monotonic, or a test's.
Clock = Callable[[], float]


@dataclasses.dataclass(frozen=True)
class CacheTiming:
    """How long the cache keeps, waits for and trusts things, in seconds."""

    # How long Redis keeps an entry.
    entry_ttl: int = 3600
    # How long a render may hold the lock of its path; a process waiting for
    # another's render computes the answer itself after this long.
    lock_ttl: float = 5.0
    # How often a waiting process looks for the entry another one renders.
    poll_interval: float = 0.01
    # After a timed-out command, how long before Redis is asked again (a
    # refused connection costs nothing to retry: the next request does).
    retry_interval: float = 1.0
    # An entry kept in a process's memory is served without asking Redis or
    # the catalog while the catalog's token is the one it was kept under,
    # for memory_ttl at most (a change behind asgilook's back shows after
    # that), and while Redis has answered within liveness (an outage shows).
    memory_ttl: float = 1.0
    liveness: float = 0.5
    # How long an entry may take to be written to Redis (several megabytes
    # on a busy machine); the answer waits for it redis_timeout at most.
    store_timeout: float = 2.0
    # A Redis that answers but refuses the cache's commands (its memory
    # full, a read-only replica) is logged at most this often, each kind.
    refusal_log_interval: float = 60.0
    # The bytes a second an entry is counted on to be read back from Redis:
    # larger than redis_timeout x this (8 MiB by default), an answer is not
    # kept. (A GET of 8 MiB took 28 ms, 64 MiB 157 ms, on an idle 2-CPU
    # machine, redis-py with hiredis; a busy worker reads slower.)
    entry_read_rate: int = 32 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class CatalogLimits:
    """How much the catalog keeps and remembers, and how long it waits."""

    # Changes kept in the change log (the source of the service's events).
    retained_changes: int = 100_000
    # How long a change waits for another process's change to commit.
    write_wait: float = 60.0
    # Records remembered between two changes (an image's lookup is free then).
    remembered_records: int = 10_000
    # Files a reindex reads in one batch, and rows it removes or adopts in
    # one transaction.
    reindex_batch: int = 10_000
    # The unpaged list is read and answered in one piece (and cached) up to
    # this many images (about 5 MB of JSON); a longer one is read from a
    # snapshot and sent list_batch images at a time (about 64 KB), in
    # bounded memory, at most long_lists of them at once a worker.
    listed_at_once: int = 10_000
    list_batch: int = 200
    long_lists: int = 4
    # Bytes of disk kept for removals (a DELETE, an image whose file is
    # gone) when the disk is full (0: none): see catalog/reserve.py.
    reserve: int = 256 * 1024


@dataclasses.dataclass(frozen=True)
class EventSettings:
    """How a worker follows the change log and streams it to its subscribers."""

    # Seconds between two heartbeats (an SSE comment) on a quiet stream.
    heartbeat: float = 15.0
    # The reconnection delay an SSE client is told (`retry:`), in milliseconds.
    retry_ms: int = 3000
    # How often a worker with subscribers reads the catalog's change token.
    poll_interval: float = 0.02
    # How far behind the newest event a subscriber may fall before it is
    # closed (to resume from its last id); as many are kept in memory.
    backlog: int = 1000
    # New changes read from the catalog at once by the worker; kept events
    # handed to a subscriber at once.
    batch: int = 500
    # Changes read at once for a subscriber that resumes, held while it
    # sends them (50 image.created events take about 70 KB).
    catch_up_batch: int = 50
    # The batches read for subscribers that resume, kept for others that
    # resume from the same id, take at most this many bytes a worker.
    catch_up_memory: int = 4 * 1024 * 1024
    # Event streams (SSE and WebSocket) a worker holds at once; one more is
    # refused with a 503 (http/admission.py). About 15 KiB and a file descriptor
    # each.
    max_streams: int = 2000


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
        self._read_connections(env)
        # Every variable read above: the settings, named nowhere else.
        self.setting_names = frozenset(env.names)
        self._set_knobs()

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
        # The name of every setting asked for, set or not.
        self.names: set[str] = set()

    def _get(self, name: str) -> str:
        self.names.add(name)
        return self._environ.get(name, '')

    def text(self, name: str, default: str) -> str:
        return self._get(name) or default

    def whole(
        self, name: str, default: int, minimum: int = 1, maximum: int | None = None
    ) -> int:
        raw = self._get(name).strip()
        if not raw:
            return default
        try:
            value = int(raw)
        except ValueError:
            value = minimum - 1
        if value < minimum or (maximum is not None and value > maximum):
            upper = f' up to {maximum}' if maximum is not None else ''
            raise ConfigError(
                f'{name} must be a whole number from {minimum}{upper}, not {raw!r}'
            )
        return value

    def seconds(self, name: str, default: float) -> float:
        raw = self._get(name).strip()
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

    def redis_url(self, name: str, default: str) -> str:
        url = self._get(name).strip() or default
        if urllib.parse.urlsplit(url).scheme not in _REDIS_SCHEMES:
            raise ConfigError(
                f'{name} must be a Redis URL such as redis://localhost:6379/0, '
                f'not {url!r}'
            )
        return url

    def secret(self, name: str) -> bytes | None:
        raw = self._get(name).strip()
        if not raw:
            return None
        if len(raw) < _MIN_SECRET_LENGTH:
            raise ConfigError(
                f'{name} must be at least {_MIN_SECRET_LENGTH} characters long '
                '(a random string: python3 -c "import secrets; '
                f'print(secrets.token_urlsafe())"), not one of {len(raw)}'
            )
        return raw.encode()


_MIN_SECRET_LENGTH = 16
_REDIS_SCHEMES = frozenset({'redis', 'rediss', 'unix'})
