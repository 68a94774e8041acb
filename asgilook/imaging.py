"""Pillow work: turn an upload into a clean JPEG, and render thumbnails.

Everything here is synchronous and CPU-bound; the store runs it in its executor.
What cannot be done is said by one of these errors:

    ImageError
    ├── InvalidImageError    the upload is in no format asgilook reads
    ├── DamagedImageError    it starts like one but is cut or corrupt
    ├── ImageTooLargeError   it holds more pixels than the configured limit
    ├── SideTooLongError     a side is longer than a JPEG can hold
    └── StoredImageError     a stored file is not the JPEG its name says
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Iterator
from typing import IO

import PIL.Image
import PIL.ImageCms
import PIL.ImageOps
import PIL.TiffImagePlugin

from . import containers, jpeg
from .errors import (
    DamagedImageError,
    ImageTooLargeError,
    InvalidImageError,
    SideTooLongError,
    StoredImageError,
)

# asgilook checks the pixel count of every upload itself, against its own
# configured limit, before decoding; Pillow's process-wide limit would warn or
# refuse at other numbers.
PIL.Image.MAX_IMAGE_PIXELS = None

# The only decoders an upload reaches (every decoder is attack surface): the
# formats the README lists. JPEG includes the MPO files of cameras, PNG the
# APNG animations.
UPLOAD_FORMATS = ('JPEG', 'PNG', 'GIF', 'WEBP', 'TIFF', 'BMP', 'ICO')
# What asgilook stores is JPEG, and only JPEG is rendered from storage.
STORED_FORMATS = ('JPEG',)

# The JPEG frames of Huffman coding (T.81 table B.1): what asgilook writes.
_HUFFMAN_FRAMES = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7})

# The longest side libjpeg writes (its JPEG_MAX_DIMENSION), short of the
# 65535 the format allows.
MAX_SIDE = 65500

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
# Part of every thumbnail's ETag: thumbnails rendered by another Pillow, or by
# another version of resize() (bump the number when it changes), differ.
RENDERING = f'pillow-{PIL.__version__}/resize-2'

_HIGH_BIT_DEPTH = frozenset({'I', 'F', 'I;16', 'I;16L', 'I;16B', 'I;16N'})
_ALPHA = frozenset({'RGBA', 'RGBa', 'LA', 'La', 'PA'})


def to_jpeg(
    source: IO[bytes], max_pixels: int, quality: int
) -> tuple[bytes, tuple[int, int]]:
    """Decode an upload and encode it as an upright, flattened RGB JPEG.

    Return the JPEG and its size. Metadata (EXIF, XMP, IPTC, comments) is left
    behind; an RGB colour profile is kept. Every size the decoder will
    allocate is checked from the file's headers before any pixel is decoded.
    """
    with containers.contents(source) as data:
        _check_structure(source, data, max_pixels)
    with _open(source, UPLOAD_FORMATS) as image:
        _check_size(image.size, max_pixels)
        if image.format == 'TIFF':
            _check_tiles(image, max_pixels)
        if isinstance(source, io.BytesIO):
            # An upload held in memory goes to the decoder in one piece, as in
            # resize(); one spooled to disk is read in Pillow's blocks.
            with source.getbuffer() as buffer:
                image.decodermaxblock = max(image.decodermaxblock, buffer.nbytes)
        try:
            # The first frame of an animation: open() leaves the image on it.
            image.load()
            PIL.ImageOps.exif_transpose(image, in_place=True)
            rgb, icc_profile = _to_rgb(image)
        except Exception as ex:
            # Pillow's decoders raise many kinds of errors on damaged data.
            raise DamagedImageError(str(ex)) from ex

        # Only what is passed here is written: no EXIF, XMP, IPTC or comment.
        rgb.info.clear()
        output = io.BytesIO()
        rgb.save(output, 'JPEG', quality=quality, icc_profile=icc_profile)
    return output.getvalue(), rgb.size


def resize(source: str | os.PathLike, size: tuple[int, int], quality: int) -> bytes:
    """Render a stored JPEG at the given size, as JPEG.

    The JPEG decoder scales by 1/2, 1/4 and 1/8 as it decodes (`draft`), which
    is exactly the thumbnail ladder of an even-sized image: those thumbnails
    are decoded at their size and never resampled. Other sizes are decoded at
    the nearest larger scale and resampled with LANCZOS from there.

    The file is read whole and handed to the decoder in one piece. Fed in
    Pillow's 64 KiB blocks, the decoder suspends at the end of each block and
    takes the GIL back to be given the next one; in one piece it decodes
    without stopping, byte for byte the same picture, and sooner.

    Its name is no proof of what a file holds: StoredImageError unless it is
    a JPEG whose real size has this thumbnail on its ladder, decoded whole.
    """
    with open(source, 'rb') as file:
        data = file.read()
    with _open_stored(data) as image:
        _check_stored(data, image.size, size)
        image.decodermaxblock = len(data)
        image.draft('RGB', size)
        try:
            # Decoded here, not by save(): to save() a picture read from memory
            # and written to memory looks like one written over its own file,
            # which it would copy first.
            image.load()
        except Exception as ex:
            raise StoredImageError(f'the stored JPEG cannot be decoded: {ex}') from ex
        thumbnail = image if image.mode == 'RGB' else image.convert('RGB')
        if thumbnail.size != size:
            thumbnail = thumbnail.resize(size, PIL.Image.Resampling.LANCZOS)
        output = io.BytesIO()
        thumbnail.save(
            output, 'JPEG', quality=quality, icc_profile=image.info.get('icc_profile')
        )
    return output.getvalue()


def _open(source: IO[bytes], formats: tuple[str, ...]) -> PIL.Image.Image:
    try:
        return PIL.Image.open(source, formats=formats)
    except Exception as ex:
        # Pillow's parsers raise many kinds of errors on hostile headers.
        if _looks_like_an_image(source):
            raise DamagedImageError(str(ex)) from ex
        raise InvalidImageError(str(ex)) from ex


def _open_stored(data: bytes) -> PIL.Image.Image:
    try:
        return PIL.Image.open(io.BytesIO(data), formats=STORED_FORMATS)
    except Exception as ex:
        raise StoredImageError(f'the stored file is not a JPEG: {ex}') from ex


def _check_stored(data: bytes, real: tuple[int, int], size: tuple[int, int]) -> None:
    """Refuse to render what a stored JPEG does not hold.

    The thumbnail must be a halving of the picture's real size, whatever the
    file's name says. And the file must be long enough for that picture:
    Huffman coding takes at least a bit for each 8x8 block, where the decoder
    would make up, grey, whatever a short file leaves out (a few KiB could
    otherwise claim 64000x48000 and be decoded at gigabytes). asgilook
    writes Huffman-coded JPEGs only: the arithmetic coding has no such bound.
    """
    width, height = real
    if size not in _halvings(real):
        raise StoredImageError(f'a {width}x{height} JPEG has no {size} thumbnail')
    if containers.jpeg_frame(data)[0] not in _HUFFMAN_FRAMES:
        raise StoredImageError('the stored JPEG is not Huffman-coded')
    if not _can_hold(len(data), real):
        raise StoredImageError(f'{len(data)} bytes cannot hold {width}x{height}')


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
    _check_size((width, height), max_pixels)
    if marker in _HUFFMAN_FRAMES and not _can_hold(len(data), (width, height)):
        raise DamagedImageError(f'{len(data)} bytes cannot hold {width}x{height}')


def _halvings(size: tuple[int, int]) -> Iterator[tuple[int, int]]:
    """Yield the sizes of the thumbnail ladder of size, down to nothing."""
    width, height = size
    for shift in range(1, max(width, height).bit_length() + 1):
        yield width >> shift, height >> shift


def _looks_like_an_image(source: IO[bytes]) -> bool:
    source.seek(0)
    head = source.read(16)
    is_webp = head.startswith(b'RIFF') and head[8:12] == b'WEBP'
    return is_webp or head.startswith(_SIGNATURES)


def _check_structure(source: IO[bytes], data: memoryview, max_pixels: int) -> None:
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
        elif head.startswith(containers.ICO_SIGNATURE):
            # Pillow decodes the picture of an icon as it opens it.
            _check_sizes(containers.icon_frame(source, data), max_pixels)
    except containers.BrokenFileError as ex:
        raise DamagedImageError(str(ex)) from ex


def _check_tiles(image: PIL.Image.Image, max_pixels: int) -> None:
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
    _check_size(tile, max_pixels)
    if any(
        side > -(-extent // 16) * 16
        for side, extent in zip(tile, image.size, strict=True)
    ):
        raise DamagedImageError(f'tiles of {tile} are larger than the image')


def _check_sizes(sizes: Iterable[tuple[int, int]], max_pixels: int) -> None:
    for size in sizes:
        _check_size(size, max_pixels)


def _check_size(size: tuple[int, int], max_pixels: int) -> None:
    """Refuse a picture of more than max_pixels, or one no JPEG can hold."""
    width, height = size
    if width * height > max_pixels:
        raise ImageTooLargeError(size, max_pixels)
    if max(size) > MAX_SIDE:
        raise SideTooLongError(size, MAX_SIDE)


def _to_rgb(image: PIL.Image.Image) -> tuple[PIL.Image.Image, bytes | None]:
    """Return the image as RGB on white, and the colour profile to embed."""
    icc_profile = image.info.get('icc_profile')
    if image.mode in _HIGH_BIT_DEPTH:
        image = _to_8bit(image)

    # Each conversion is a full copy of the picture: make only those needed.
    if image.mode in _ALPHA or 'transparency' in image.info:
        rgba = image if image.mode == 'RGBA' else image.convert('RGBA')
        rgb = PIL.Image.new('RGB', rgba.size, 'white')
        rgb.paste(rgba, mask=rgba.getchannel('A'))
    else:
        rgb = image if image.mode == 'RGB' else image.convert('RGB')
    # A profile describes the colours it came with; only an RGB one still fits
    # them once they are RGB (a CMYK or grey profile would now mislead).
    return rgb, icc_profile if _is_rgb_profile(icc_profile) else None


def _to_8bit(image: PIL.Image.Image) -> PIL.Image.Image:
    """Scale 16-bit, 32-bit and floating-point greys to 8 bits."""
    if image.mode.startswith('I;16'):
        return image.convert('I').point(lambda value: value / 256).convert('L')
    low, high = image.getextrema()
    if image.mode == 'F' and low >= 0 and high <= 1:
        scaled = image.point(lambda value: value * 255)
    elif low >= 0 and high <= 255:
        scaled = image
    elif low >= 0 and high <= 65535:
        scaled = image.point(lambda value: value / 256)
    else:
        # Values of no known range: stretch what is there over 0-255.
        scale = 255 / (high - low) if high > low else 0
        scaled = image.point(lambda value: (value - low) * scale)
    return scaled.convert('L')


def _is_rgb_profile(icc_profile: bytes | None) -> bool:
    if not icc_profile:
        return False
    try:
        profile = PIL.ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
    except (PIL.ImageCms.PyCMSError, OSError, ValueError):
        return False
    return profile.profile.xcolor_space.strip() == 'RGB'
