"""The HTTP answer to each domain error: one table, one handler.

Resources raise the errors of `errors.py` and never catch them; `register`
hands every error of the table to Falcon, which sends it as docs/api.md's
JSON (`{"title": ..., "description": ...}`) with the table's status. A
description is a template: `{ex.limit}` is the attribute of the error raised.
The errors of Falcon's own routing are reworded here too.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import falcon
import falcon.asgi

from ..errors import (
    AsgilookError,
    BodyTimeoutError,
    ClientGoneError,
    CurrentMatchError,
    DamagedImageError,
    DeleteTokenInvalidError,
    DeleteTokenMissingError,
    EmptyUploadError,
    ExtraImagePartError,
    ImageIdTakenError,
    ImageNotFoundError,
    ImageTooLargeError,
    IncompleteBodyError,
    InvalidImageError,
    LongListsError,
    MalformedFormError,
    MissingImagePartError,
    PreconditionFailedError,
    RenderError,
    SideTooLongError,
    StorageFullError,
    StorageUnavailableError,
    StoredImageError,
    ThumbnailFormatError,
    ThumbnailNotFoundError,
    UploadTooLargeError,
)


@dataclasses.dataclass(frozen=True)
class Answer:
    """What a client is told of one kind of error."""

    status: str
    title: str
    description: str
    # Seconds after which the request may succeed (a Retry-After header).
    retry_after: int | None = None
    # How to authenticate, for a 401 (a WWW-Authenticate header).
    authenticate: str | None = None

    def error(self, ex: AsgilookError) -> falcon.HTTPError:
        headers = {}
        if self.authenticate is not None:
            headers['WWW-Authenticate'] = self.authenticate
        if self.retry_after is not None:
            headers['Retry-After'] = str(self.retry_after)
        return falcon.HTTPError(
            self.status,
            title=self.title,
            description=self.description.format(ex=ex),
            headers=headers,
        )


# The two ways to upload, as the 400s and the 415 of an upload tell them.
_HOW = (
    'as the request body (curl --data-binary @photo.jpg -H "Content-Type: '
    'image/jpeg"), or as the file part named image of a multipart/form-data '
    'form (curl -F image=@photo.jpg, or an HTML form with '
    'enctype="multipart/form-data" and <input type="file" name="image">)'
)


ERRORS: dict[type[AsgilookError], Answer] = {
    EmptyUploadError: Answer(
        falcon.HTTP_400,
        'Empty upload',
        f'The upload has no bytes. Send an image file {_HOW}.',
    ),
    MalformedFormError: Answer(
        falcon.HTTP_400,
        'Malformed form',
        'The body is not the multipart/form-data its Content-Type says '
        f'({{ex}}). Send an image file {_HOW}.',
    ),
    MissingImagePartError: Answer(
        falcon.HTTP_400,
        'No image in the form',
        'The form has no file part named image (other fields are ignored). '
        f'Send an image file {_HOW}.',
    ),
    ExtraImagePartError: Answer(
        falcon.HTTP_400,
        'More than one image in the form',
        'The form has more than one file part named image; an upload stores '
        'one image. Nothing was stored: send each image in a request of its own.',
    ),
    IncompleteBodyError: Answer(
        falcon.HTTP_400,
        'Upload incomplete',
        'The body ended before all of it arrived (the connection closed, or '
        'fewer bytes came than Content-Length said). Nothing was stored; send '
        'the whole file again.',
    ),
    BodyTimeoutError: Answer(
        falcon.HTTP_408,
        'Upload stalled',
        'No byte of the body arrived for {ex.seconds:g} seconds. Nothing was '
        'stored; send the file again without pausing.',
    ),
    UploadTooLargeError: Answer(
        falcon.HTTP_413,
        'Upload too large',
        'Uploads may be at most {ex.limit} bytes. Send a smaller file.',
    ),
    ImageTooLargeError: Answer(
        falcon.HTTP_413,
        'Image too large',
        'The image is {ex.width}x{ex.height} pixels; at most {ex.max_pixels} '
        'pixels are accepted. Upload a smaller picture.',
    ),
    SideTooLongError: Answer(
        falcon.HTTP_413,
        'Image too large',
        'The image is {ex.width}x{ex.height} pixels; the longest side a JPEG can '
        'hold is {ex.max_side} pixels. Upload a picture whose sides are at most '
        '{ex.max_side} pixels.',
    ),
    InvalidImageError: Answer(
        falcon.HTTP_415,
        'Not an image',
        'The upload is not an image in a format asgilook reads. Upload a JPEG, '
        f'PNG, GIF, WebP, AVIF, HEIC, TIFF, BMP or ICO file, {_HOW}.',
    ),
    DamagedImageError: Answer(
        falcon.HTTP_422,
        'Damaged image',
        'The image could not be decoded; it may be truncated or corrupt. Upload '
        'the complete, undamaged file.',
    ),
    ImageNotFoundError: Answer(
        falcon.HTTP_404,
        'No such image',
        'There is no image with this id. GET /images lists the images there are.',
    ),
    StoredImageError: Answer(
        falcon.HTTP_404,
        'No such image',
        'The stored file of this image is damaged and cannot be shown. GET '
        '/images lists the images there are.',
    ),
    ThumbnailNotFoundError: Answer(
        falcon.HTTP_404,
        'No such thumbnail',
        'This image has no {ex.width}x{ex.height} thumbnail. Its "thumbnails" '
        'field in GET /images lists the sizes it has.',
    ),
    ThumbnailFormatError: Answer(
        falcon.HTTP_404,
        'No such thumbnail',
        'Thumbnails are rendered as .jpeg, .webp and .avif: the "thumbnails", '
        '"thumbnails_webp" and "thumbnails_avif" fields in GET /images list them.',
    ),
    # Sent to nobody: an answer must be given, nginx's status says why.
    ClientGoneError: Answer(
        '499 Client Closed Request',
        'Client gone',
        'The client left before its answer was complete.',
    ),
    DeleteTokenMissingError: Answer(
        falcon.HTTP_401,
        'Delete token required',
        'Only the uploader may delete an image: send the delete_token that '
        'POST /images answered for it, as Authorization: Bearer <token>.',
        authenticate='Bearer realm="asgilook"',
    ),
    DeleteTokenInvalidError: Answer(
        falcon.HTTP_403,
        'Not allowed to delete',
        'This is not the delete token of this image (or the service key changed '
        'since it was issued). Nothing was deleted.',
    ),
    PreconditionFailedError: Answer(
        falcon.HTTP_412,
        'Precondition failed',
        'If-Match or If-Unmodified-Since does not describe what is here now: it '
        'changed since you fetched it, or the tag or date is not its own. Nothing '
        'was done. GET it again to learn its current ETag and Last-Modified, and '
        'send those.',
    ),
    CurrentMatchError: Answer(
        falcon.HTTP_412,
        'Precondition failed',
        'If-None-Match names what is here now (it is *, or its current ETag): '
        'the request was to be done only if it did not. Nothing was done. Send '
        'If-Match with its current ETag instead, or neither.',
    ),
    StorageFullError: Answer(
        falcon.HTTP_507,
        'Storage full',
        'The server has no room to store this change now. Nothing was changed; '
        'try again later (or upload a smaller file).',
    ),
    StorageUnavailableError: Answer(
        falcon.HTTP_503,
        'Storage unavailable',
        'The server cannot read or write images now. Try again later.',
        retry_after=60,
    ),
    LongListsError: Answer(
        falcon.HTTP_503,
        'Too many whole lists',
        'The server sends as many whole lists of its catalog at once as it '
        'takes ({ex.limit} a worker), and the catalog is long. Page through '
        'it: GET /images?limit=1000, and follow the Link header. Or ask again '
        'in a few seconds.',
        retry_after=5,
    ),
    RenderError: Answer(
        falcon.HTTP_503,
        'Thumbnail not rendered',
        'The process rendering this thumbnail stopped. Try again later.',
        retry_after=10,
    ),
    ImageIdTakenError: Answer(
        falcon.HTTP_503,
        'No new image id',
        'The server found no free id for this image. Nothing was stored; try '
        'again later.',
        retry_after=60,
    ),
}


def register(app: falcon.asgi.App[Any, Any]) -> None:
    """Answer every error of the table, and Falcon's routing errors, as above."""
    for kind in ERRORS:
        app.add_error_handler(kind, _answer)
    app.add_error_handler(falcon.HTTPRouteNotFound, _route_not_found)
    app.add_error_handler(falcon.HTTPMethodNotAllowed, _method_not_allowed)
    app.set_error_serializer(_serialize)


