"""A row of the catalog: one complete image file, the name it is stored under.

And the record a file of the storage directory makes: what its name, size
and time say, and whether its content holds (what a reindex reads).
"""

from __future__ import annotations

import dataclasses
import datetime
import os
import pathlib
import re
from stat import S_ISREG

from ..errors import JPEGError
from ..imaging import jpeg


@dataclasses.dataclass(frozen=True)
class Page:
    """One page of the catalog, and the seq after which the next one starts."""

    records: list[Record]
    next_after: int | None


@dataclasses.dataclass(frozen=True)
class Record:
    """One row of the catalog: a complete image file."""

    image_id: str
    size: tuple[int, int]
    length: int
    modified_ns: int

    @property
    def name(self) -> str:
        """The name of the record's file in the storage directory."""
        return file_name(self.image_id, self.size, self.length)


def file_name(image_id: str, size: tuple[int, int], length: int) -> str:
    """Return the file name an image of this size and length is stored under."""
    return f'{image_id}.{size[0]}x{size[1]}.{length}.jpeg'


# Sides of up to five digits, lengths of up to 18: what a JPEG and the
# catalog hold (sides of 16 bits, see _MAX_SIDE; SQLite's signed 64-bit integers).
_NAME = re.compile(
    r'(?P<id>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})'
    r'\.(?P<width>[1-9][0-9]{0,4})x(?P<height>[1-9][0-9]{0,4})'
    r'\.(?P<length>[1-9][0-9]{0,17})\.jpeg'
)
# The widest and tallest JPEG: its frame header holds each side in 16 bits.
_MAX_SIDE = 0xFFFF
# The times a record holds, in ns since 1970: the catalog keeps them in
# SQLite's signed 64-bit integers (to 2262-04-11T23:47:16Z), and the list
# shows none before 1970. A file's time outside is moved to the nearer end.
_TIMES_NS = range(0, 2**63)


def read_record(item: os.DirEntry[str]) -> tuple[Record | None, str]:
    """Return the record a file's name, size and time make, or why it makes none.

    The reason is empty for hidden files: those asgilook keeps beside its
    images (the catalog, the service key), and the system's. With a record,
    it says why the record is not dated with the file's time, if it is not.
    """
    if item.name.startswith('.'):
        return None, ''
    match = _NAME.fullmatch(item.name)
    if match is None or max(int(match['width']), int(match['height'])) > _MAX_SIDE:
        return None, 'not the name of an image'
    stat = item.stat(follow_symlinks=False)
    length = int(match['length'])
    if not item.is_file(follow_symlinks=False) or stat.st_size != length:
        return None, f'{stat.st_size} bytes where its name says {length}: damaged'
    size = (int(match['width']), int(match['height']))
    modified = min(max(stat.st_mtime_ns, _TIMES_NS.start), _TIMES_NS.stop - 1)
    record = Record(match['id'], size, length, modified)
    return record, '' if modified == stat.st_mtime_ns else _out_of_range(modified)


def is_image_name(name: str) -> bool:
    """Whether name is one an image is stored under (see file_name)."""
    return _NAME.fullmatch(name) is not None


def holds(directory: pathlib.Path, record: Record) -> bool:
    """Return whether the file of a record is there, as read_record reads it.

    A regular file of the length its name says (its content is not read).
    """
    try:
        # Not a Path: a reindex asks this of every file it lists or unlists.
        found = os.lstat(os.path.join(directory, record.name))
    except FileNotFoundError:
        return False
    return S_ISREG(found.st_mode) and found.st_size == record.length


def _out_of_range(modified_ns: int) -> str:
    side = 'before' if modified_ns == _TIMES_NS.start else 'after'
    dated = datetime.datetime.fromtimestamp(modified_ns // 10**9, datetime.UTC)
    return (
        f'its time is {side} the range the catalog holds (1970 to 2262): '
        f'dated {dated:%Y-%m-%d %H:%M:%S} UTC'
    )


def check_jpeg(directory: int, name: str, record: Record) -> str:
    """Return why the file of a record is not the JPEG its name says, or ''.

    directory: a descriptor of the directory the file named name is in.
    OSError if it cannot be read.
    """
    try:
        size = jpeg.frame_size(name, directory)
    except JPEGError as ex:
        return str(ex)
    if size != record.size:
        named = f'{record.size[0]}x{record.size[1]}'
        return f'a JPEG of {size[0]}x{size[1]} where its name says {named}'
    return ''
