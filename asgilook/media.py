"""Media types: JSON, or MessagePack for a client that prefers it."""

from __future__ import annotations

import functools
from typing import Any

import falcon
import falcon.asgi
import falcon.media
from falcon.util import mediatypes

JSON = falcon.MEDIA_JSON
MSGPACK = falcon.MEDIA_MSGPACK
# What the list and the upload's answer are sent as; the first is the
# default: the answer to `*/*`, to no Accept, and to an Accept of neither.
MEDIA_TYPES = (JSON, MSGPACK)
# What a representation's ETag ends with: tags name one representation.
_TAG_SUFFIXES = {JSON: '', MSGPACK: '.msgpack'}


def register(app: falcon.asgi.App[Any, Any]) -> None:
    """Let responders answer `resp.media` as MessagePack too (JSON is Falcon's)."""
    app.resp_options.media_handlers[MSGPACK] = falcon.media.MessagePackHandler()


def negotiate(req: falcon.asgi.Request, resp: falcon.asgi.Response) -> str:
    """Answer in the media type the client prefers; return it.

    The answer varies with the Accept header (`Vary: Accept`), whichever
    type it is sent as.
    """
    media_type = req.client_prefers(MEDIA_TYPES) or JSON
    resp.content_type = media_type
    resp.vary = ('Accept',)
    return media_type


@functools.lru_cache(maxsize=256)
def preferred(accept: str) -> str:
    """Return the media type `negotiate` answers a request of this Accept with.

    The same decision from the header's text alone (as the cache needs it,
    before Falcon makes a request): a client sends the same few headers
    again and again, so each is decided once.
    """
    try:
        return mediatypes.best_match(MEDIA_TYPES, accept or '*/*') or JSON
    except ValueError:
        # An Accept that does not parse is ignored, as client_prefers does.
        return JSON


def etag(tag: str, media_type: str) -> str:
    """Return the ETag of one representation of what `tag` names."""
    return tag + _TAG_SUFFIXES[media_type]
