"""The HTTP resources: the image collection, single images and thumbnails."""

from __future__ import annotations

import contextlib
import hashlib
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager

import falcon
import falcon.asgi

from .auth.deletes import DeleteTokens, require_delete_token
from .config import Config
from .errors import (
    CurrentMatchError,
    ImageNotFoundError,
    PreconditionFailedError,
    ThumbnailFormatError,
    ThumbnailNotFoundError,
    UploadTooLargeError,
)
from .http import forms, media, paging
from .http.conditional import none_match_holds, preconditions_hold
from .http.disconnects import LISTENER, Listener
from .imaging.formats import THUMBNAIL_FORMATS, ThumbnailFormat
from .store import Image, Store, image_uri, thumbnail_uri

# What never changes under its URL may be kept by any cache for a year.
IMMUTABLE = ('public', 'max-age=31536000', 'immutable')
# Counts and times a render in a format (metrics/).
Rendering = Callable[[str], AbstractContextManager[None]]


class Images:
    """List, upload, download and delete images."""

    def __init__(
        self, config: Config, store: Store, delete_tokens: DeleteTokens
    ) -> None:
        self._config = config
        self._store = store
        # Read by the hook that guards DELETE (deletes.require_delete_token).
        self.delete_tokens = delete_tokens

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        page = paging.page_request(req)
        media_type = media.negotiate(req, resp)
        if page is None:
            await self._list(req, resp, media_type)
        else:
            await self._page(resp, page, media_type)
        # The list changes with every upload and delete: ask before reusing it.
        resp.cache_control = ['no-cache']

    on_head = on_get

    async def _list(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, media_type: str
    ) -> None:
        """Answer the whole list: in one piece, or a batch at a time if long."""
        listing = await self._store.listing(stream=req.method == 'GET')
        # JSON or MessagePack: each has a tag of its own.
        resp.etag = media.etag(listing.version, media_type)
        if listing.images is not None:
            resp.media = [image.serialize() for image in listing.images]
        elif listing.batches is not None:
            handlers = resp.options.media_handlers
            listener: Listener | None = req.scope.get(LISTENER)
            resp.stream = media.ArrayStream(
                listing.batches,
                media_type,
                handlers,
                None if listener is None else listener.listen(),
            )
        else:
            resp.stream = media.no_body()

    async def _page(
        self, resp: falcon.asgi.Response, page: paging.PageRequest, media_type: str
    ) -> None:
        images, next_after = await self._store.page(page.after, page.limit, page.newest)
        identity = [f'{image.version}@{image.modified}' for image in images]
        if next_after is not None:
            next_uri = page.next_uri(next_after)
            resp.set_header('Link', f'<{next_uri}>; rel="next"')
            identity.append(next_uri)
        # A page's tag is what it shows: unchanged by changes elsewhere.
        resp.etag = media.etag(_digest('\n'.join(identity)), media_type)
        resp.media = [image.serialize() for image in images]

    async def on_get_image(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, image_id: uuid.UUID
    ) -> None:
        image = await _find(self._store, req, image_uri(str(image_id)))
        resp.stream = await self._store.open(image)
        _describe_file(resp, image)

    async def on_head_image(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, image_id: uuid.UUID
    ) -> None:
        _describe_file(resp, await _find(self._store, req, image_uri(str(image_id))))

    @falcon.before(require_delete_token)
    async def on_delete_image(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, image_id: uuid.UUID
    ) -> None:
        image = await _find(self._store, req, image_uri(str(image_id)))
        # The validators a GET of the image answers (_describe).
        etag = f'"{image.etag}"'
        if not preconditions_hold(req, etag, falcon.dt_to_http(image.modified)):
            raise PreconditionFailedError
        if not none_match_holds(req, etag):
            raise CurrentMatchError
        await self._store.delete(image)
        resp.status = falcon.HTTP_NO_CONTENT

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        limit = self._config.max_upload_size
        length = req.content_length
        if length is not None and length > forms.body_limit(req, limit):
            raise UploadTooLargeError(limit)
        if forms.is_form(req):
            async with forms.image_of(req, limit) as chunks:
                image = await self._store.save(chunks)
        else:
            image = await self._store.save(req.stream)
        resp.location = image.uri
        media.negotiate(req, resp)
        # Only here: never in a list, nor in an answer a cache keeps.
        resp.media = {
            **image.serialize(),
            'delete_token': await self.delete_tokens.issue(image.image_id),
        }
        resp.status = falcon.HTTP_201


