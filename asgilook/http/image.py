"""The image object of the HTTP API: its URLs, validators, JSON and thumbnail ladder."""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Iterator
from typing import Any

from ..config import Config
from ..imaging import convert, formats
from ..imaging.screening import TILE_BOUND, tile_size


def image_uri(image_id: str) -> str:
    """Return the one URL of the stored JPEG of an image."""
    return f'/images/{image_id}.jpeg'


def thumbnail_uri(image_id: str, size: tuple[int, int], extension: str = 'jpeg') -> str:
    """Return the one URL of an image's thumbnail at size, in a format."""
    return f'/thumbnails/{image_id}/{size[0]}x{size[1]}.{extension}'


class Image:
    """One stored image: its identity, size and the URIs it is served under."""

    def __init__(
        self,
        config: Config,
        image_id: str,
        size: tuple[int, int],
        modified: datetime.datetime | None = None,
        length: int = 0,
        version: str = '',
    ) -> None:
        self._config = config
        self.image_id = image_id
        self.size = size
        self.modified = modified or datetime.datetime.now(datetime.UTC)
        self.length = length
        # What the image's answers are computed from: the name of its stored
        # JPEG, which holds the id, the size and the length (Store.version):
        # another JPEG under the same id has another name.
        self.version = version

    @property
    def uri(self) -> str:
        """The one URL of the image's stored JPEG."""
        return image_uri(self.image_id)

    @property
    def etag(self) -> str:
        """A strong validator of the stored file: another file, another tag."""
        identity = f'{self.version}@{self.modified.isoformat()}'
        return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()

    def thumbnail_etag(self, size: tuple[int, int], extension: str = 'jpeg') -> str:
        """A strong validator of the thumbnail of this image at size, in a format."""
        kind = formats.THUMBNAIL_FORMATS[extension]
        rendering = kind.identity(formats.quality(self._config, extension))
        identity = f'{self.etag}/{size[0]}x{size[1]}/{rendering}/{convert.RENDERING}'
        return hashlib.blake2b(identity.encode(), digest_size=16).hexdigest()

    def serialize(self) -> dict[str, Any]:
        """Return the image object of the HTTP API."""
        sizes = self.thumbnail_sizes()
        return {
            'id': self.image_id,
            'image': self.uri,
            'modified': _http_date(self.modified),
            'size': list(self.size),
            'thumbnails': self._uris(sizes, 'jpeg'),
            # The same ladder in the other formats (formats.THUMBNAIL_FORMATS).
            'thumbnails_webp': self._uris(sizes, 'webp'),
            'thumbnails_avif': self._uris(sizes, 'avif'),
        }

    def thumbnail_sizes(self) -> list[tuple[int, int]]:
        """Return the ladder of sizes this image is rendered at, largest first.

        Its halvings, and, if neither they nor the image fit a gallery tile
        (a longer side of TILE_BOUND at most), the image fitted to one.
        """
        sizes = list(_reductions(self.size, self._config.min_thumb_size))
        if min(max(size) for size in [self.size, *sizes]) > TILE_BOUND:
            sizes.append(tile_size(self.size))
        return sizes

    def all_thumbnails(self) -> list[str]:
        """Return the URLs of the image's thumbnails in every format."""
        sizes = self.thumbnail_sizes()
        return [
            uri
            for extension in formats.THUMBNAIL_FORMATS
            for uri in self._uris(sizes, extension)
        ]

    def _uris(self, sizes: list[tuple[int, int]], extension: str) -> list[str]:
        return [thumbnail_uri(self.image_id, size, extension) for size in sizes]


def _reductions(size: tuple[int, int], min_size: int) -> Iterator[tuple[int, int]]:
    width, height = size
    factor = 2
    while width // factor >= min_size and height // factor >= min_size:
        yield width // factor, height // factor
        factor *= 2


def _http_date(moment: datetime.datetime) -> str:
    return moment.strftime('%a, %d %b %Y %H:%M:%S GMT')
