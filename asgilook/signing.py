"""The service key: what asgilook signs with, so that only it can vouch for data."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import pathlib
import secrets

from . import blocking, files
from .config import Config
from .errors import ServiceKeyError

# The file of the storage directory that keeps the key made at the first start.
KEY_FILE_NAME = '.service-key'


class ServiceKey:
    """Sign and verify data with the key of this service.

    The key is `Config.secret` (ASGI_LOOK_SECRET) or, without one, a random
    key made once in the storage directory, readable by its owner only, so
    that every worker of the directory signs alike. A purpose (up to 16
    bytes) keeps signatures made for one use from being valid for another.
    """

    DIGEST_SIZE = 32

    def __init__(self, config: Config) -> None:
        self._config = config
        self._key: bytes | None = None

    async def load(self) -> None:
        """Read the key, making it first if needed; idempotent."""
        if self._key is not None:
            return
        secret = self._config.secret
        if secret is None:
            directory = pathlib.Path(self._config.storage_path)
            secret = await blocking.run(blocking.FILES, _kept_secret, directory)
        # Any length of secret gives a key of the size BLAKE2b takes.
        self._key = hashlib.blake2b(secret, digest_size=64).digest()

    def sign(self, purpose: bytes, *parts: bytes) -> bytes:
        """Return the signature of a sequence of byte strings for a purpose."""
        if self._key is None:
            raise RuntimeError('the service key is used before load()')
        digest = hashlib.blake2b(
            key=self._key, person=purpose, digest_size=self.DIGEST_SIZE
        )
        for part in parts:
            # Lengths first: ('ab', 'c') and ('a', 'bc') sign differently.
            digest.update(len(part).to_bytes(8, 'big'))
            digest.update(part)
        return digest.digest()

    def verify(self, signature: bytes, purpose: bytes, *parts: bytes) -> bool:
        """Return whether signature is this key's for parts and purpose."""
        return hmac.compare_digest(signature, self.sign(purpose, *parts))


def _kept_secret(directory: pathlib.Path) -> bytes:
    """Return the secret kept in directory, making it if there is none."""
    path = directory / KEY_FILE_NAME
    try:
        with contextlib.suppress(FileNotFoundError):
            return _read(path)
        _make(directory, path)
        return _read(path)
    except OSError as ex:
        raise ServiceKeyError(
            f'cannot read or make the service key {path} '
            f'(or set ASGI_LOOK_SECRET): {ex.strerror or ex}'
        ) from ex


def _make(directory: pathlib.Path, path: pathlib.Path) -> None:
    """Write a new key whole under another name, then link it into place.

    The link fails if another process linked its key first: every process
    then reads that one, and nobody ever reads a key half written.
    """
    # Written where uploads are: a next start removes it if this one dies.
    partial = files.temporary_path(directory)
    partial.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, 'w') as output:
            output.write(secrets.token_hex(32) + '\n')
            output.flush()
            os.fsync(output.fileno())
        with contextlib.suppress(FileExistsError):
            os.link(partial, path)
    finally:
        os.remove(partial)


def _read(path: pathlib.Path) -> bytes:
    secret = path.read_bytes().strip()
    if len(secret) < 32:
        raise ServiceKeyError(
            f'the service key {path} is damaged; remove it to have a new one '
            'made (cached answers are then computed again), or set '
            'ASGI_LOOK_SECRET'
        )
    return secret
