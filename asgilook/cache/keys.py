"""Keys: what an answer is kept under, its representation included."""

from __future__ import annotations

from ..http.media import MEDIA_TYPES, preferred

# The representation kept under the bare path[?query].
_DEFAULT = MEDIA_TYPES[0]


def cache_key(target: str, accept: str | None, varying: frozenset[str]) -> str:
    """Return the key of the answer to a GET of target (path[?query]).

    For a path whose answer varies by Accept (one of `varying`), the media
    type the header negotiates (`media.preferred`) is part of it, before
    the path, unless it is the default: JSON, and every answer that does not
    vary (an image, a thumbnail: one file for every client), are kept under
    the bare target. A path begins with `/`, so no path can spell another
    representation's key.
    """
    if accept is None or _path(target) not in varying:
        return target
    return _key(target, preferred(accept))


def variants(target: str, varying: frozenset[str]) -> list[str]:
    """Return the keys of every representation of target (what a change drops)."""
    if _path(target) not in varying:
        return [target]
    return [_key(target, media_type) for media_type in MEDIA_TYPES]


def _path(target: str) -> str:
    return target.partition('?')[0]


def _key(target: str, media_type: str) -> str:
    return target if media_type == _DEFAULT else f'{media_type} {target}'
