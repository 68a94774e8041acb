"""Event streams as a client reads them, through falcon.testing."""

import asyncio
import json

from .fakes import upload_through

# Waits are bounded: a missing event fails the test, it never hangs it.
WAIT = 10


async def _later() -> bytes:
    await asyncio.sleep(0.001)
    return b''


class SSEReader:
    """The messages of a text/event-stream, as an EventSource parses them."""

    def __init__(self, stream):
        self._stream = stream
        self._buffer = b''

    async def message(self) -> dict[str, str]:
        """Return the next message: its fields (comments under ':')."""
        async with asyncio.timeout(WAIT):
            while b'\n\n' not in self._buffer:
                # falcon.testing's stream answers b'' until more came.
                self._buffer += await self._stream.read() or await _later()
        block, self._buffer = self._buffer.split(b'\n\n', 1)
        fields: dict[str, str] = {}
        for line in block.decode().split('\n'):
            name, _, value = line.partition(': ')
            fields[name] = value
        return fields

    async def event(self) -> dict[str, object]:
        """Return the next event (heartbeats and the first message skipped)."""
        while 'data' not in (fields := await self.message()):
            pass
        return {
            'id': int(fields['id']),
            'event': fields['event'],
            'data': json.loads(fields['data']),
        }


async def uploads(conductor, count: int) -> list[dict]:
    """Upload count images through a conductor; each as listed."""
    return [await upload_through(conductor) for _ in range(count)]