async def _answer(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response,
    ex: AsgilookError,
    params: dict[str, Any],
) -> None:
    # The most specific entry: Falcon calls this for subclasses as well.
    answer = next(ERRORS[kind] for kind in type(ex).__mro__ if kind in ERRORS)
    raise answer.error(ex) from ex


async def _route_not_found(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response,
    ex: falcon.HTTPRouteNotFound,
    params: dict[str, Any],
) -> None:
    raise falcon.HTTPNotFound(
        title='No such resource',
        description='asgilook serves /images, /images/{id}.jpeg, '
        '/thumbnails/{id}/{width}x{height}.jpeg (or .webp, .avif) and /events.',
    ) from ex


async def _method_not_allowed(
    req: falcon.asgi.Request,
    resp: falcon.asgi.Response,
    ex: falcon.HTTPMethodNotAllowed,
    params: dict[str, Any],
) -> None:
    # Falcon's 405 names what the route answers in its Allow header.
    allowed = dict(ex.headers or {})['Allow']
    raise falcon.HTTPMethodNotAllowed(
        allowed.split(', '),
        title='Method not allowed',
        description=f'{req.path} answers {allowed}.',
    ) from ex


def _serialize(
    req: falcon.asgi.Request, resp: falcon.asgi.Response, exception: falcon.HTTPError
) -> None:
    """Send every error as the JSON of docs/api.md, whatever the client accepts."""
    resp.data = exception.to_json()
    resp.content_type = falcon.MEDIA_JSON
