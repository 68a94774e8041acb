"""What a HEIF (HEIC) or AVIF file declares, read from its boxes before any decode.

Both are ISO base media files (ISO/IEC 14496-12): boxes of a length and a
kind, some holding others. Every picture the decoders could be asked for
declares its size here: an image item in its `ispe` property (HEIF,
ISO/IEC 23008-12 6.5.3: the primary image, the tiles of a grid, a
thumbnail, an alpha plane), and a track of an image sequence in its track
header (`tkhd`) and its sample entry (`av01`, `hvc1`). A box that passes
the end of the one that holds it (the file's, for the boxes at the top) is
a file cut short.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from ..errors import BrokenFileError

# The brands of the files asgilook reads, as an `ftyp` box names its major
# brand: HEIF images and sequences (HEVC-coded: heic, heix...; any coding:
# mif1, msf1) and AVIF images and sequences.
BRANDS = frozenset(
    {
        *(b'heic', b'heix', b'heim', b'heis', b'hevc', b'hevx', b'hevm', b'hevs'),
        *(b'mif1', b'msf1', b'avif', b'avis'),
    }
)

# The boxes that hold other boxes on the way to a declared size, and how
# many bytes of their own come before them (a full box's version and flags;
# the entry count of a sample description too).
_CONTAINERS = {
    b'meta': 4,
    b'iprp': 0,
    b'ipco': 0,
    b'moov': 0,
    b'trak': 0,
    b'mdia': 0,
    b'minf': 0,
    b'stbl': 0,
    b'stsd': 8,
}
# The sample entries of AV1 and HEVC pictures (ISO/IEC 14496-12 12.1.3): a
# VisualSampleEntry, its width and height 24 bytes into it.
_SAMPLE_ENTRIES = frozenset({b'av01', b'hvc1', b'hev1'})
# Where a box declaring a size keeps it: a full box's version and flags
# first; a track header's width and height in 16.16 fixed point, after
# times of 32 bits (version 0) or 64 (version 1).
_ISPE_AT = 4
_TKHD_AT = {0: 76, 1: 88}
# Deeper than the boxes above ever nest is a file built to exhaust the walk.
_MAX_DEPTH = 8


def is_heif(head: bytes) -> bool:
    """Whether a file begins as a HEIF or AVIF file: an `ftyp` of their brands."""
    return head[4:8] == b'ftyp' and head[8:12] in BRANDS


def declared_sizes(data: memoryview) -> list[tuple[int, int]]:
    """Return every picture size the file declares; walk every box to the end.

    BrokenFileError if a box is cut, or if no size is declared at all (the
    decoders would have to decode to learn it).
    """
    sizes = list(_sizes(data, 0, len(data), 0))
    if not sizes:
        raise BrokenFileError('the file declares no picture size')
    return sizes


def _sizes(
    data: memoryview, start: int, end: int, depth: int
) -> Iterator[tuple[int, int]]:
    if depth > _MAX_DEPTH:
        raise BrokenFileError('the boxes nest deeper than any picture')
    for kind, body, box_end in _boxes(data, start, end):
        if kind == b'ispe':
            yield _read(data, body + _ISPE_AT, box_end, '>2I', kind)
        elif kind == b'tkhd':
            at = _TKHD_AT[1] if bytes(data[body : body + 1]) == b'\x01' else _TKHD_AT[0]
            width, height = _read(data, body + at, box_end, '>2I', kind)
            yield width >> 16, height >> 16
        elif kind in _SAMPLE_ENTRIES:
            # Its boxes (av1C, hvcC) declare no size.
            yield _read(data, body + 24, box_end, '>2H', kind)
        elif kind in _CONTAINERS:
            yield from _sizes(data, body + _CONTAINERS[kind], box_end, depth + 1)


def _read(
    data: memoryview, at: int, end: int, layout: str, kind: bytes
) -> tuple[int, int]:
    """Return the width and height at `at`, in a box that ends at end."""
    if at + struct.calcsize(layout) > end:
        raise BrokenFileError(f'a {kind!r} box is too short for the size it declares')
    width, height = struct.unpack_from(layout, data, at)
    return width, height


def _boxes(data: memoryview, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield each box between start and end: its kind, where its body begins
    and where it ends."""
    position = start
    while position < end:
        if position + 8 > end:
            raise BrokenFileError('the file ends inside a box header')
        size, kind = struct.unpack_from('>I4s', data, position)
        body = position + 8
        if size == 1:  # a 64-bit size follows the kind
            if body + 8 > end:
                raise BrokenFileError('the file ends inside a box header')
            (size,) = struct.unpack_from('>Q', data, body)
            body += 8
        elif size == 0:  # the box runs to the end of what holds it
            size = end - position
        box_end = position + size
        if box_end > end or box_end < body:
            raise BrokenFileError(f'the file ends inside its {kind!r} box')
        yield kind, body, box_end
        position = box_end
