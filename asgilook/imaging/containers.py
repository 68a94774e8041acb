"""What image files hold, read from their structure before any pixel is decoded.

Pillow decodes a PNG cut anywhere after its last IDAT chunk, one whose
checksums are wrong after the first IDAT, and a GIF cut before its trailer,
as if they were whole. These walks find what is missing: one pass over the
bytes, no pixel decoded (a CRC-32 of every PNG chunk, the length of every GIF
sub-block). An icon's picture is sized by the PNG or BMP it embeds, and a
JPEG's frame header says how its picture is coded.
"""

from __future__ import annotations

import contextlib
import io
import mmap
import os
import struct
import zlib
from collections.abc import Iterator
from typing import IO

import PIL.BmpImagePlugin
import PIL.IcoImagePlugin

from ..errors import BrokenFileError, JPEGError
from . import jpeg

PNG_SIGNATURE = b'\x89PNG\r\n\x1a\n'
GIF_SIGNATURES = (b'GIF87a', b'GIF89a')
ICO_SIGNATURE = b'\x00\x00\x01\x00'
TIFF_SIGNATURES = (b'II*\x00', b'MM\x00*', b'II+\x00', b'MM\x00+')

# How many directory entries of a TIFF's pages are checked (a page counts
# one more): ~0.15 s of walking. Beyond, the rest is left unchecked: Pillow
# decodes the first page only, and a longer walk would cost more than any
# page is worth. A page has a dozen or two entries.
MAX_TIFF_ENTRIES = 100_000
# Where the pieces of a page's picture are: strips, or tiles (offsets, lengths).
_TIFF_PIECES = ((273, 279), (324, 325))
# The integer types a TIFF locates them with: SHORT, LONG, LONG8.
_TIFF_INTEGERS = {3: 'H', 4: 'I', 16: 'Q'}
# The bytes of a value of each TIFF type (TIFF 6.0 section 2, BigTIFF).
_TIFF_TYPE_SIZES = {
    **dict.fromkeys((1, 2, 6, 7), 1),
    **dict.fromkeys((3, 8), 2),
    **dict.fromkeys((4, 9, 11, 13), 4),
    **dict.fromkeys((5, 10, 12, 16, 17, 18), 8),
}

# A PNG chunk's length is at most 2**31 - 1 (PNG 5.3).
_MAX_CHUNK = 2**31 - 1


@contextlib.contextmanager
def contents(source: IO[bytes]) -> Iterator[memoryview]:
    """Lend the whole of a file as bytes: its buffer in memory, or it mapped."""
    if isinstance(source, io.BytesIO):
        with source.getbuffer() as view:
            yield view
        return
    if not os.fstat(source.fileno()).st_size:
        yield memoryview(b'')  # mmap maps no empty file
        return
    with (
        mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
        memoryview(mapped) as view,
    ):
        yield view


def png_frames(data: memoryview, start: int = 0) -> list[tuple[int, int]]:
    """Check every chunk of the PNG at start; return the sizes it declares.

    The first size is the image's (IHDR), the others those of its animation
    frames (fcTL), in order. BrokenFileError if a chunk is cut or fails its
    checksum, or if IEND never comes; what follows IEND is not read.
    """
    end = len(data)
    position = start + len(PNG_SIGNATURE)
    sizes: list[tuple[int, int]] = []
    while True:
        if position + 12 > end:
            raise BrokenFileError('the PNG ends before its IEND chunk')
        length, kind = struct.unpack_from('>I4s', data, position)
        crc_at = position + 8 + length
        if length > _MAX_CHUNK or crc_at + 4 > end:
            raise BrokenFileError(f'the PNG ends inside its {kind!r} chunk')
        (crc,) = struct.unpack_from('>I', data, crc_at)
        if zlib.crc32(data[position + 4 : crc_at]) != crc:
            raise BrokenFileError(f'the checksum of a {kind!r} chunk is wrong')
        if kind == b'IEND':
            return sizes
        if (kind == b'IHDR' and length >= 8) or (kind == b'fcTL' and length >= 12):
            offset = position + (8 if kind == b'IHDR' else 12)
            sizes.append(struct.unpack_from('>2I', data, offset))
        position = crc_at + 4


