"""Pillow work: turn an upload into a clean JPEG, and render thumbnails.

Everything here is synchronous and CPU-bound; the store runs it in its
executor, thumbnails in render processes (imaging/renderers.py). Before a pixel is
decoded, imaging/screening.py checks the file; imaging/colours.py makes what is decoded
RGB. What cannot be done is said by an error of errors.py (see its tree):
a kind of ImageError for an upload, StoredImageError for a stored file.
"""

from __future__ import annotations

import io
import os
from typing import IO

import PIL.Image
import PIL.ImageFile
import PIL.ImageOps
import PIL.TiffImagePlugin
import pillow_heif

from ..errors import DamagedImageError, InvalidImageError, StoredImageError
from . import colours, containers, screening
from .formats import THUMBNAIL_FORMATS

# asgilook checks the pixel count of every upload itself, against its own
# configured limit, before decoding; Pillow's process-wide limit would warn or
# refuse at other numbers.
PIL.Image.MAX_IMAGE_PIXELS = None

# HEIF (HEIC) through pillow-heif's plugin (Pillow reads AVIF itself): the
# primary image only, none of its thumbnails, depth or auxiliary images.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

# The only decoders an upload reaches (every decoder is attack surface): the
# formats the README lists. JPEG includes the MPO files of cameras, PNG the
# APNG animations, HEIF the HEIC photos of phones.
UPLOAD_FORMATS = (
    'JPEG',
    'PNG',
    'GIF',
    'WEBP',
    'AVIF',
    'HEIF',
    'TIFF',
    'BMP',
    'ICO',
)
# What asgilook stores is JPEG, and only JPEG is rendered from storage.
STORED_FORMATS = ('JPEG',)

# Part of every thumbnail's ETag: thumbnails rendered by another Pillow, or by
# another version of resize() (bump the number when it changes), differ.
RENDERING = f'pillow-{PIL.__version__}/resize-2'


def to_jpeg(
    source: IO[bytes], max_pixels: int, quality: int
) -> tuple[bytes, tuple[int, int]]:
    """Decode an upload and encode it as an upright, flattened RGB JPEG.

    Return the JPEG and its size. Metadata (EXIF, XMP, IPTC, comments) is left
    behind; an RGB colour profile is kept. Every size the decoder will
    allocate is checked from the file's headers before any pixel is decoded.
    """
    with containers.contents(source) as data:
        screening.check_structure(source, data, max_pixels)
    with _open(source, UPLOAD_FORMATS) as image:
        screening.check_size(image.size, max_pixels)
        if isinstance(image, PIL.TiffImagePlugin.TiffImageFile):
            screening.check_tiles(image, max_pixels)
        if isinstance(source, io.BytesIO):
            # An upload held in memory goes to the decoder in one piece, as in
            # resize(); one spooled to disk is read in Pillow's blocks.
            with source.getbuffer() as buffer:
                image.decodermaxblock = max(image.decodermaxblock, buffer.nbytes)
        try:
            # The first frame of an animation: open() leaves the image on it.
            image.load()
            PIL.ImageOps.exif_transpose(image, in_place=True)
            rgb, icc_profile = colours.to_rgb(image)
        except Exception as ex:
            # Pillow's decoders raise many kinds of errors on damaged data.
            raise DamagedImageError(str(ex)) from ex

        # Only what is passed here is written: no EXIF, XMP, IPTC or comment.
        rgb.info.clear()
        output = io.BytesIO()
        rgb.save(output, 'JPEG', quality=quality, icc_profile=icc_profile)
    return output.getvalue(), rgb.size


# What a render reads: a stored JPEG's file, or its bytes (an object's).
Source = str | os.PathLike[str] | bytes


def named(source: Source) -> str:
    """How a log line names what a render read."""
    return f'{len(source)} bytes' if isinstance(source, bytes) else os.fspath(source)


def resize(
    source: Source, size: tuple[int, int], quality: int, extension: str = 'jpeg'
) -> bytes:
    """Render a stored JPEG at the given size, in a format of THUMBNAIL_FORMATS.

    The JPEG decoder scales by 1/2, 1/4 and 1/8 as it decodes (`draft`), which
    is exactly the thumbnail ladder of an even-sized image: those thumbnails
    are decoded at their size and never resampled. Other sizes are decoded at
    the nearest larger scale and resampled with LANCZOS from there.

    The source is a file's name, or its bytes already read (an object's).
    The file is read whole and handed to the decoder in one piece. Fed in
    Pillow's 64 KiB blocks, the decoder suspends at the end of each block and
    takes the GIL back to be given the next one; in one piece it decodes
    without stopping, byte for byte the same picture, and sooner.

    Its name is no proof of what a file holds: StoredImageError unless it is
    a JPEG whose real size has this thumbnail on its ladder, decoded whole.
    """
    data = _read(source)
    with _open_stored(data) as image:
        screening.check_stored(data, image.size, size)
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
        kind = THUMBNAIL_FORMATS[extension]
        output = io.BytesIO()
        thumbnail.save(
            output,
            kind.pillow,
            quality=quality,
            icc_profile=image.info.get('icc_profile'),
            **dict(kind.options),
        )
    return output.getvalue()


def _read(source: Source) -> bytes:
    """The bytes of a stored JPEG: read from its file, or already read."""
    if isinstance(source, bytes):
        return source
    with open(source, 'rb') as file:
        return file.read()


def _open(source: IO[bytes], formats: tuple[str, ...]) -> PIL.ImageFile.ImageFile:
    try:
        return PIL.Image.open(source, formats=formats)
    except Exception as ex:
        # Pillow's parsers raise many kinds of errors on hostile headers.
        if screening.looks_like_an_image(source):
            raise DamagedImageError(str(ex)) from ex
        raise InvalidImageError(str(ex)) from ex


def _open_stored(data: bytes) -> PIL.ImageFile.ImageFile:
    try:
        return PIL.Image.open(io.BytesIO(data), formats=STORED_FORMATS)
    except Exception as ex:
        raise StoredImageError(f'the stored file is not a JPEG: {ex}') from ex
