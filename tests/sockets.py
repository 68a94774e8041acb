"""Event WebSockets as a test's client holds them, over falcon.testing."""

import asyncio
import json

import falcon.testing
import pytest
from falcon.errors import WebSocketDisconnected

from asgilook.app import create_served_app

from .streams import WAIT

LATE = 'only a first message {"after": <id>}, before any event, is read'


NO_POSITION = 'the first message may be {"after": <id>} and nothing else'


def events_app(config):
    return falcon.testing.ASGIConductor(create_served_app(config))


def events_socket(conductor, query: str = ''):
    """A WebSocket to /events; a server of ASGI 2.4 tells the reason of a close."""
    return conductor.simulate_ws('/events', query_string=query, spec_version='2.4')


async def received(ws, count: int = 1) -> list[dict]:
    """The next count messages of a socket, each a JSON text message."""
    async with asyncio.timeout(WAIT):
        return [json.loads(await ws.receive_text()) for _ in range(count)]


async def closing(ws) -> tuple[int, str]:
    """Wait for the server to close the socket; its code and reason."""
    async with asyncio.timeout(WAIT):
        with pytest.raises(WebSocketDisconnected):
            await ws.receive_text()
    assert ws.closed
    return ws.close_code, ws.close_reason
