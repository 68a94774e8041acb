"""The formats thumbnails are rendered in: each one's URL, media type and encoder."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Not imported by a render process, which imports this module: it
    # needs no settings (nor Redis's client, which they import).
    from ..config import Config


@dataclasses.dataclass(frozen=True)
class ThumbnailFormat:
    """One format of thumbnails: how its URLs end, what it is sent and saved as."""

    extension: str
    media_type: str
    # Pillow's name of the format, and what its encoder is given beside the
    # quality and the colour profile.
    pillow: str
    options: tuple[tuple[str, int], ...] = ()

    def identity(self, quality: int) -> str:
        """What of its rendering a thumbnail's ETag names: another, another tag."""
        if self.extension == JPEG.extension:
            # As before WebP and AVIF came: a JPEG thumbnail keeps its tag.
            return f'q{quality}'
        settings = ''.join(f'/{name}{value}' for name, value in self.options)
        return f'{self.extension}/q{quality}{settings}'


JPEG = ThumbnailFormat('jpeg', 'image/jpeg', 'JPEG')
# Measured on the ladder of a 1920x1080 photo (CPU time of a whole render, at
# the default qualities; JPEG's: 10 ms at 960x540, 7 ms at 240x135). libwebp's
# method 2 of 0-6: 25 ms at 960x540, its default 4 51 ms for 5% smaller files.
WEBP = ThumbnailFormat('webp', 'image/webp', 'WEBP', (('method', 2),))
# libaom's speed 8 of 0-10: 85 ms at 960x540, 18 ms at 240x135; its default
# 6 takes 280 ms, 7 127 ms for files 1-10% smaller; at 9 (46 ms) files are
# 12-28% larger, larger than WebP's at 480x270 and below. One thread: a render
# process renders on one CPU, as many processes as CPUs.
AVIF = ThumbnailFormat('avif', 'image/avif', 'AVIF', (('speed', 8), ('max_threads', 1)))

# By the extension of their URLs; the first is the tutorial's, listed in an
# image's "thumbnails".
THUMBNAIL_FORMATS = {kind.extension: kind for kind in (JPEG, WEBP, AVIF)}


def quality(config: Config, extension: str) -> int:
    """Return the quality thumbnails of a format are encoded at."""
    return {
        JPEG.extension: config.jpeg_quality,
        WEBP.extension: config.webp_quality,
        AVIF.extension: config.avif_quality,
    }[extension]
