"""Small real file systems (tmpfs) for the tests of a full or read-only disk."""

import contextlib
import os
import subprocess

MOUNT_HELP = (
    'The storage fault tests mount a small tmpfs, which needs root (or '
    'CAP_SYS_ADMIN); run them as root, or in a container that allows mount.'
)


@contextlib.contextmanager
def tmpfs(path, size: str = '8m'):
    """Mount a tmpfs of `size` at path (made if missing); unmount it after."""
    path.mkdir(parents=True, exist_ok=True)
    _mount('-t', 'tmpfs', '-o', f'size={size}', 'tmpfs', str(path))
    try:
        yield path
    finally:
        # Read-only layers included.
        while os.path.ismount(path):
            subprocess.run(['umount', '-l', str(path)], check=True)


def read_only(path) -> None:
    """Make path read-only from now on, as a storage remounted read-only is.

    A read-only bind mount of path over itself: a file system with files
    open for writing (asgilook's counter) refuses a plain `remount,ro`.
    """
    _mount('--bind', str(path), str(path))
    _mount('-o', 'remount,bind,ro', str(path))


def writable(path) -> None:
    """Undo read_only()."""
    subprocess.run(['umount', str(path)], check=True)


def _mount(*args: str) -> None:
    mounted = subprocess.run(['mount', *args], capture_output=True, text=True)
    if mounted.returncode:
        raise RuntimeError(f'{MOUNT_HELP} mount said: {mounted.stderr.strip()}')
