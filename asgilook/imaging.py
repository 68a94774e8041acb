"""Pillow work: turn an upload into a clean JPEG, and render thumbnails.

Everything here is synchronous and CPU-bound; the store runs it in its executor.
"""

from __future__ import annotations

import io
import os
from typing import IO

import PIL.Image
import PIL.ImageCms
import PIL.ImageOps

# asgilook checks the pixel count of every upload itself, against its own
# configured limit, before decoding; Pillow's process-wide limit would warn or
# refuse at other numbers.
PIL.Image.MAX_IMAGE_PIXELS = None

# How the formats asgilook accepts begin. Bytes that start like one of these but
# cannot be decoded are a damaged image, not an unknown format.
_SIGNATURES = (
    b'\xff\xd8\xff',  # JPEG
    b'\x89PNG\r\n\x1a\n',  # PNG, APNG
    b'GIF87a',
    b'GIF89a',
    b'BM',  # BMP
    b'II*\x00',  # TIFF, little-endian
    b'MM\x00*',  # TIFF, big-endian
    b'\x00\x00\x01\x00',  # ICO
)
# Part of every thumbnail's ETag: thumbnails rendered by another Pillow, or by
# another version of resize() (bump the number when it changes), differ.
RENDERING = f'pillow-{PIL.__version__}/resize-2'

_HIGH_BIT_DEPTH = frozenset({'I', 'F', 'I;16', 'I;16L', 'I;16B', 'I;16N'})
_ALPHA = frozenset({'RGBA', 'RGBa', 'LA', 'La', 'PA'})


class ImageError(Exception):
    """An upload that cannot become a stored image."""


class InvalidImageError(ImageError):
    """The bytes are not an image in any format asgilook reads."""


class DamagedImageError(ImageError):
    """The bytes start like an image but cannot be decoded."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than asgilook is configured to decode."""

    def __init__(self, size: tuple[int, int], max_pixels: int) -> None:
        super().__init__(f'{size[0]}x{size[1]} is more than {max_pixels} pixels')
        self.size = size
        self.max_pixels = max_pixels


def to_jpeg(
    source: IO[bytes], max_pixels: int, quality: int
) -> tuple[bytes, tuple[int, int]]:
    """Decode an upload and encode it as an upright, flattened RGB JPEG.

    Return the JPEG and its size. Metadata (EXIF, XMP, IPTC, comments) is left
    behind; an RGB colour profile is kept.
    """
    with _open(source) as image:
        if image.width * image.height > max_pixels:
            raise ImageTooLargeError(image.size, max_pixels)
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
    """
    with open(source, 'rb') as file:
        data = file.read()
    with PIL.Image.open(io.BytesIO(data)) as image:
        image.decodermaxblock = len(data)
        image.draft('RGB', size)
        # Decoded here, not by save(): to save() a picture read from memory
        # and written to memory looks like one written over its own file,
        # which it would copy first.
        image.load()
        thumbnail = image if image.mode == 'RGB' else image.convert('RGB')
        if thumbnail.size != size:
            thumbnail = thumbnail.resize(size, PIL.Image.Resampling.LANCZOS)
        output = io.BytesIO()
        thumbnail.save(
            output, 'JPEG', quality=quality, icc_profile=image.info.get('icc_profile')
        )
    return output.getvalue()


def _open(source: IO[bytes]) -> PIL.Image.Image:
    try:
        return PIL.Image.open(source)
    except Exception as ex:
        # Pillow's parsers raise many kinds of errors on hostile headers.
        if _looks_like_an_image(source):
            raise DamagedImageError(str(ex)) from ex
        raise InvalidImageError(str(ex)) from ex


def _looks_like_an_image(source: IO[bytes]) -> bool:
    source.seek(0)
    head = source.read(16)
    is_webp = head.startswith(b'RIFF') and head[8:12] == b'WEBP'
    return is_webp or head.startswith(_SIGNATURES)


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
