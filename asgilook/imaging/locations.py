"""Where a HEIF or AVIF keeps its AV1 pictures: located items, a track's first sample.

An item's data (ISO/IEC 14496-12 8.11.3, the `iloc` box) lies in extents of
the file (construction method 0) or of the `idat` box (1); its type is in
its item info entry (`infe`, 8.11.6). A track's first sample begins its
first chunk (`stco` or `co64`, 8.7.5); `stsz` (8.7.3) tells its length.
Each meta box and sample table locates its own, once all its boxes are read.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from ..errors import BrokenFileError

_AV1 = int.from_bytes(b'av01')
# Where an item's extents are offsets of: the file, or the idat box.
_IN_FILE, _IN_IDAT = 0, 1


class _Location(NamedTuple):
    item: int
    method: int
    reference: int
    extents: list[tuple[int, int]]


class Scope:
    """What one meta box or sample table says of where its AV1 data lies."""

    def __init__(self) -> None:
        self.av1_track = False
        self._av1_items: set[int] = set()
        self._locations: list[_Location] = []
        self._idat: tuple[int, int] | None = None
        self._chunk: int | None = None
        self._sample: int | None = None

    def read(self, kind: bytes, body: memoryview, at: int) -> None:
        """Note where a box of this scope locates AV1 data (its body is at `at`)."""
        if kind == b'infe':
            item = _av1_item(_Fields(body, kind))
            if item is not None:
                self._av1_items.add(item)
        elif kind == b'iloc':
            self._locations.extend(_locations(_Fields(body, kind)))
        elif kind == b'idat':
            self._idat = (at, at + len(body))
        elif kind in (b'stco', b'co64'):
            self._chunk = _first_chunk(_Fields(body, kind), 8 if kind == b'co64' else 4)
        elif kind == b'stsz':
            self._sample = _first_sample(_Fields(body, kind))

    def coded(self, size: int) -> Iterator[tuple[tuple[int, int], ...]]:
        """Yield where each AV1 picture located here lies, as extents of a file
        of size bytes: each AV1 item, and the first sample of an AV1 track."""
        for location in self._locations:
            if location.item in self._av1_items:
                yield self._extents(location, size)
        if self.av1_track and self._chunk is not None and self._sample is not None:
            if self._chunk + self._sample > size:
                raise BrokenFileError('the file ends inside the first AV1 sample')
            yield ((self._chunk, self._chunk + self._sample),)

    def _extents(self, location: _Location, size: int) -> tuple[tuple[int, int], ...]:
        if location.reference or location.method not in (_IN_FILE, _IN_IDAT):
            raise BrokenFileError('an AV1 picture is kept where asgilook does not read')
        if location.method == _IN_FILE:
            start, end = 0, size
        elif self._idat is None:
            raise BrokenFileError(
                'an AV1 picture is kept in an idat box the file lacks'
            )
        else:
            start, end = self._idat
        extents = []
        for offset, length in location.extents:
            first = start + offset
            last = first + length if length else end  # 0: to the end
            if max(first, last) > end:
                raise BrokenFileError('the file ends inside an AV1 picture')
            extents.append((first, last))
        return tuple(extents)


class _Fields:
    """Read a box's unsigned big-endian fields in turn."""

    def __init__(self, body: memoryview, kind: bytes) -> None:
        self._body = body
        self._kind = kind
        self._at = 0

    def read(self, length: int) -> int:
        if self._at + length > len(self._body):
            raise BrokenFileError(f'a {self._kind!r} box is too short for its fields')
        self._at += length
        return int.from_bytes(self._body[self._at - length : self._at])


def _av1_item(fields: _Fields) -> int | None:
    """Return the item ID of an infe box, if its item is an AV1 picture.

    Versions 0 and 1 name no item type: no decoder takes them for AV1.
    """
    version = fields.read(1)
    fields.read(3)
    if version not in (2, 3):
        return None
    item = fields.read(2 if version == 2 else 4)
    fields.read(2)  # item_protection_index
    return item if fields.read(4) == _AV1 else None


def _locations(fields: _Fields) -> Iterator[_Location]:
    """Yield each item an iloc box locates."""
    version = fields.read(1)
    if version > 2:
        raise BrokenFileError('an iloc box of a version no decoder reads')
    fields.read(3)
    offset_size, length_size = divmod(fields.read(1), 16)
    base_size, index_size = divmod(fields.read(1), 16)
    index_size = index_size if version else 0  # reserved in version 0
    wide = 4 if version == 2 else 2
    for _ in range(fields.read(wide)):
        item = fields.read(wide)
        method = fields.read(2) & 0xF if version else _IN_FILE
        reference = fields.read(2)
        base = fields.read(base_size)
        extents = []
        for _ in range(fields.read(2)):
            fields.read(index_size)
            offset = fields.read(offset_size)
            extents.append((base + offset, fields.read(length_size)))
        yield _Location(item, method, reference, extents)


def _first_chunk(fields: _Fields, width: int) -> int | None:
    """Return where the first chunk of an stco or co64 box begins."""
    fields.read(4)
    return fields.read(width) if fields.read(4) else None


def _first_sample(fields: _Fields) -> int | None:
    """Return the length of the first sample an stsz box sizes."""
    fields.read(4)
    size, count = fields.read(4), fields.read(4)
    if not count:
        return None
    return size or fields.read(4)
