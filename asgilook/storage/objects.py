"""An S3-compatible object store as the store's bytes: each stored JPEG one object.

`s3://bucket/prefix` (ASGI_LOOK_STORAGE_URL); the endpoint, credentials and
region come from the AWS SDKs' own variables (AWS_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION), so that AWS S3,
MinIO, SeaweedFS, Ceph or R2 are set alike. An upload's JPEG is held in
memory (no file on the host: the object is what is durable), then put as
an object by the catalog before its row is committed (catalog/postgres.py).
A fault of the store is an OSError: the store answers 503.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import pathlib
import time
import urllib.parse
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import botocore.config
import botocore.exceptions
from aiobotocore.session import get_session

from .. import blocking
from . import files, uploads

# How long the object store may take to connect, to send the next bytes,
# and to answer a request whole (or a read of a stream): an upload's put
# stalled by a store that hung was bounded by none of botocore's timeouts.
CONNECT_TIMEOUT = 2.0
READ_TIMEOUT = 5.0
TIMEOUT = 5.0
# How many stored JPEGs a host holds in memory at once for its renders.
READS_AT_ONCE = 8
# Object store errors that say nothing is there.
_MISSING = frozenset({'NoSuchKey', '404', 'NotFound'})


class Objects(uploads.Incoming):
    """Keep stored JPEGs as objects of one bucket, under one prefix."""

    # What a start or a fault names.
    variable = 'ASGI_LOOK_STORAGE_URL'

    def __init__(self, url: str, path: pathlib.Path) -> None:
        parts = urllib.parse.urlsplit(url)
        self.bucket = parts.hostname or ''
        prefix = parts.path.strip('/')
        self.prefix = f'{prefix}/' if prefix else ''
        self.where = f's3://{self.bucket}/{self.prefix}'
        # The host's own files on their way in.
        super().__init__(path)
        # Uploads converted, held until their object is put (see write).
        self._held: dict[pathlib.Path, bytes] = {}
        self._reads = asyncio.Semaphore(READS_AT_ONCE)
        self._client: Any = None
        self._exits = contextlib.AsyncExitStack()

    async def prepare(self) -> None:
        """Connect to the bucket (OSError if it is missing or unreachable)."""
        if self._client is not None:
            return
        await blocking.run(blocking.FILES, files.prepare_incoming, self.path)
        config = botocore.config.Config(
            connect_timeout=CONNECT_TIMEOUT,
            read_timeout=READ_TIMEOUT,
            retries={'max_attempts': 1},
            max_pool_connections=64,
            # No checksum of every body but those a store asks for: a JPEG's
            # write is confirmed by the store's answer, and the CPU is the
            # renders' (a put of 580 KB took 2.5 ms of CPU with them, 1.8
            # without; a get 1.45 and 1.17).
            request_checksum_calculation='when_required',
            response_checksum_validation='when_required',
        )
        client = await self._exits.enter_async_context(
            get_session().create_client('s3', config=config)
        )
        try:
            await _has_bucket(client, self.bucket)
        except BaseException:
            # Let go now: a server whose start failed stops without a shutdown
            # (its HTTP session would be reported unclosed at the exit).
            await self._exits.aclose()
            raise
        self._client = client

    async def check(self) -> None:
        """Make sure files can be written on their way in, and the bucket answers."""
        await super().check()
        if self._client is None:
            raise OSError(errno.ENOTCONN, 'not connected to the object store')
        await _has_bucket(self._client, self.bucket)

    def client(self) -> Any:
        """The S3 client, once prepared."""
        return self._client

    async def release(self) -> None:
        """What a server that stops lets go: the client (prepare connects again)."""
        self._client = None
        await self._exits.aclose()

    async def write(self, path: pathlib.Path, data: bytes) -> None:
        """Hold an upload's JPEG until its object is put: no file on the host.

        A file would be written, flushed to disk and read back only to be
        sent: 0.6 ms of CPU and 4 ms waiting for the disk, for 580 KB.
        """
        self._held[path] = data

    def kept(self, path: pathlib.Path) -> None:
        """Let go of an upload's JPEG once its object is listed."""
        del self._held[path]

    async def discard(self, path: pathlib.Path) -> None:
        """Let go of an upload's JPEG that is not stored."""
        self._held.pop(path, None)

    async def put(self, name: str, path: pathlib.Path) -> None:
        """Write the object of a stored JPEG, and wait until it holds.

        From what write holds under path, or else from the file there (a
        reindex's or a migration's).
        """
        data = self._held.get(path)
        if data is None:
            data = await blocking.run(blocking.FILES, path.read_bytes)
        async with answered():
            await self._client.put_object(
                Bucket=self.bucket, Key=self.prefix + name, Body=data
            )

    async def remove(self, name: str) -> None:
        """Remove the object of a stored JPEG (gone already: nothing to do)."""
        async with answered():
            await self._client.delete_object(Bucket=self.bucket, Key=self.prefix + name)

    async def open(self, name: str) -> StoredObject:
        """Open a stored JPEG to read as it arrives; FileNotFoundError if gone."""
        async with answered():
            answer = await self._client.get_object(
                Bucket=self.bucket, Key=self.prefix + name
            )
        return StoredObject(answer['Body'])

    @contextlib.asynccontextmanager
    async def readable(self, name: str) -> AsyncIterator[bytes]:
        """A stored JPEG's bytes, for a renderer to read.

        Read into memory, not copied to a file of the host (a trip to a
        thread for each 64 KiB, and the file read again by the render);
        READS_AT_ONCE bound the memory.
        """
        async with self._reads:
            stored = await self.open(name)
            try:
                data = await stored.read()
            finally:
                await stored.close()
            yield data