class Thumbnails:
    """Render an image at one of the sizes of its thumbnail ladder, in a format."""

    def __init__(self, store: Store, rendering: Rendering | None = None) -> None:
        self._store = store
        self._rendering = rendering or _not_counted

    async def on_get(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        image_id: uuid.UUID,
        width: int,
        height: int,
        extension: str,
    ) -> None:
        kind = _thumbnail_format(extension)
        uri = thumbnail_uri(str(image_id), (width, height), kind.extension)
        image = await _find(self._store, req, uri)
        if (width, height) not in image.thumbnail_sizes():
            raise ThumbnailNotFoundError((width, height))
        with self._rendering(kind.extension):
            resp.data = await self._store.make_thumbnail(
                image, (width, height), kind.extension
            )
        etag = image.thumbnail_etag((width, height), kind.extension)
        _describe(resp, image, etag, kind.media_type)

    on_head = on_get


class Versions:
    """What each answer the cache keeps is computed from now, asked of the store.

    None for a spelling of a URL that is answered by a redirect: nothing
    to keep.
    """

    def __init__(self, store: Store) -> None:
        self._store = store

    async def of_list(self, req: falcon.asgi.Request) -> str | None:
        """The list and its pages: the catalog's version."""
        return await self._store.catalog_version()

    async def of_image(
        self, req: falcon.asgi.Request, image_id: uuid.UUID
    ) -> str | None:
        """An image: its stored JPEG."""
        return await _image_version(self._store, req, image_uri(str(image_id)))

    async def of_thumbnail(
        self,
        req: falcon.asgi.Request,
        image_id: uuid.UUID,
        width: int,
        height: int,
        extension: str,
    ) -> str | None:
        """A thumbnail, in any format: the stored JPEG of its image."""
        uri = thumbnail_uri(str(image_id), (width, height), extension)
        return await _image_version(self._store, req, uri)

    async def shown_with_image(
        self, req: falcon.asgi.Request, image_id: uuid.UUID
    ) -> list[str]:
        """Where else a change of an image shows: the list, its thumbnails."""
        image = await self._store.get(str(image_id))
        return [] if image is None else ['/images', *image.all_thumbnails()]


def _not_counted(kind: str) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _thumbnail_format(extension: str) -> ThumbnailFormat:
    """Return the format a thumbnail's URL names (in capitals: its one URL's)."""
    kind = THUMBNAIL_FORMATS.get(extension.lower())
    if kind is None:
        raise ThumbnailFormatError
    return kind


def _describe(
    resp: falcon.asgi.Response,
    image: Image,
    etag: str,
    media_type: str = falcon.MEDIA_JPEG,
) -> None:
    """Set the headers of an image or thumbnail: its type, and never changing."""
    resp.content_type = media_type
    resp.etag = etag
    resp.last_modified = image.modified
    resp.cache_control = IMMUTABLE


def _describe_file(resp: falcon.asgi.Response, image: Image) -> None:
    """Set the headers of a stored image, whether its bytes follow or not."""
    _describe(resp, image, image.etag)
    resp.content_length = image.length


def _canonical(req: falcon.asgi.Request, uri: str) -> None:
    """Send another spelling of a resource's URL to its one URL (308).

    Route converters take `0640`, `+640` or an id in capitals for the same
    resource, and a query is the key of another answer to a cache; answering
    each spelling itself would render and cache it again.
    """
    if req.path != uri or req.query_string:
        raise falcon.HTTPPermanentRedirect(uri)


async def _find(store: Store, req: falcon.asgi.Request, uri: str) -> Image:
    """Return the image whose one URL (or its thumbnail's) is uri."""
    _canonical(req, uri)
    image = await store.get(_image_id(uri))
    if image is None:
        raise ImageNotFoundError(uri)
    return image


async def _image_version(
    store: Store, req: falcon.asgi.Request, uri: str
) -> str | None:
    if req.path != uri or req.query_string:
        # Answered by a redirect: nothing to keep.
        return None
    return await store.image_version(_image_id(uri))


def _image_id(uri: str) -> str:
    # /images/{id}.jpeg or /thumbnails/{id}/{size}.{extension}, made by
    # image_uri or thumbnail_uri: the id is the third part.
    return uri.split('/')[2].removesuffix('.jpeg')
