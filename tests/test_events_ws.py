"""/events over a WebSocket: the events of the SSE stream, one JSON message each."""

import json

import pytest

from .fakes import owner
from .sockets import LATE, NO_POSITION, closing, events_app, events_socket, received
from .streams import SSEReader, uploads


async def test_events_are_json_text_messages_as_the_sse_stream_tells_them(
    events_config,
):
    async with (
        events_app(events_config) as conductor,
        conductor.get_stream('/events') as stream,
        events_socket(conductor) as ws,
    ):
        sse = SSEReader(stream.stream)
        await sse.message()
        images = await uploads(conductor, 2)
        await conductor.simulate_delete(images[0]['image'], headers=owner(images[0]))
        texts = [await ws.receive_text() for _ in range(3)]
        streamed = [await sse.event() for _ in range(3)]
        listed = (await conductor.simulate_get('/images')).json

    assert texts[0] == json.dumps(
        {'id': 1, 'event': 'image.created', 'data': images[0]}, separators=(',', ':')
    )
    assert [json.loads(text) for text in texts] == streamed
    assert streamed == [
        {'id': 1, 'event': 'image.created', 'data': images[0]},
        {'id': 2, 'event': 'image.created', 'data': images[1]},
        {'id': 3, 'event': 'image.deleted', 'data': images[0]['id']},
    ]
    # The image of an event is the image as the list shows it.
    assert listed == [images[1]]


@pytest.mark.parametrize('after', [0, 1, 3])
async def test_after_in_the_url_resumes_after_that_id(events_config, after):
    async with events_app(events_config) as conductor:
        images = await uploads(conductor, 3)
        async with events_socket(conductor, f'after={after}') as ws:
            images += await uploads(conductor, 1)
            messages = await received(ws, 4 - after)

    assert [message['id'] for message in messages] == list(range(after + 1, 5))
    assert [message['data'] for message in messages] == images[after:]


async def test_a_first_message_resumes_after_its_id_none_twice(events_config):
    async with events_app(events_config) as conductor:
        images = await uploads(conductor, 3)
        async with events_socket(conductor) as ws:
            await ws.send_text('{"after": 1}')
            caught_up = await received(ws, 2)
            images += await uploads(conductor, 2)
            following = await received(ws, 2)

    messages = caught_up + following
    assert [message['id'] for message in messages] == [2, 3, 4, 5]
    assert [message['data'] for message in messages] == images[1:]


async def test_a_socket_without_a_position_starts_from_now(events_config):
    async with events_app(events_config) as conductor:
        await uploads(conductor, 2)
        async with events_socket(conductor) as ws:
            images = await uploads(conductor, 1)
            messages = await received(ws)

    assert messages == [{'id': 3, 'event': 'image.created', 'data': images[0]}]


# Its place is set: by an event that reached it, or by the URL.
@pytest.mark.parametrize('query', ['', 'after=0'])
async def test_a_first_message_after_an_event_closes_1008(events_config, query):
    async with (
        events_app(events_config) as conductor,
        events_socket(conductor, query) as ws,
    ):
        images = await uploads(conductor, 1)
        (message,) = await received(ws)
        await ws.send_text('{"after": 0}')
        closed = await closing(ws)

    assert message['data'] == images[0]
    assert closed == (1008, LATE)


async def test_a_message_after_the_url_set_the_position_closes_1008(events_config):
    async with (
        events_app(events_config) as conductor,
        events_socket(conductor, 'after=0') as ws,
    ):
        await ws.send_text('{"after": 0}')
        closed = await closing(ws)

    assert closed == (1008, LATE)


async def test_a_second_message_closes_1008(events_config):
    async with (
        events_app(events_config) as conductor,
        events_socket(conductor) as ws,
    ):
        await ws.send_text('{"after": 0}')
        await ws.send_text('{"after": 0}')
        closed = await closing(ws)

    assert closed == (1008, LATE)


async def test_a_binary_message_closes_1003(events_config):
    async with (
        events_app(events_config) as conductor,
        events_socket(conductor) as ws,
    ):
        await ws.send_data(b'{"after": 0}')
        closed = await closing(ws)

    assert closed == (1003, 'send text messages only')


@pytest.mark.parametrize(
    'first',
    [
        'after=1',
        '',
        '{"after": 1',
        'null',
        '[1]',
        '"after"',
        '{}',
        '{"since": 1}',
        '{"after": 1, "since": 1}',
        '{"after": -1}',
        '{"after": true}',
        '{"after": false}',
        '{"after": 1.0}',
        '{"after": 1e3}',
        '{"after": "1"}',
        '{"after": null}',
        f'{{"after": {2**63}}}',
        # Whatever it holds, a message of over 100 characters is no position.
        '{"after": 1}' + ' ' * 89,
    ],
)
async def test_a_first_message_that_is_no_position_closes_1008(events_config, first):
    async with (
        events_app(events_config) as conductor,
        events_socket(conductor) as ws,
    ):
        await ws.send_text(first)
        closed = await closing(ws)

    assert closed == (1008, NO_POSITION)


async def test_the_longest_first_message_read_is_100_characters(events_config):
    first = '{"after": 1}' + ' ' * 88
    async with events_app(events_config) as conductor:
        images = await uploads(conductor, 2)
        async with events_socket(conductor) as ws:
            await ws.send_text(first)
            messages = await received(ws)

    assert len(first) == 100
    assert messages == [{'id': 2, 'event': 'image.created', 'data': images[1]}]


@pytest.mark.parametrize(
    ('query', 'reason'),
    [
        ('after=abc', 'Invalid event id'),
        ('after=-1', 'Invalid event id'),
        (f'after={2**63}', 'Invalid event id'),
        ('since=1', 'Unknown parameter'),
        ('after=1&after=2', 'Repeated parameter'),
    ],
)
async def test_a_bad_query_closes_the_socket_3400_with_what_was_wrong(
    events_config, query, reason
):
    async with (
        events_app(events_config) as conductor,
        events_socket(conductor, query) as ws,
    ):
        closed = await closing(ws)

    # Falcon's code for a 400 (3000 + the status), and the error's title.
    assert closed == (3400, reason)
