"""Drive the ASGI app directly, as a server does, for what TestClient cannot send."""

import asyncio
import json

# In the events of `call`: the client sends nothing more, and stays.
STALL = asyncio.Event()


def body(data: bytes, more: bool = False) -> dict:
    """An ASGI body event."""
    return {'type': 'http.request', 'body': data, 'more_body': more}


DISCONNECT = {'type': 'http.disconnect'}


def http_scope(method: str, path: str, headers, http_version='1.1', query=b'') -> dict:
    """The scope of an HTTP request as a server makes it (headers as ASGI pairs)."""
    return {
        'type': 'http',
        'asgi': {'version': '3.0', 'spec_version': '2.3'},
        'http_version': http_version,
        'method': method,
        'scheme': 'http',
        'path': path,
        'raw_path': path.encode(),
        'query_string': query,
        'root_path': '',
        'headers': headers,
        'client': ('127.0.0.1', 50000),
        'server': ('127.0.0.1', 8000),
    }


class _Answer:
    """What an app sent for a request: its status, headers and body so far."""

    def __init__(self, chunk_came=None) -> None:
        self.status = None
        self.headers: dict[str, str] = {}
        self.body = b''
        self._chunks = 0
        # Awaited with the count of body chunks as each arrives.
        self._chunk_came = chunk_came

    async def send(self, event) -> None:
        if event['type'] == 'http.response.start':
            self.status = event['status']
            self.headers = {
                name.decode(): value.decode() for name, value in event['headers']
            }
        elif event['type'] == 'http.response.body':
            self.body += event.get('body', b'')
            self._chunks += 1
            if self._chunk_came is not None:
                await self._chunk_came(self._chunks)


async def get_whole(
    app, path: str, headers=(), on_chunk=None
) -> tuple[int, dict, bytes]:
    """GET path from a client that stays until the whole answer has come.

    (falcon.testing's client leaves as soon as it has sent its request: an
    answer that listens for its client, disconnects.Listener, stops at once.)
    on_chunk(count, leave), if given, is awaited as each chunk of the body
    arrives (count of them so far): it may hold the client there, or call
    leave() for the client to go. Return the status, the response headers
    and the body.
    """
    pairs = [(name.lower().encode(), value.encode()) for name, value in headers]
    scope = http_scope('GET', path, pairs)
    gone = asyncio.Event()
    events = [body(b'')]

    async def receive():
        if events:
            return events.pop(0)
        await gone.wait()
        return DISCONNECT

    async def chunk_came(count):
        if on_chunk is not None:
            await on_chunk(count, gone.set)

    sent = _Answer(chunk_came)
    await app(scope, receive, sent.send)
    return sent.status, sent.headers, sent.body


async def call(
    app, method: str, path: str, events, headers=(), http_version='1.1', query=b''
) -> tuple[int, dict, list[bytes], int]:
    """Send a request whose body comes as the given ASGI events, in order.

    An asyncio.Event among them holds the body back until it is set (STALL is
    never set); after the events the client is gone (`http.disconnect`).
    Return the status, the response headers, the JSON body (None if empty)
    and how many events the app asked for.
    """
    pairs = [(name.lower().encode(), value.encode()) for name, value in headers]
    scope = http_scope(method, path, pairs, http_version, query)
    pending = list(events)
    pulled = 0

    async def receive():
        nonlocal pulled
        pulled += 1
        while pending and isinstance(pending[0], asyncio.Event):
            await pending.pop(0).wait()
        return pending.pop(0) if pending else DISCONNECT

    sent = _Answer()
    await app(scope, receive, sent.send)
    return sent.status, sent.headers, json.loads(sent.body or b'null'), pulled


async def post_chunked(app, path: str, chunks, headers=()) -> tuple[int, dict, int]:
    """POST chunks with no Content-Length, as a chunked upload arrives.

    Return the status, the JSON body and how many chunks the app asked for.
    """
    chunks = list(chunks)
    events = [body(chunk, more=i < len(chunks) - 1) for i, chunk in enumerate(chunks)]
    status, _, json_body, pulled = await call(app, 'POST', path, events, headers)
    return status, json_body, min(pulled, len(chunks))
