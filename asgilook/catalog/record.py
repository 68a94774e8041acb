"""A row of the catalog: one complete image file, and the name it is stored under."""

from __future__ import annotations

import dataclasses


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
