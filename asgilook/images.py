"""The HTTP resources: the image collection, single images and thumbnails."""

from __future__ import annotations

import hashlib
import uuid

import falcon
import falcon.asgi

from . import pages
from .config import Config
from .imaging import (
    MAX_SIDE,
    DamagedImageError,
    ImageTooLargeError,
    InvalidImageError,
    SideTooLongError,
    StoredImageError,
)
from .renderers import RenderError
from .store import (
    EmptyUploadError,
    Image,
    StorageFullError,
    Store,
    UploadTooLargeError,
    image_uri,
    thumbnail_uri,
)

# What never changes under its URL may be kept by any cache for a year.
IMMUTABLE = ('public', 'max-age=31536000', 'immutable')


class Images:
    """List, upload and download images."""

    def __init__(self, config: Config, store: Store) -> None:
        self._config = config
        self._store = store

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        page = pages.page_request(req)
        if page is None:
            images, version = await self._store.listing()
            resp.etag = version
        else:
            images, next_after = await self._store.page(page.after, page.limit)
            identity = [f'{image.path.name}@{image.modified}' for image in images]
            if next_after is not None:
                next_uri = page.next_uri(next_after)
                resp.set_header('Link', f'<{next_uri}>; rel="next"')
                identity.append(next_uri)
            # A page's tag is what it shows: unchanged by changes elsewhere.
            resp.etag = _digest('\n'.join(identity))
        resp.media = [image.serialize() for image in images]
        # The list changes with every upload and delete: ask before reusing it.
        resp.cache_control = ['no-cache']

    on_head = on_get

    async def on_get_image(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, image_id: uuid.UUID
    ) -> None:
        _canonical(req, image_uri(str(image_id)))
        image = await _find(self._store, image_id)
        try:
            resp.stream = await self._store.open(image)
        except FileNotFoundError as ex:
            await self._store.forget(image)
            raise _image_not_found() from ex
        _describe_file(resp, image)

    async def on_head_image(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, image_id: uuid.UUID
    ) -> None:
        _canonical(req, image_uri(str(image_id)))
        _describe_file(resp, await _find(self._store, image_id))

    async def on_delete_image(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, image_id: uuid.UUID
    ) -> None:
        _canonical(req, image_uri(str(image_id)))
        image = await _find(self._store, image_id)
        try:
            await self._store.delete(image)
        except FileNotFoundError as ex:
            raise _image_not_found() from ex
        # Every cached response that showed the image.
        resp.context.invalidate = [image.uri, '/images', *image.thumbnails()]
        resp.status = falcon.HTTP_NO_CONTENT

    async def on_post(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        limit = self._config.max_upload_size
        if req.content_length is not None and req.content_length > limit:
            raise _upload_too_large(limit)

        image_id = str(self._config.uuid_generator())
        try:
            image = await self._store.save(image_id, req.stream)
        except EmptyUploadError as ex:
            raise falcon.HTTPBadRequest(
                title='Empty upload',
                description='Send the bytes of an image file as the request body.',
            ) from ex
        except UploadTooLargeError as ex:
            raise _upload_too_large(limit) from ex
        except ImageTooLargeError as ex:
            width, height = ex.size
            raise falcon.HTTPContentTooLarge(
                title='Image too large',
                description=f'The image is {width}x{height} pixels; at most '
                f'{ex.max_pixels} pixels are accepted. Upload a smaller picture.',
            ) from ex
        except SideTooLongError as ex:
            width, height = ex.size
            raise falcon.HTTPContentTooLarge(
                title='Image too large',
                description=f'The image is {width}x{height} pixels; the longest '
                f'side a JPEG can hold is {MAX_SIDE} pixels. Upload a picture '
                f'whose sides are at most {MAX_SIDE} pixels.',
            ) from ex
        except DamagedImageError as ex:
            raise falcon.HTTPUnprocessableEntity(
                title='Damaged image',
                description='The image could not be decoded; it may be truncated '
                'or corrupt. Upload the complete, undamaged file.',
            ) from ex
        except InvalidImageError as ex:
            raise falcon.HTTPUnsupportedMediaType(
                title='Not an image',
                description='The body is not an image in a format asgilook reads. '
                'Upload a JPEG, PNG, GIF, WebP, TIFF, BMP or ICO file.',
            ) from ex
        except StorageFullError as ex:
            raise falcon.HTTPInsufficientStorage(
                title='Storage full',
                description='The server has no room to store this image now. '
                'Try again later, or upload a smaller file.',
            ) from ex

        resp.location = image.uri
        resp.media = image.serialize()
        resp.status = falcon.HTTP_201


class Thumbnails:
    """Render an image at one of the sizes of its thumbnail ladder."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def on_get(
        self,
        req: falcon.asgi.Request,
        resp: falcon.asgi.Response,
        image_id: uuid.UUID,
        width: int,
        height: int,
    ) -> None:
        _canonical(req, thumbnail_uri(str(image_id), (width, height)))
        image = await _find(self._store, image_id)
        if (width, height) not in image.thumbnail_sizes():
            raise falcon.HTTPNotFound(
                title='No such thumbnail',
                description=f'This image has no {width}x{height} thumbnail. '
                'Its "thumbnails" field in GET /images lists the sizes it has.',
            )

        try:
            resp.data = await self._store.make_thumbnail(image, (width, height))
        except FileNotFoundError as ex:
            await self._store.forget(image)
            raise _image_not_found() from ex
        except StoredImageError as ex:
            raise falcon.HTTPNotFound(
                title='No such image',
                description='The stored file of this image is damaged and cannot '
                'be shown. GET /images lists the images there are.',
            ) from ex
        except RenderError as ex:
            raise falcon.HTTPServiceUnavailable(
                title='Thumbnail not rendered',
                description='The process rendering this thumbnail stopped. '
                'Try again later.',
                retry_after=10,
            ) from ex
        _describe(resp, image, image.thumbnail_etag((width, height)))

    on_head = on_get


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _describe(resp: falcon.asgi.Response, image: Image, etag: str) -> None:
    """Set the headers of an image or thumbnail: JPEG, and never changing."""
    resp.content_type = falcon.MEDIA_JPEG
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


async def _find(store: Store, image_id: uuid.UUID) -> Image:
    image = await store.get(str(image_id))
    if image is None:
        raise _image_not_found()
    return image


def _image_not_found() -> falcon.HTTPNotFound:
    return falcon.HTTPNotFound(
        title='No such image',
        description='There is no image with this id. GET /images lists the images '
        'there are.',
    )


def _upload_too_large(limit: int) -> falcon.HTTPContentTooLarge:
    return falcon.HTTPContentTooLarge(
        title='Upload too large',
        description=f'Uploads may be at most {limit} bytes. Send a smaller file.',
    )