async def _has_bucket(client: Any, bucket: str) -> None:
    """Ask the store for a bucket: OSError if it is missing or unreachable."""
    try:
        async with answered():
            await client.head_bucket(Bucket=bucket)
    except FileNotFoundError as ex:
        raise OSError(errno.ENOENT, f'no bucket {bucket}') from ex


async def names(objects: Objects) -> AsyncIterator[tuple[str, float]]:
    """Every stored JPEG's name under the prefix, in order, and its age in seconds.

    What a reindex of the shared catalog reads (catalog/reconcile.py).
    """
    pages = (
        objects.client()
        .get_paginator('list_objects_v2')
        .paginate(Bucket=objects.bucket, Prefix=objects.prefix)
    )
    now = time.time()
    with faults():
        async for page in pages:
            for found in page.get('Contents', []):
                name = found['Key'][len(objects.prefix) :]
                yield name, now - found['LastModified'].timestamp()


class StoredObject:
    """An object open for reading, as it arrives: a response's stream."""

    CHUNK = 64 * 1024

    def __init__(self, body: Any) -> None:
        self._body = body

    async def read(self, size: int | None = -1) -> bytes:
        """Return up to size bytes (all that are left if size is -1 or None)."""
        async with answered():
            data: bytes = await self._body.read(
                None if size is None or size < 0 else size
            )
        return data

    async def close(self) -> None:
        self._body.close()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while chunk := await self.read(self.CHUNK):
            yield chunk


@contextlib.asynccontextmanager
async def answered() -> AsyncIterator[None]:
    """An answer of the object store within TIMEOUT; its faults as OSError."""
    with faults():
        async with asyncio.timeout(TIMEOUT):
            yield


@contextlib.contextmanager
def faults() -> Iterator[None]:
    """Say a missing object as FileNotFoundError, any other fault as OSError."""
    try:
        yield
    except botocore.exceptions.ClientError as ex:
        code = str(ex.response.get('Error', {}).get('Code', ''))
        if code in _MISSING:
            raise FileNotFoundError(errno.ENOENT, f'no such object ({code})') from ex
        raise OSError(errno.EIO, f'the object store refused: {code}') from ex
    except (
        botocore.exceptions.BotoCoreError,
        aiohttp.ClientError,
        TimeoutError,
    ) as ex:
        raise OSError(errno.EIO, f'the object store failed: {ex}') from ex
