"""The service key: what asgilook signs with, so that only it can vouch for data.

It is ASGI_LOOK_SECRET, or, without one, a key made once and kept in the
catalog (catalog/keys.py), which the store reads at start.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

from ..config import Config
from ..store import standalone_secret

# Where a key's secret comes from: the store's (Store.service_secret).
SecretSource = Callable[[], Awaitable[bytes]]


class ServiceKey:
    """Sign and verify data with the key of this service.

    The key is `Config.secret` (ASGI_LOOK_SECRET) or, without one, the
    random key made once and kept in the catalog (source; by default read
    outside a store), so that every worker of the directory signs alike. A
    purpose (up to 16 bytes) keeps signatures made for one use from being
    valid for another.
    """

    DIGEST_SIZE = 32

    def __init__(self, config: Config, source: SecretSource | None = None) -> None:
        self._config = config
        self._source = source or (lambda: standalone_secret(config))
        self._key: bytes | None = None

    async def load(self) -> None:
        """Read the key, making it first if needed; idempotent."""
        if self._key is not None:
            return
        secret = self._config.secret
        if secret is None:
            secret = await self._source()
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
