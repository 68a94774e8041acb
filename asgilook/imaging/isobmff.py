"""What a HEIF (HEIC) or AVIF file declares, read from its boxes before any decode.

Both are ISO base media files (ISO/IEC 14496-12): boxes of a length and a
kind, some holding others. Every picture the decoders could be asked for
declares its size here: an image item in its `ispe` property (HEIF,
ISO/IEC 23008-12 6.5.3: the primary image, the tiles of a grid, a
thumbnail, an alpha plane), and a track of an image sequence in its track
header (`tkhd`) and its sample entry (`av01`, `hvc1`). But a decoder
allocates what the coded picture says, whatever these say: for AV1, its
sequence header, read wherever the decoder meets one (av1.py): in every
`av1C` box, in the data of every AV1 item (located by `iloc`) and in the
first sample of every AV1 track (locations.py). A box, or AV1 data, that
passes the end of what holds it (the file's, for the boxes at the top) is
a file cut short.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from ..errors import BrokenFileError
from . import av1
from .locations import Scope as _Scope

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
# The boxes whose items or first samples are located in the file: where
# the AV1 data a decoder meets is found (see locations.py).
_SCOPES = frozenset({b'meta', b'stbl'})
# The sample entries of AV1 and HEVC pictures (ISO/IEC 14496-12 12.1.3): a
# VisualSampleEntry, its width and height 24 bytes into it.
_SAMPLE_ENTRIES = frozenset({b'av01', b'hvc1', b'hev1'})
# Where the boxes of a sample entry begin (av1C, hvcC): after its 78 bytes.
_ENTRY_BOXES_AT = 78
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

    BrokenFileError if a box or the AV1 data in it is cut, or if no size is
    declared at all (the decoders would have to decode to learn it).
    """
    sizes = list(_Walk(data).sizes(0, len(data), 0))
    if not sizes:
        raise BrokenFileError('the file declares no picture size')
    return sizes


class _Walk:
    """Walk the boxes of one file, and the AV1 data they locate."""

    def __init__(self, data: memoryview) -> None:
        self._data = data
        self._units = av1.Units()
        self._walked: set[tuple[tuple[int, int], ...]] = set()
        self._copied = 0

    def sizes(self, start: int, end: int, depth: int) -> Iterator[tuple[int, int]]:
        """Yield the sizes declared between start and end, and in the AV1
        data that a meta box's items or a sample table's first sample hold."""
        scope = _Scope()
        yield from self._boxes(start, end, depth, scope)
        for extents in scope.coded(len(self._data)):
            if extents not in self._walked:  # a track's first sample may be an item
                self._walked.add(extents)
                yield from self._units.sizes(self._joined(extents))

    def _joined(self, extents: tuple[tuple[int, int], ...]) -> memoryview:
        """Return the coded data of a picture kept in extents.

        Pictures do not share bytes: extents that would copy more than the
        file holds are a file built to exhaust memory.
        """
        if len(extents) == 1:
            ((start, end),) = extents
            return self._data[start:end]
        self._copied += sum(end - start for start, end in extents)
        if self._copied > len(self._data):
            raise BrokenFileError('the AV1 pictures of the file overlap')
        return memoryview(b''.join(self._data[start:end] for start, end in extents))

    def _boxes(
        self, start: int, end: int, depth: int, scope: _Scope
    ) -> Iterator[tuple[int, int]]:
        if depth > _MAX_DEPTH:
            raise BrokenFileError('the boxes nest deeper than any picture')
        for kind, body, box_end in _boxes(self._data, start, end):
            yield from self._declared(kind, body, box_end, scope)
            children = _children(self._data, kind, body)
            if kind in _SCOPES:
                yield from self.sizes(children, box_end, depth + 1)
            elif kind in _CONTAINERS or kind in _SAMPLE_ENTRIES or kind == b'iinf':
                yield from self._boxes(children, box_end, depth + 1, scope)
            else:
                scope.read(kind, self._data[body:box_end], body)

    def _declared(
        self, kind: bytes, body: int, end: int, scope: _Scope
    ) -> Iterator[tuple[int, int]]:
        """Yield the size a box declares itself."""
        data = self._data
        if kind == b'ispe':
            yield _read(data, body + _ISPE_AT, end, '>2I', kind)
        elif kind == b'tkhd':
            at = _TKHD_AT[1] if _version(data, body) == 1 else _TKHD_AT[0]
            width, height = _read(data, body + at, end, '>2I', kind)
            yield width >> 16, height >> 16
        elif kind in _SAMPLE_ENTRIES:
            yield _read(data, body + 24, end, '>2H', kind)
            scope.av1_track = scope.av1_track or kind == b'av01'
        elif kind == b'av1C':
            # An AV1CodecConfigurationRecord: 4 bytes, then configOBUs.
            if end < body + 4:
                raise BrokenFileError('an av1C box is too short for its record')
            yield from self._units.sizes(data[body + 4 : end])


def _children(data: memoryview, kind: bytes, body: int) -> int:
    """Return where the boxes inside a box would begin."""
    if kind in _SAMPLE_ENTRIES:
        return body + _ENTRY_BOXES_AT
    if kind == b'iinf':
        # Its entry count takes 16 bits in version 0, 32 after.
        return body + (6 if _version(data, body) == 0 else 8)
    return body + _CONTAINERS.get(kind, 0)


def _version(data: memoryview, body: int) -> int:
    """Return the version of a full box (0 if it has no byte for one)."""
    return data[body] if body < len(data) else 0


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