def icon_frame(source: IO[bytes], data: memoryview) -> list[tuple[int, int]]:
    """Return the sizes an ICO's picture declares, as png_frames does.

    The directory's sizes are one byte a side: the picture Pillow decodes
    (the largest, then the deepest) is sized by the PNG or BMP it embeds.
    """
    source.seek(0)
    try:
        entry = PIL.IcoImagePlugin.IcoFile(source).entry[0]
        if data[entry.offset : entry.offset + 8] == PNG_SIGNATURE:
            return png_frames(data, entry.offset)
        source.seek(entry.offset)
        frame = PIL.BmpImagePlugin.DibImageFile(source)
    except Exception as ex:
        # Pillow's parsers raise many kinds of errors on hostile headers.
        raise BrokenFileError(f'the icon cannot be read: {ex}') from ex
    # The colours, then a mask of the same size: half the height.
    return [(frame.width, frame.height // 2)]


def check_gif(data: memoryview) -> None:
    """Walk the blocks of a GIF to its trailer; BrokenFileError if it is cut."""
    end = len(data)
    if end < 13:
        raise BrokenFileError('the GIF ends inside its header')
    position = 13 + _colour_table(data[10])
    while position < end:
        block = data[position]
        if block == 0x3B:  # the trailer
            return
        if block == 0x21:  # an extension: its label, then sub-blocks
            position = _skip_sub_blocks(data, position + 2)
        elif block == 0x2C and position + 10 <= end:  # an image descriptor
            position += 10 + _colour_table(data[position + 9])
            # The LZW code size, then the image data in sub-blocks.
            position = _skip_sub_blocks(data, position + 1)
        else:
            # As Pillow does, a stray byte between blocks is passed over.
            position += 1
    raise BrokenFileError('the GIF ends before its trailer')


def check_tiff(data: memoryview) -> None:
    """Check that every page of a TIFF lies within it: directory, values, pieces.

    Pillow reads the first page only, so a file cut in a later page would
    pass for whole. Classic and BigTIFF, either byte order.
    """
    order = '<' if data[0] == 0x49 else '>'
    try:
        big = struct.unpack_from(order + 'H', data, 2)[0] == 43
        (offset,) = struct.unpack_from(order + ('Q' if big else 'I'), data, 4 * big + 4)
        seen: set[int] = set()
        budget = MAX_TIFF_ENTRIES
        while offset and offset not in seen:
            seen.add(offset)
            (count,) = struct.unpack_from(order + ('Q' if big else 'H'), data, offset)
            budget -= count + 1
            if budget < 0:
                return
            offset = _check_tiff_page(data, order, big, offset, count)
    except struct.error as ex:
        raise BrokenFileError(f'the TIFF ends inside a page directory: {ex}') from ex


def _check_tiff_page(
    data: memoryview, order: str, big: bool, offset: int, count: int
) -> int:
    """Check the page of count entries at offset; return where the next begins."""
    # How offsets are written, how long an entry is, and how many bytes of
    # values it holds itself.
    pointer, entry, inline = ('Q', 20, 8) if big else ('I', 12, 4)
    first = offset + (8 if big else 2)
    pieces: dict[int, tuple[int, ...]] = {}
    for at in range(first, first + count * entry, entry):
        tag, kind, values = struct.unpack_from(order + 'HH' + pointer, data, at)
        size = _TIFF_TYPE_SIZES.get(kind, 0) * values
        where = at + entry - inline
        if size > inline:
            (where,) = struct.unpack_from(order + pointer, data, where)
        if where + size > len(data):
            raise BrokenFileError('the TIFF ends inside the values of a page')
        if kind in _TIFF_INTEGERS and any(tag in pair for pair in _TIFF_PIECES):
            pieces[tag] = struct.unpack_from(
                f'{order}{values}{_TIFF_INTEGERS[kind]}', data, where
            )
    for starts, lengths in _TIFF_PIECES:
        # Counts that disagree are the decoder's to judge, on the first page.
        pairs = zip(pieces.get(starts, ()), pieces.get(lengths, ()), strict=False)
        if any(start + length > len(data) for start, length in pairs):
            raise BrokenFileError('the TIFF ends inside the picture of a page')
    return int(struct.unpack_from(order + pointer, data, first + count * entry)[0])


def _colour_table(flags: int) -> int:
    """Return the length of the colour table that these flags announce."""
    return 3 << ((flags & 7) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(data: memoryview, position: int) -> int:
    """Return the position after the sub-blocks at position and their terminator."""
    end = len(data)
    while position < end:
        size = data[position]
        position += 1 + size
        if not size:
            return position
    # Cut inside the sub-blocks: the caller finds no trailer after them.
    return end


def jpeg_frame(data: memoryview | bytes) -> tuple[int, int, int]:
    """Return a JPEG's start-of-frame marker (0xC0 to 0xCF, T.81 B.1.1.3), width
    and height.

    (0, 0, 0) if the segments before it are broken (Pillow opens no JPEG
    whose first scan comes before its frame header).
    """
    try:
        return jpeg.frame(
            lambda offset, size: bytes(data[offset : offset + size]), len(data)
        )
    except JPEGError:
        return 0, 0, 0
