"""What asgilook raises on purpose: one tree of domain errors.

Errors with details keep them as attributes and as `args` (so that they
cross back from a render process pickled, whole).

Modules raise these and never an HTTP error; `http.errors.ERRORS` maps each
one a client can meet to a status, a title and a description (one table, one
handler). The tree::

    AsgilookError
    ├── ConfigError               a setting has a value asgilook cannot use
    ├── ServiceKeyError           the service key cannot be read or made
    ├── RequestError              the client must change the request (4xx)
    │   ├── BodyError             the body did not arrive whole
    │   │   ├── IncompleteBodyError   it ended early                 400
    │   │   └── BodyTimeoutError      it stalled                     408
    │   ├── EmptyUploadError      an upload of no bytes              400
    │   ├── UploadTooLargeError   more bytes than max_upload_size    413
    │   ├── FormError             a form that is not one image's     400
    │   │   ├── MalformedFormError    not multipart/form-data at all
    │   │   ├── MissingImagePartError no file part named image
    │   │   └── ExtraImagePartError   two of them
    │   ├── ImageError            an upload asgilook does not store
    │   │   ├── InvalidImageError     no image of a format it reads  415
    │   │   ├── DamagedImageError     an image that does not decode  422
    │   │   ├── ImageTooLargeError    more pixels than allowed       413
    │   │   └── SideTooLongError      a side no JPEG can hold        413
    │   ├── ImageNotFoundError    no image of that id (or its file is gone) 404
    │   │   └── StoredImageError  its stored file cannot be shown (damaged) 404
    │   ├── ThumbnailNotFoundError    not a size of the image's ladder   404
    │   ├── ThumbnailFormatError  not a format thumbnails are rendered in 404
    │   ├── DeleteTokenMissingError   a DELETE without a bearer token    401
    │   ├── DeleteTokenInvalidError   ... with one not the image's       403
    │   ├── ClientGoneError       the client left before its answer came 499
    │   └── PreconditionFailedError   If-Match or If-Unmodified-Since fails 412
    │       └── CurrentMatchError     a change's If-None-Match names it  412
    ├── ServiceError              the server cannot answer now (5xx)
    │   ├── StorageError          the storage directory fails
    │   │   ├── StorageFullError      no room for the change         507
    │   │   └── StorageUnavailableError   not readable or writable   503
    │   ├── RenderError           the process rendering died         503
    │   ├── ImageIdTakenError     every id the generator gave is taken 503
    │   └── LongListsError        as many long lists sent as taken   503
    └── internal: never reach a client, the module that meets them decides
        ├── CatalogError          SQLite failed (store: StorageError)
        │   └── CatalogFullError  ... for want of room
        ├── BrokenFileError       an image container ends early (DamagedImageError)
        ├── JPEGError             not a whole JPEG
        └── UnsignedEntryError    Redis holds an entry not signed by this service
"""

from __future__ import annotations


class AsgilookError(Exception):
    """Anything asgilook raises on purpose."""


class ConfigError(AsgilookError, ValueError):
    """A setting in the environment has a value asgilook cannot use."""


class ServiceKeyError(AsgilookError):
    """The service key in the storage directory cannot be read or made."""


class RequestError(AsgilookError):
    """The request cannot be answered as it is: the client must change it."""


class BodyError(RequestError):
    """The body of a request did not arrive whole."""


class IncompleteBodyError(BodyError):
    """The body ended (the connection closed) before all of it came."""


class BodyTimeoutError(BodyError):
    """No byte of the body arrived for `seconds`."""

    def __init__(self, seconds: float) -> None:
        super().__init__(seconds)
        self.seconds = seconds

    def __str__(self) -> str:
        return f'no byte of the body arrived for {self.seconds:g} seconds'


class EmptyUploadError(RequestError):
    """The upload has no bytes."""


