"""Reading the environment's ASGI_LOOK_* variables: each checked as it is read.

What config.Config is made from. A value that is not one the variable
accepts is a ConfigError naming the variable and what it accepts, in the
words docs/configuration.md shows.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping

from .errors import ConfigError


class Environment:
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
