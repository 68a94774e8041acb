"""What a file must pass before Pillow decodes a pixel of it: sizes and structure.

An upload is screened from its headers (every size the decoder would
allocate, files cut short or claiming more than their bytes hold); a stored
file is screened before it is rendered (its name is no proof of what it
holds). Refusals are errors of errors.py (see its tree): a kind of
ImageError for an upload, StoredImageError for a stored file.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO

import PIL.TiffImagePlugin

from ..errors import (
    BrokenFileError,
    DamagedImageError,
    ImageTooLargeError,
    SideTooLongError,
    StoredImageError,
)
from . import containers, isobmff, jpeg

# The JPEG frames of Huffman coding (T.81 table B.1): what asgilook writes.
_HUFFMAN_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7})

# The longest side libjpeg writes (its JPEG_MAX_DIMENSION), short of the
# 65535 the format allows.
MAX_SIDE = 65500

# The longest side of a thumbnail small enough for a gallery tile: tiles are
# at most half a window wide (gallery/page.py), and a browser picks from
# srcset by width. A picture whose halvings stop above it (65500x127 has
# none: its short side halves below min_thumb_size) gets one thumbnail
# fitted to it (see store.Image.thumbnail_sizes).
TILE_BOUND = 1024

# How the formats asgilook accepts begin. Bytes that start like one of these but
# cannot be decoded are a damaged image, not an unknown format.
_SIGNATURES = (
    b'\xff\xd8\xff',  # JPEG
    containers.PNG_SIGNATURE,  # PNG, APNG
    *containers.GIF_SIGNATURES,
    b'BM',  # BMP
    *containers.TIFF_SIGNATURES,  # TIFF and BigTIFF, either byte order
    containers.ICO_SIGNATURE,
)


def check_structure(source: IO[bytes], data: memoryview, max_pixels: int) -> None:
    """Check what Pillow would not before it decodes: hidden sizes, cut files."""
    head = bytes(data[:8])
    try:
        if head.startswith(containers.PNG_SIGNATURE):
            # An animation's frames too: a frame is decoded at its own size.
            _check_sizes(containers.png_frames(data), max_pixels)
        elif head.startswith(containers.GIF_SIGNATURES):
            containers.check_gif(data)
        elif head.startswith(containers.TIFF_SIGNATURES):
            containers.check_tiff(data)
        elif head.startswith(jpeg.START_OF_IMAGE):
            _check_jpeg(data, max_pixels)
        elif isobmff.is_heif(bytes(data[:12])):
            # Every picture a HEIF or AVIF declares: the decoders allocate
            # what the coded pictures say, sized as these are.
            _check_sizes(isobmff.declared_sizes(data), max_pixels)
        elif head.startswith(containers.ICO_SIGNATURE):
            # Pillow decodes the picture of an icon as it opens it.
            _check_sizes(containers.icon_frame(source, data), max_pixels)
    except BrokenFileError as ex:
        raise DamagedImageError(str(ex)) from ex


def check_size(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse a picture of more than max_pixels, or one no JPEG can hold."""
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(size, max_pixels)
    if max(size) > MAX_SIDE:
        raise SideTooLongError(size, MAX_SIDE)


def check_tiles(image: PIL.TiffImagePlugin.TiffImageFile, max_pixels: int) -> None:
    """Check the tiles of a TIFF: libtiff decodes each whole, whatever the image.

    A tile may pass the image's edge only to reach a multiple of 16 (TIFF 6.0
    section 15); one larger than that is a picture the image does not show.
    """
    tags = image.tag_v2
    tile = (
        tags.get(PIL.TiffImagePlugin.TILEWIDTH, 0),
        tags.get(PIL.TiffImagePlugin.TILELENGTH, 0),
    )
    if not all(isinstance(side, int) for side in tile):
        raise DamagedImageError(f'tiles of {tile} are no size')
    check_size(tile, max_pixels)
    if any(
        side > -(-extent // 16) * 16
        for side, extent in zip(tile, image.size, strict=True)
    ):
        raise DamagedImageError(f'tiles of {tile} are larger than the image')


def looks_like_an_image(source: IO[bytes]) -> bool:
    """Whether a file begins as one of the formats asgilook accepts."""
    source.seek(0)
    head = source.read(16)
    is_webp = head.startswith(b'RIFF') and head[8:12] == b'WEBP'
    return is_webp or isobmff.is_heif(head) or head.startswith(_SIGNATURES)


def check_stored(data: bytes, real: tuple[int, int], size: tuple[int, int]) -> None:
    """Refuse to render what a stored JPEG does not hold.

    The thumbnail must be a halving of the picture's real size (or the
    picture fitted to a tile, see tile_size), whatever the file's name says.
    And the file must be long enough for that picture:
    Huffman coding takes at least a bit for each 8x8 block, where the decoder
    would make up, grey, whatever a short file leaves out (a few KiB could
    otherwise claim 64000x48000 and be decoded at gigabytes). asgilook
    writes Huffman-coded JPEGs only: the arithmetic coding has no such bound.
    """
    width, height = real
    fitted = max(real) > TILE_BOUND and size == tile_size(real)
    if size not in _halvings(real) and not fitted:
        raise StoredImageError(f'a {width}x{height} JPEG has no {size} thumbnail')
    if containers.jpeg_frame(data)[0] not in _HUFFMAN_FRAMES:
        raise StoredImageError('the stored JPEG is not Huffman-coded')
    if not _can_hold(len(data), real):
        raise StoredImageError(f'{len(data)} bytes cannot hold {width}x{height}')


def tile_size(size: tuple[int, int]) -> tuple[int, int]:
    """Return size scaled so that its longer side is TILE_BOUND (aspect kept).

    The shorter side is rounded to the nearest pixel, and at least one.
    """
    width, height = size
    longer, shorter = max(size), min(size)
    # shorter * TILE_BOUND / longer, rounded half up, in integers.
    scaled = max(1, (2 * shorter * TILE_BOUND + longer) // (2 * longer))
    return (TILE_BOUND, scaled) if width >= height else (scaled, TILE_BOUND)


def _can_hold(length: int, size: tuple[int, int]) -> bool:
    """Whether a Huffman-coded JPEG of length bytes can hold a picture of size.

    Huffman coding takes at least a bit for each 8x8 block of a picture.
    """
    return length * 8 * 64 >= size[0] * size[1]


def _check_jpeg(data: memoryview, max_pixels: int) -> None:
    """Refuse an upload whose JPEG frame claims more than its bytes can hold.

    The decoder would make up, grey, what is missing: a 633-byte file that
    says 7000x7000 would be decoded for a third of a second and stored as
    a picture of nothing, at a thousand times its size.
    """
    # Broken segments (marker 0) are Pillow's to tell.
    marker, width, height = containers.jpeg_frame(data)
    # A bomb is too large (413) before it is too short.
    check_size((width, height), max_pixels)
    if marker in _HUFFMAN_FRAMES and not _can_hold(len(data), (width, height)):
        raise DamagedImageError(f'{len(data)} bytes cannot hold {width}x{height}')


def _check_sizes(sizes: Iterable[tuple[int, int]], max_pixels: int) -> None:
    for size in sizes:
        check_size(size, max_pixels)


def _halvings(size: tuple[int, int]) -> Iterator[tuple[int, int]]:
    """Yield the sizes of the thumbnail ladder of size, down to nothing."""
    width, height = size
    for shift in range(1, max(width, height).bit_length() + 1):
        yield width >> shift, height >> shift
