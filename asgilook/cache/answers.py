"""An answer's body as the cache reads it: whole if small enough, else passed on.

A body set as data or media is rendered; a stream is read, since what is
kept must also be what is sent, and a stream can be read once. Up to a
bound: past it (an entry Redis could not give back in time) the bytes read
so far are sent, then the rest of the stream as it comes, and nothing is
kept, so that a stream of any length (the whole list of a large catalog)
takes bounded memory.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import falcon.asgi

# What one read of a stream that is read (a stored file) asks for.
_CHUNK = 64 * 1024


async def render_body(resp: falcon.asgi.Response, largest: int) -> bytes | None:
    """Return the body of an answer if it has one of at most largest bytes.

    A stream read whole becomes the answer's data; one longer than largest
    (by its Content-Length, or as read) stays a stream, and None is returned.
    """
    stream = resp.stream
    if stream is None:
        body = await resp.render_body()
        return body if body is None or len(body) <= largest else None
    length = resp.get_header('Content-Length')
    if length is not None and int(length) > largest:
        return None
    chunks = _chunks(stream)
    read: list[bytes] = []
    size = 0
    try:
        async for chunk in chunks:
            read.append(chunk)
            size += len(chunk)
            if size > largest:
                resp.stream = _Rest(read, chunks, stream)
                return None
    except BaseException:
        # Answered as an error: nothing of the stream is sent.
        resp.stream = None
        await _close(stream)
        raise
    resp.stream = None
    await _close(stream)
    resp.data = b''.join(read)
    return resp.data


async def _close(stream: Any) -> None:
    # Falcon awaits close() of a stream it sends; do what it would have done.
    if hasattr(stream, 'close'):
        await stream.close()


async def _chunks(stream: Any) -> AsyncIterator[bytes]:
    """Yield the bytes of a stream Falcon could send, as it would read them."""
    if hasattr(stream, 'read'):
        while chunk := await stream.read(_CHUNK):
            yield chunk
    else:
        async for chunk in stream:
            yield chunk


class _Rest:
    """A stream's bytes read already, then the rest of it: what Falcon sends."""

    def __init__(
        self, read: list[bytes], chunks: AsyncIterator[bytes], stream: Any
    ) -> None:
        self._read = read
        self._chunks = chunks
        self._stream = stream

    def __aiter__(self) -> _Rest:
        return self

    async def __anext__(self) -> bytes:
        if self._read:
            return self._read.pop(0)
        return await anext(self._chunks)

    async def close(self) -> None:
        await _close(self._stream)
