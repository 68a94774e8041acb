"""One spelling of every path at the gate, and the event streams' own budget."""

import asyncio
import dataclasses
import json
import logging

import falcon.testing
import pytest
from falcon.errors import WebSocketDisconnected

from asgilook.app import create_served_app
from asgilook.http.admission import RELEASE

from .asgi import DISCONNECT, body, call, http_scope
from .fakes import redis_keys
from .streams import WAIT, SSEReader, uploads


def _budget(config, streams: int):
    config.events = dataclasses.replace(config.events, max_streams=streams)
    return config


@pytest.mark.parametrize(
    ('path', 'query', 'location'),
    [
        ('//images', '', '/images'),
        ('///images', 'limit=10', '/images?limit=10'),
        ('images', '', '/images'),
        ('', '', '/'),
        ('//events', 'after=3', '/events?after=3'),
        ('//', '', '/'),
        ('//gallery/gallery.css', '', '/gallery/gallery.css'),
        ('///images/a b.jpeg', 'x=%20y', '/images/a%20b.jpeg?x=%20y'),
    ],
)
async def test_another_spelling_of_a_path_is_a_308_to_its_one_url(
    config, path, query, location
):
    status, headers, answer, _ = await call(
        create_served_app(config), 'GET', path, [DISCONNECT], query=query.encode()
    )

    assert status == 308
    assert headers['location'] == location
    assert answer is None
    # Answered before the cache: nothing computed, nothing kept.
    assert 'x-asgilook-cache' not in headers
    assert await redis_keys(config) == []


@pytest.mark.parametrize('method', ['POST', 'DELETE', 'HEAD'])
def test_every_method_is_sent_to_the_one_spelling(client, method):
    resp = client.simulate_request(method, '//images')

    assert (resp.status_code, resp.headers['location']) == (308, '/images')


async def test_two_hundred_spellings_of_the_list_keep_one_entry(config):
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        await uploads(conductor, 1)
        answers = [
            await conductor.simulate_get('/' * slashes + 'images')
            for slashes in range(1, 201)
        ]
        keys = await redis_keys(config)

    assert answers[0].status_code == 200
    assert {resp.status_code for resp in answers[1:]} == {308}
    assert [key for key in keys if b'images' in key] == [b'asgilook:/images']


async def test_a_stream_asked_for_under_another_spelling_is_never_opened(config):
    # Each such request stayed open until the next heartbeat, unwatched.
    async with asyncio.timeout(WAIT):
        status, headers, _, _ = await call(
            create_served_app(config), 'GET', '//events', [DISCONNECT]
        )

    assert (status, headers['location']) == (308, '/events')


async def test_streams_beyond_the_budget_are_a_503_in_json(events_config):
    app = create_served_app(_budget(events_config, 2))
    async with (
        falcon.testing.ASGIConductor(app) as conductor,
        conductor.get_stream('/events') as first,
        conductor.get_stream('/events') as second,
    ):
        await SSEReader(first.stream).message()
        await SSEReader(second.stream).message()
        refused = await conductor.simulate_get('/events')
        listed = await conductor.simulate_get('/images')

    assert refused.status_code == 503
    assert refused.headers['content-type'] == 'application/json'
    assert refused.headers['retry-after'] == '5'
    assert refused.json['title'] == 'Too many event streams'
    assert '2 a worker' in refused.json['description']
    assert listed.status_code == 200


async def test_a_closed_stream_gives_its_place_back(events_config):
    app = create_served_app(_budget(events_config, 1))
    async with falcon.testing.ASGIConductor(app) as conductor:
        for _ in range(3):
            async with conductor.get_stream('/events') as stream:
                first = await SSEReader(stream.stream).message()
            assert first['id'] == '0'
        assert app.streams.open == 0


async def test_websockets_share_the_budget_and_are_closed_1013_beyond(events_config):
    app = create_served_app(_budget(events_config, 1))
    async with (
        falcon.testing.ASGIConductor(app) as conductor,
        conductor.get_stream('/events') as stream,
    ):
        await SSEReader(stream.stream).message()
        async with asyncio.timeout(WAIT):
            with pytest.raises(WebSocketDisconnected) as closed:
                async with conductor.simulate_ws('/events') as ws:
                    await ws.receive_text()

    # Accepted, then closed at once: try again later.
    assert closed.value.code == 1013


async def test_a_websocket_refused_by_a_server_that_answers_handshakes_gets_json(
    events_config,
):
    app = create_served_app(_budget(events_config, 0))
    sent = []

    async def receive():
        return {'type': 'websocket.connect'}

    async def send(event):
        sent.append(event)

    scope = {
        'type': 'websocket',
        'asgi': {'version': '3.0', 'spec_version': '2.4'},
        'path': '//events',
        'raw_path': b'//events',
        'query_string': b'',
        'headers': [(b'host', b'localhost')],
        'extensions': {'websocket.http.response': {}},
    }
    await app(scope, receive, send)

    assert [event['type'] for event in sent] == [
        'websocket.http.response.start',
        'websocket.http.response.body',
    ]
    assert sent[0]['status'] == 503
    assert json.loads(sent[1]['body'])['title'] == 'Too many event streams'


async def test_refused_streams_are_logged_once_a_minute(events_config, caplog):
    app = create_served_app(_budget(events_config, 0))
    caplog.set_level(logging.WARNING, logger='asgilook')
    async with falcon.testing.ASGIConductor(app) as conductor:
        statuses = [
            (await conductor.simulate_get('/events')).status_code for _ in range(5)
        ]

    assert statuses == [503] * 5
    assert [record.getMessage() for record in caplog.records] == [
        'refused an event stream: this worker holds 0, its most '
        '(ASGI_LOOK_EVENTS_MAX_STREAMS)'
    ]


async def test_an_admitted_stream_gives_back_its_place_among_requests(events_config):
    app = create_served_app(events_config)
    released = []
    scope = http_scope('GET', '/events', [(b'host', b'localhost')])
    scope[RELEASE] = lambda: released.append(True)
    answered = {}

    events = [body(b''), DISCONNECT]

    async def receive():
        # The request, then the client goes once it has its first message.
        if len(events) == 1:
            await sent_first.wait()
        return events.pop(0) if events else DISCONNECT

    sent_first = asyncio.Event()

    async def send(event):
        answered.setdefault('status', event.get('status'))
        if event['type'] == 'http.response.body':
            sent_first.set()

    async with falcon.testing.ASGIConductor(app), asyncio.timeout(WAIT):
        await app(scope, receive, send)

    assert answered['status'] == 200
    assert released == [True]
