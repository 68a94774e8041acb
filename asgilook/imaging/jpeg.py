"""JPEG files: the size their frame header declares, read without decoding."""

from __future__ import annotations

import os
from collections.abc import Callable

from ..errors import JPEGError

START_OF_IMAGE = b'\xff\xd8'
END_OF_IMAGE = b'\xff\xd9'

# Start-of-frame markers: every coding process (baseline, extended,
# progressive, lossless; Huffman or arithmetic). C4, C8 and CC are not frames.
_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_START_OF_SCAN = 0xDA
# Markers that stand alone, without a length: TEM and the restart markers.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# What one read takes from the start of a file: the frame header of a JPEG
# that asgilook writes is within it.
_HEAD = 4096
# Metadata comes in segments of at most 64 KiB (EXIF, XMP, colour profiles in
# several): a frame header further than this many segments in is not looked for.
_MAX_SEGMENTS = 256


def frame_size(
    path: str | os.PathLike[str], directory: int | None = None
) -> tuple[int, int]:
    """Return the width and height a complete JPEG file declares.

    Two or three small reads: the start of the file (start-of-image marker,
    then the segments up to the frame header) and its last two bytes (the
    end-of-image marker of a file that was written to its end). directory:
    a descriptor of the directory a relative path is in.
    """
    descriptor = os.open(path, os.O_RDONLY, dir_fd=directory)
    try:
        length = os.fstat(descriptor).st_size
        head = os.pread(descriptor, _HEAD, 0)
        if not head.startswith(START_OF_IMAGE):
            raise JPEGError('not a JPEG')
        if length < 4 or os.pread(descriptor, 2, length - 2) != END_OF_IMAGE:
            raise JPEGError('not a whole JPEG: its end-of-image marker is missing')
        return _frame_size(descriptor, head, length)
    finally:
        os.close(descriptor)


def _frame_size(descriptor: int, head: bytes, length: int) -> tuple[int, int]:
    _, width, height = frame(
        lambda offset, size: _read(descriptor, head, offset, size), length
    )
    return width, height


def frame(read: Callable[[int, int], bytes], length: int) -> tuple[int, int, int]:
    """Return the start-of-frame marker of a JPEG, and the width and height.

    read(offset, size) gives the bytes of the file of `length` bytes there
    (fewer at its end). JPEGError if the segments before the frame header
    are broken: no decoder reads a JPEG whose first scan comes before it.
    """
    offset = len(START_OF_IMAGE)
    for _ in range(_MAX_SEGMENTS):
        # A marker, its segment's length, and a frame header's fields.
        segment = read(offset, 9)
        if len(segment) < 2 or segment[0] != 0xFF:
            break
        marker = segment[1]
        if marker == 0xFF:
            # Fill bytes may come before a marker.
            offset += 1
            continue
        if marker in _STANDALONE:
            offset += 2
            continue
        if marker == _START_OF_SCAN or len(segment) < 4:
            break
        if marker in _FRAMES and len(segment) == 9:
            height = int.from_bytes(segment[5:7], 'big')
            width = int.from_bytes(segment[7:9], 'big')
            return marker, width, height
        # A segment's length counts its own two bytes.
        size = int.from_bytes(segment[2:4], 'big')
        offset += 2 + size
        if size < 2 or offset >= length:
            break
    raise JPEGError('not a JPEG: no frame header where one belongs')


def _read(descriptor: int, head: bytes, offset: int, size: int) -> bytes:
    if offset + size <= len(head):
        return head[offset : offset + size]
    return os.pread(descriptor, size, offset)
