"""The ceiling: a bare ASGI app answering the same bytes asgilook answers.

Served by the same uvicorn as asgilook in `bench.speed`. It knows three paths:
`/thumbnail` and `/list` answer bytes read once at start-up (the files named by
BENCH_THUMBNAIL and BENCH_LIST); `/image` reads the file BENCH_IMAGE from disk
on every request, as a server of stored files must.
"""

import os
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]


def _read(path: str) -> bytes:
    with open(path, 'rb') as source:
        return source.read()


_JPEG = [(b'content-type', b'image/jpeg')]
_JSON = [(b'content-type', b'application/json')]
_THUMBNAIL = _read(os.environ['BENCH_THUMBNAIL'])
_LIST = _read(os.environ['BENCH_LIST'])
_IMAGE_PATH = os.environ['BENCH_IMAGE']


async def app(
    scope: Message,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """Answer a path's bytes, or 404."""
    if scope['type'] == 'lifespan':
        while (await receive())['type'] != 'lifespan.shutdown':
            await send({'type': 'lifespan.startup.complete'})
        await send({'type': 'lifespan.shutdown.complete'})
        return

    path = scope['path']
    if path == '/thumbnail':
        headers, body = _JPEG, _THUMBNAIL
    elif path == '/list':
        headers, body = _JSON, _LIST
    elif path == '/image':
        headers, body = _JPEG, _read(_IMAGE_PATH)
    else:
        headers, body = [], b''
    status = 200 if headers else 404
    length = [(b'content-length', str(len(body)).encode())]
    await send(
        {'type': 'http.response.start', 'status': status, 'headers': headers + length}
    )
    await send({'type': 'http.response.body', 'body': body})
