"""A WebSocket to /events from a page of another site is refused (403)."""

import asyncio
import json

import falcon.testing
import httpx
import pytest
from falcon.errors import WebSocketDisconnected
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from asgilook.app import create_served_app
from asgilook.events import origins

from .images import encode, gradient
from .streams import WAIT, uploads

# What falcon.testing sends as the Host of a request.
HOST = 'falconframework.org'


def _socket(conductor, origin):
    headers = {} if origin is None else {'Origin': origin}
    return conductor.simulate_ws('/events', headers=headers, spec_version='2.4')


@pytest.mark.parametrize(
    'origin',
    [
        'http://evil.example',
        'null',
        f'http://{HOST}:8080',
        f'http://{HOST}.evil.example',
        f'http://evil.example/{HOST}',
        f'http://{HOST}@evil.example',
        f'ftp://{HOST}',
        'http://[::1',
        '',
    ],
)
async def test_a_page_of_another_site_is_refused_before_any_event(
    events_config, origin
):
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        with pytest.raises(WebSocketDisconnected) as refused:
            async with _socket(conductor, origin):
                pass
        async with _socket(conductor, f'http://{HOST}') as own:
            images = await uploads(conductor, 1)
            async with asyncio.timeout(WAIT):
                message = json.loads(await own.receive_text())

    # Falcon's code for a 403: a server answers the handshake with one.
    assert refused.value.code == 3403
    assert message['data'] == images[0]


@pytest.mark.parametrize(
    'origin',
    [
        None,
        f'http://{HOST}',
        f'https://{HOST}',
        f'http://{HOST}:80',
        f'https://{HOST}:443',
        f'HTTP://{HOST.upper()}',
    ],
)
async def test_the_services_own_pages_and_other_clients_are_served(
    events_config, origin
):
    async with (
        falcon.testing.ASGIConductor(create_served_app(events_config)) as conductor,
        _socket(conductor, origin) as ws,
    ):
        images = await uploads(conductor, 1)
        async with asyncio.timeout(WAIT):
            message = json.loads(await ws.receive_text())

    assert message == {'id': 1, 'event': 'image.created', 'data': images[0]}


def test_the_origins_of_other_sites_given_are_allowed():
    """The seam for the CORS origins to come: none are given today."""
    req = falcon.testing.create_asgi_req(headers={'Origin': 'https://Gallery.example'})

    assert origins.allowed(req, frozenset({'https://gallery.example'}))
    assert not origins.allowed(req, frozenset({'https://other.example'}))
    assert not origins.allowed(req, frozenset())


@pytest.mark.live
async def test_a_real_server_answers_a_foreign_origin_403(live_server):
    url = live_server.replace('http://', 'ws://') + '/events?after=0'
    body = encode(gradient(), 'PNG')

    with pytest.raises(InvalidStatus) as refused:
        await ws_connect(url, origin='http://evil.example', open_timeout=WAIT)
    async with (
        ws_connect(url, origin=live_server, open_timeout=WAIT) as own,
        httpx.AsyncClient(base_url=live_server) as client,
    ):
        created = await client.post('/images', content=body)
        async with asyncio.timeout(WAIT):
            message = json.loads(await own.recv())

    assert refused.value.response.status_code == 403
    assert created.status_code == 201
    assert message['event'] == 'image.created'
    assert message['data']['id'] == created.json()['id']
