"""Room kept on the catalog's disk for removals, given up when one finds none.

On a full disk SQLite has no room to append a change to its WAL: a DELETE,
which would free room, and the unlisting of an image whose file is gone
failed with the rest. The catalog keeps a file of `reserve` bytes in its
directory (`.catalog/reserve`); a removal that fails for want of room
removes it and tries once more. It is made again after the next change
that finds room, or at the next start.

Every function blocks: the catalog runs them in its writer thread.
"""

from __future__ import annotations

import contextlib
import os
import pathlib

NAME = 'reserve'


def make(path: pathlib.Path, size: int) -> bool:
    """Make the reserve if it is missing; return whether there is one now.

    If there is no room for it (or the disk is read-only), there is none,
    rather than part of one.
    """
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            # Blocks given, not only a length (as a sparse file would have).
            os.posix_fallocate(descriptor, 0, size)
        finally:
            os.close(descriptor)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(path)
        return False
    return True


def release(path: pathlib.Path) -> bool:
    """Give the reserve's room back to the disk; return whether there was one."""
    try:
        os.remove(path)
    except FileNotFoundError:
        return False
    return True
