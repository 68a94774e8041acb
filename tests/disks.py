"""Storage directories for tests: settings over one, images put by hand, full disks."""

import contextlib
import os
import pathlib
import uuid

from asgilook.catalog import file_name

from .fakes import make_config
from .images import encode, gradient

SECRET = 'a test secret of enough length'
HOUR = 3600


def config_over(storage, redis_server=None):
    """A Config over storage whose service key needs no room on the disk."""
    config = make_config(storage, redis_server)
    config.secret = SECRET.encode()
    return config


def put_image(directory, size=(320, 200), name_size=None, data=None) -> str:
    """Copy a JPEG into a storage directory by hand; return its id.

    name_size: the size its name claims, if not its own; data: other bytes.
    """
    data = encode(gradient(size), 'JPEG', quality=90) if data is None else data
    image_id = str(uuid.uuid4())
    name = file_name(image_id, name_size or size, len(data))
    (pathlib.Path(directory) / name).write_bytes(data)
    return image_id


class Disk:
    """A small tmpfs that the test fills to the last page and empties again."""

    def __init__(self, mount: pathlib.Path) -> None:
        self.mount = mount
        self.storage = mount / 'images'
        self.storage.mkdir()
        self._filler = mount / 'filler'

    @property
    def free_pages(self) -> int:
        return os.statvfs(self.mount).f_bavail

    def fill(self, leave_pages=0) -> None:
        """Take every page but leave_pages of the file system."""
        page = os.statvfs(self.mount).f_bsize
        descriptor = os.open(self._filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        try:
            with contextlib.suppress(OSError):
                while True:
                    os.write(descriptor, bytes(page))
        finally:
            os.close(descriptor)
        size = os.stat(self._filler).st_size
        os.truncate(self._filler, size - leave_pages * page)
        assert self.free_pages == leave_pages

    def empty(self) -> None:
        self._filler.unlink()
