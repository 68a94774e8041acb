"""Keys: what an answer is kept under, its representation included."""

from __future__ import annotations

from ..media import MEDIA_TYPES, preferred

# The representation kept under the bare path[?query].
_DEFAULT = MEDIA_TYPES[0]


def cache_key(target: str, accept: str | None) -> str:
    """Return the key of the answer to a GET of target (path[?query]).

    The media type the Accept header negotiates (`media.preferred`) is part
    of it, before the path, unless it is the default: JSON and every answer
    that does not vary are kept under the bare target. A path begins with
    `/`, so no path can spell another representation's key.
    """
    if accept is None:
        return target
    return _key(target, preferred(accept))


def variants(target: str) -> list[str]:
    """Return the keys of every representation of target (what a change drops)."""
    return [_key(target, media_type) for media_type in MEDIA_TYPES]


def _key(target: str, media_type: str) -> str:
    return target if media_type == _DEFAULT else f'{media_type} {target}'
