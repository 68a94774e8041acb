"""Media types: JSON, or MessagePack for a client that prefers it."""

from __future__ import annotations

import functools
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, Protocol

import falcon
import falcon.asgi
import falcon.media
import msgpack
from falcon.util import mediatypes

from ..errors import ClientGoneError
from .disconnects import Departure

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


class Items(Protocol):
    """What an array answered a batch at a time is read from (storage/listing.py)."""

    @property
    def count(self) -> int: ...

    def __aiter__(self) -> AsyncIterator[list[Any]]: ...

    async def close(self) -> None: ...


class ArrayStream:
    """An array sent a batch at a time, byte for byte as `resp.media` sends it.

    Each item is `serialize()`d (an image object, say) and encoded by the
    app's own handler of the media type; JSON's items are joined as
    Python's `json.dumps` joins a list's. What is being sent is let go by
    close() (Falcon calls it); a client that left (departure) is sent no
    more of it (ClientGoneError). The items' failure on the way (StorageError)
    is raised: before the answer has begun (while the cache reads it) it is
    answered as any error is; after, the server drops the connection, so
    that no client takes what it got for the whole list.
    """

    def __init__(
        self,
        items: Items,
        media_type: str,
        handlers: falcon.media.Handlers,
        departure: Departure | None = None,
    ) -> None:
        self._items = items
        self._departure = departure
        self._media_type = media_type
        self._handler = handlers[media_type]
        self._chunks = self._encoded()

    def __aiter__(self) -> ArrayStream:
        return self

    async def __anext__(self) -> bytes:
        return await anext(self._chunks)

    async def _encoded(self) -> AsyncGenerator[bytes, None]:
        encode = functools.partial(
            self._handler.serialize, content_type=self._media_type
        )
        json = self._media_type == JSON
        yield b'[' if json else _msgpack_array(self._items.count)
        separator = b''
        async for batch in self._items:
            if self._departure is not None and self._departure.gone:
                # Nobody reads the rest (and uvicorn sends nothing of it); an
                # error, so that no cache takes what came for the whole.
                raise ClientGoneError
            encoded = [encode(item.serialize()) for item in batch]
            if json:
                yield separator + b', '.join(encoded)
                separator = b', '
            else:
                yield b''.join(encoded)
        if json:
            yield b']'

    async def close(self) -> None:
        await self._chunks.aclose()
        await self._items.close()


def _msgpack_array(count: int) -> bytes:
    header: bytes = msgpack.Packer().pack_array_header(count)
    return header


async def no_body() -> AsyncIterator[bytes]:
    """The stream of a HEAD whose GET has no length: no Content-Length, no bytes.

    (Falcon says Content-Length: 0 for a HEAD with no stream; it never reads
    a HEAD's stream.)
    """
    yield b''