class UploadTooLargeError(RequestError):
    """The upload is larger than `limit` bytes."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    def __str__(self) -> str:
        return f'the upload is larger than {self.limit} bytes'


class FormError(RequestError):
    """A multipart/form-data upload is not a form of one image."""


class MalformedFormError(FormError):
    """The body is not the multipart/form-data its Content-Type says."""


class MissingImagePartError(FormError):
    """The form has no file part named image."""


class ExtraImagePartError(FormError):
    """The form has more than one file part named image."""


class ImageError(RequestError):
    """The upload is not an image asgilook stores."""


class InvalidImageError(ImageError):
    """The upload is not an image in a format asgilook reads."""


class DamagedImageError(ImageError):
    """The upload is an image that does not decode (truncated, corrupt)."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than `max_pixels`."""

    def __init__(self, size: tuple[int, int], max_pixels: int) -> None:
        super().__init__(size, max_pixels)
        self.width, self.height = size
        self.max_pixels = max_pixels

    def __str__(self) -> str:
        return f'{self.width}x{self.height} is more than {self.max_pixels} pixels'


class SideTooLongError(ImageError):
    """A side of the image is longer than a JPEG can hold."""

    def __init__(self, size: tuple[int, int], max_side: int) -> None:
        super().__init__(size, max_side)
        self.width, self.height = size
        self.max_side = max_side

    def __str__(self) -> str:
        return f'{self.width}x{self.height} has a side over {self.max_side} pixels'


class ImageNotFoundError(RequestError):
    """There is no image of this id (any more)."""


class StoredImageError(ImageNotFoundError):
    """The stored file of an image cannot be shown (damaged since it was stored)."""


class ThumbnailNotFoundError(RequestError):
    """The image has no thumbnail of this size."""

    def __init__(self, size: tuple[int, int]) -> None:
        super().__init__(size)
        self.width, self.height = size

    def __str__(self) -> str:
        return f'no {self.width}x{self.height} thumbnail'


class ThumbnailFormatError(RequestError):
    """Thumbnails are not rendered in the format a URL's extension names."""


class DeleteTokenMissingError(RequestError):
    """A DELETE carries no bearer token (`Authorization: Bearer <token>`)."""


class ClientGoneError(RequestError):
    """The client left while its answer was computed: compute no more of it."""


class DeleteTokenInvalidError(RequestError):
    """A DELETE carries a token that is not the image's delete token."""


class PreconditionFailedError(RequestError):
    """If-Match or If-Unmodified-Since does not describe the current representation."""


class CurrentMatchError(PreconditionFailedError):
    """A change's If-None-Match names the current representation (or is `*`)."""


class ServiceError(AsgilookError):
    """The server cannot answer now; the request may succeed later."""


class StorageError(ServiceError):
    """The storage directory failed a read or a write."""


class StorageFullError(StorageError):
    """The storage directory has no room for the change."""


class StorageUnavailableError(StorageError):
    """The storage directory cannot be read or written (missing, read-only, failing)."""


class RenderError(ServiceError):
    """The process rendering a thumbnail died."""


class ImageIdTakenError(ServiceError):
    """The uuid_generator answered only ids that images are stored under."""

    def __init__(self, tries: int) -> None:
        super().__init__(tries)
        self.tries = tries

    def __str__(self) -> str:
        return f'the uuid_generator answered {self.tries} ids already taken'


class LongListsError(ServiceError):
    """As many whole lists of a long catalog are sent now as a worker takes."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit


class CatalogError(AsgilookError):
    """The catalog's database failed; the store says what it means."""


class CatalogFullError(CatalogError):
    """The catalog's database failed for want of room."""


class BrokenFileError(AsgilookError):
    """An image container ends before its declared parts (a truncated file)."""


class JPEGError(AsgilookError, ValueError):
    """The bytes are not a whole JPEG."""


class UnsignedEntryError(AsgilookError):
    """A cache entry is not signed by this service's key for the path it is under."""
