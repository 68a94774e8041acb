"""Settings of asgilook, read from the environment once."""

from __future__ import annotations

import os
import urllib.parse
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import redis.asyncio


class ConfigError(ValueError):
    """A setting in the environment has a value asgilook cannot use."""


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

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ

        self.storage_path: Any = env.get('ASGI_LOOK_STORAGE_PATH') or (
            self.DEFAULT_STORAGE_PATH
        )
        self.min_thumb_size: int = _positive_int(
            env, 'ASGI_LOOK_MIN_THUMB_SIZE', self.DEFAULT_MIN_THUMB_SIZE
        )
        self.redis_host: str = _redis_url(
            env, 'ASGI_LOOK_REDIS_HOST', self.DEFAULT_REDIS_HOST
        )
        self.max_upload_size: int = _positive_int(
            env, 'ASGI_LOOK_MAX_UPLOAD_SIZE', self.DEFAULT_MAX_UPLOAD_SIZE
        )
        self.max_image_pixels: int = _positive_int(
            env, 'ASGI_LOOK_MAX_IMAGE_PIXELS', self.DEFAULT_MAX_IMAGE_PIXELS
        )
        self.image_workers: int = _positive_int(
            env, 'ASGI_LOOK_IMAGE_WORKERS', self.DEFAULT_IMAGE_WORKERS
        )
        self.render_processes: int = _positive_int(
            env,
            'ASGI_LOOK_RENDER_PROCESSES',
            self.DEFAULT_RENDER_PROCESSES,
            minimum=0,
        )
        self.jpeg_quality: int = _positive_int(
            env, 'ASGI_LOOK_JPEG_QUALITY', self.DEFAULT_JPEG_QUALITY, maximum=100
        )
        self.redis_timeout: float = _positive_number(
            env, 'ASGI_LOOK_REDIS_TIMEOUT', self.DEFAULT_REDIS_TIMEOUT
        )
        self.memory_cache_size: int = _positive_int(
            env,
            'ASGI_LOOK_MEMORY_CACHE_SIZE',
            self.DEFAULT_MEMORY_CACHE_SIZE,
            minimum=0,
        )
        self.upload_memory: int = _positive_int(
            env,
            'ASGI_LOOK_UPLOAD_MEMORY',
            self.DEFAULT_UPLOAD_MEMORY,
            minimum=0,
        )
        self.body_timeout: float = _positive_number(
            env, 'ASGI_LOOK_BODY_TIMEOUT', self.DEFAULT_BODY_TIMEOUT
        )
        # The key that signs what asgilook keeps in Redis; None: the one kept
        # in the storage directory (made at the first start).
        self.secret: bytes | None = _secret(env, 'ASGI_LOOK_SECRET')
        self.redis_from_url: Callable[..., Any] = self.DEFAULT_REDIS_FROM_URL
        self.uuid_generator: Callable[[], uuid.UUID] = self.DEFAULT_UUID_GENERATOR


def _positive_int(
    env: Mapping[str, str],
    name: str,
    default: int,
    maximum: int | None = None,
    minimum: int = 1,
) -> int:
    raw = env.get(name, '').strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum or (maximum is not None and value > maximum):
        upper = f' up to {maximum}' if maximum is not None else ''
        raise ConfigError(
            f'{name} must be a whole number from {minimum}{upper}, not {env[name]!r}'
        )
    return value


def _positive_number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, '').strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0.0
    # Also refuses nan and inf: neither bounds a wait.
    if not 0 < value < float('inf'):
        raise ConfigError(
            f'{name} must be a number of seconds above 0, not {env[name]!r}'
        )
    return value


def _redis_url(env: Mapping[str, str], name: str, default: str) -> str:
    url = env.get(name, '').strip() or default
    if urllib.parse.urlsplit(url).scheme not in _REDIS_SCHEMES:
        raise ConfigError(
            f'{name} must be a Redis URL such as redis://localhost:6379/0, not {url!r}'
        )
    return url


def _secret(env: Mapping[str, str], name: str) -> bytes | None:
    raw = env.get(name, '').strip()
    if not raw:
        return None
    if len(raw) < _MIN_SECRET_LENGTH:
        raise ConfigError(
            f'{name} must be at least {_MIN_SECRET_LENGTH} characters long '
            '(a random string: python3 -c "import secrets; '
            'print(secrets.token_urlsafe())"), not one of {len(raw)}'
        )
    return raw.encode()


_MIN_SECRET_LENGTH = 16
_REDIS_SCHEMES = frozenset({'redis', 'rediss', 'unix'})
