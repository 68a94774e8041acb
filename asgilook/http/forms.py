"""Uploads as HTML forms and `curl -F` send them: the file part `image` of a form.

A `multipart/form-data` body is read with Falcon's own multipart handler, as
it arrives: the bytes of the file part named `image` go to the store as a
raw body's do (into the same spool, never whole in memory), and the rest of
the form is read through, unkept, before the upload is converted. So a
form of two images, or of none, is refused before anything is stored.
Other fields (a submit button's name, a CSRF token) are ignored, within
FORM_ALLOWANCE bytes: a page's form may carry them, and they say nothing
of the image.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import falcon
import falcon.asgi
from falcon.asgi.reader import BufferedReader
from falcon.media.multipart import MultipartParseError
from falcon.util import mediatypes

from ..errors import (
    ExtraImagePartError,
    MalformedFormError,
    MissingImagePartError,
    UploadTooLargeError,
)

# The name of the form's file part that holds the image.
FIELD = 'image'
# The bytes a form may hold beyond its image's: its boundaries, the headers
# of its parts, the fields it ignores.
FORM_ALLOWANCE = 64 * 1024


def is_form(req: falcon.asgi.Request) -> bool:
    """Whether a request's body is a multipart/form-data form."""
    media_type, _ = mediatypes.parse_header(req.content_type or '')
    return media_type.lower() == falcon.MEDIA_MULTIPART


def body_limit(req: falcon.asgi.Request, max_upload_size: int) -> int:
    """Return the most bytes the body of an upload may hold, form or raw."""
    return max_upload_size + FORM_ALLOWANCE if is_form(req) else max_upload_size


@contextlib.asynccontextmanager
async def image_of(
    req: falcon.asgi.Request, max_upload_size: int
) -> AsyncIterator[AsyncIterator[bytes]]:
    """Lend the bytes of a form's one file part named image, as they arrive.

    The iteration ends once the whole form is read; MissingImagePartError
    if it holds no such part, ExtraImagePartError if two,
    MalformedFormError if it is not a form, UploadTooLargeError if it holds
    more than FORM_ALLOWANCE bytes beyond max_upload_size.
    """
    handler = req.options.media_handlers[falcon.MEDIA_MULTIPART]
    body = BufferedReader(_bounded(req.stream, max_upload_size))
    try:
        form = await handler.deserialize_async(
            body, req.content_type, req.content_length
        )
    except falcon.HTTPInvalidHeader as ex:
        # A Content-Type without its boundary.
        raise MalformedFormError(ex.description) from ex
    async with contextlib.aclosing(_image_chunks(form)) as chunks:
        yield chunks


async def _image_chunks(form: Any) -> AsyncGenerator[bytes, None]:
    found = False
    try:
        async for part in form:
            # A field named image that is no file (no filename) is no image.
            if part.name != FIELD or part.filename is None:
                continue
            if found:
                raise ExtraImagePartError
            found = True
            async for chunk in part.stream:
                yield chunk
    except MultipartParseError as ex:
        raise MalformedFormError(ex.description) from ex
    if not found:
        raise MissingImagePartError


async def _bounded(
    stream: falcon.asgi.BoundedStream, max_upload_size: int
) -> AsyncIterator[bytes]:
    """Pass a form's body on; UploadTooLargeError past its allowance."""
    received = 0
    async for chunk in stream:
        received += len(chunk)
        if received > max_upload_size + FORM_ALLOWANCE:
            raise UploadTooLargeError(max_upload_size)
        yield chunk
