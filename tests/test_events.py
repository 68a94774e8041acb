"""GET /events as Server-Sent Events; the feed each worker follows the log with."""

import asyncio
import dataclasses
import signal

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.events.exits import ExitSignals
from asgilook.http import media
from asgilook.http.disconnects import Departure

from .fakes import FakeClock, owner, two_workers, upload_through
from .streams import WAIT, SSEReader, uploads


async def test_every_upload_and_delete_is_an_event_in_order(events_config):
    async with (
        falcon.testing.ASGIConductor(create_served_app(events_config)) as conductor,
        conductor.get_stream('/events') as stream,
    ):
        reader = SSEReader(stream.stream)
        first = await reader.message()
        images = [await upload_through(conductor) for _ in range(2)]
        await conductor.simulate_delete(images[0]['image'], headers=owner(images[0]))
        events = [await reader.event() for _ in range(3)]
        listed = (await conductor.simulate_get('/images')).json

    assert stream.status_code == 200
    assert stream.headers['content-type'] == 'text/event-stream'
    assert stream.headers['cache-control'] == 'no-store'
    assert 'x-asgilook-cache' not in stream.headers
    assert first == {'': 'asgilook events', 'id': '0', 'retry': '3000'}
    assert events == [
        {'id': 1, 'event': 'image.created', 'data': images[0]},
        {'id': 2, 'event': 'image.created', 'data': images[1]},
        {'id': 3, 'event': 'image.deleted', 'data': images[0]['id']},
    ]
    assert listed == [images[1]]


@pytest.mark.parametrize(
    ('query', 'headers', 'first_id'),
    [
        ('after=1', {}, 2),
        ('after=0', {'Last-Event-ID': '2'}, 3),
        ('', {'Last-Event-ID': ' 1 '}, 2),
        ('after=3', {'Last-Event-ID': ''}, 4),
        ('', {'Last-Event-ID': '0' * 30 + '1'}, 2),
        ('after=' + '0' * 5000 + '1', {}, 2),
    ],
)
async def test_a_client_resumes_after_the_last_id_it_took(
    events_config, query, headers, first_id
):
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        images = await uploads(conductor, 3)
        async with conductor.get_stream(
            '/events', query_string=query, headers=headers
        ) as stream:
            reader = SSEReader(stream.stream)
            first = await reader.message()
            images.append(await upload_through(conductor))
            events = [await reader.event() for _ in range(5 - first_id)]

    # An EventSource resumes after the id of its first message if the
    # stream breaks before an event: the one it resumed after.
    assert first['id'] == str(first_id - 1)
    assert [event['id'] for event in events] == list(range(first_id, 5))
    assert [event['data'] for event in events] == images[first_id - 1 :]


@pytest.mark.parametrize(
    ('query', 'headers', 'title'),
    [
        ('after=abc', {}, 'Invalid event id'),
        ('after=-1', {}, 'Invalid event id'),
        ('after=1.5', {}, 'Invalid event id'),
        ('after=%D9%A3', {}, 'Invalid event id'),
        (f'after={2**63}', {}, 'Invalid event id'),
        ('after=' + '9' * 40, {}, 'Invalid event id'),
        ('', {'Last-Event-ID': 'x1'}, 'Invalid event id'),
        ('after=abc', {'Last-Event-ID': '3'}, 'Invalid event id'),
        ('after=3', {'Last-Event-ID': 'x1'}, 'Invalid event id'),
        ('after=1&after=2', {}, 'Repeated parameter'),
        ('since=1', {}, 'Unknown parameter'),
        ('s' * 5000 + '=1', {}, 'Unknown parameter'),
    ],
)
async def test_an_id_that_is_no_id_is_a_400(events_config, query, headers, title):
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        resp = await conductor.simulate_get(
            '/events', query_string=query, headers=headers
        )

    assert resp.status_code == 400
    assert resp.headers['content-type'] == 'application/json'
    assert resp.json['title'] == title
    assert '/events?after=' in resp.json['description']
    # What the client sent is not echoed back whole.
    assert len(resp.json['description']) < 200


@pytest.mark.parametrize(
    ('query', 'headers', 'status'),
    [
        ('', {}, 200),
        ('after=1', {'Last-Event-ID': '2'}, 200),
        ('after=abc', {}, 400),
        ('', {'Last-Event-ID': 'x1'}, 400),
        ('since=1', {}, 400),
    ],
)
def test_head_answers_what_get_would_begin_with(client, query, headers, status):
    head = client.simulate_head('/events', query_string=query, headers=headers)

    assert head.status_code == status
    assert head.content == b''
    if status == 200:
        assert head.headers['content-type'] == 'text/event-stream'
        assert head.headers['cache-control'] == 'no-store'
        assert head.headers['x-accel-buffering'] == 'no'
        # Nothing is known of a stream's length, not even that it is 0.
        assert 'content-length' not in head.headers
    else:
        assert head.headers['content-type'] == 'application/json'


async def test_the_stream_a_head_stands_for_holds_no_event():
    assert b''.join([chunk async for chunk in media.no_body()]) == b''


async def test_an_id_the_log_no_longer_holds_is_a_reset_then_what_follows(
    events_config,
):
    events_config.catalog_limits = dataclasses.replace(
        events_config.catalog_limits, retained_changes=2
    )
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        await uploads(conductor, 5)
        resets = []
        for after in ('1', '99'):
            async with conductor.get_stream(
                '/events', query_string=f'after={after}'
            ) as stream:
                resets.append(await SSEReader(stream.stream).event())
        async with conductor.get_stream('/events', query_string='after=1') as stream:
            reader = SSEReader(stream.stream)
            await reader.event()
            image = await upload_through(conductor)
            following = await reader.event()

    assert [reset['id'] for reset in resets] == [5, 5]
    assert resets[0]['event'] == 'reset'
    assert resets[0]['data'] == {
        'requested': 1,
        'oldest': 3,
        'last': 5,
        'description': 'The events after 1 are no longer kept (the service keeps '
        'those after 3). Read the list again (GET /images): the events after 5 '
        'follow.',
    }
    assert resets[1]['data']['description'] == (
        'There is no event 99 (the last is 5). Read the list again (GET /images): '
        'the events after 5 follow.'
    )
    assert following == {'id': 6, 'event': 'image.created', 'data': image}


async def test_a_quiet_stream_has_a_heartbeat(events_config):
    clock = events_config.clock = FakeClock()
    async with (
        falcon.testing.ASGIConductor(create_served_app(events_config)) as conductor,
        conductor.get_stream('/events') as stream,
    ):
        reader = SSEReader(stream.stream)
        await reader.message()
        clock.advance(events_config.events.heartbeat)
        beat = await reader.message()
        image = await upload_through(conductor)
        event = await reader.event()

    assert beat == {'': 'heartbeat'}
    assert event['data'] == image


async def test_a_worker_streams_the_changes_other_workers_make(
    storage_path, redis_server
):
    async with (
        two_workers(storage_path, redis_server) as (first, second),
        first.get_stream('/events') as on_first,
        second.get_stream('/events') as on_second,
    ):
        readers = [SSEReader(on_first.stream), SSEReader(on_second.stream)]
        for reader in readers:
            await reader.message()
        image = await upload_through(first)
        await second.simulate_delete(image['image'], headers=owner(image))
        seen = [[await reader.event() for _ in range(2)] for reader in readers]

    assert (
        seen[0]
        == seen[1]
        == [
            {'id': 1, 'event': 'image.created', 'data': image},
            {'id': 2, 'event': 'image.deleted', 'data': image['id']},
        ]
    )


async def test_the_servers_stop_signal_ends_every_stream(events_config):
    stops = []
    previous = signal.signal(signal.SIGTERM, lambda *args: stops.append(args[0]))
    try:
        async with (
            falcon.testing.ASGIConductor(create_served_app(events_config)) as c,
            c.get_stream('/events') as stream,
        ):
            reader = SSEReader(stream.stream)
            await reader.message()
            signal.raise_signal(signal.SIGTERM)
            ending = await reader.message()
            async with asyncio.timeout(WAIT):
                await stream.finalize()
            rest = await stream.stream.read()
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert ending == {'': 'end: the server is going away'}
    assert rest == b''
    # The server's own handler ran too: it stops as it would have.
    assert stops == [signal.SIGTERM]


async def test_exit_signals_leave_a_handler_installed_since_in_place():
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda *args: calls.append('server'))
    try:
        signals = ExitSignals(lambda: calls.append('feed'))
        signals.install()
        signals.install()
        signal.raise_signal(signal.SIGTERM)
        await asyncio.sleep(0)

        def later(*args):
            calls.append('later')

        signal.signal(signal.SIGTERM, later)
        signals.uninstall()
        kept = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)

    # Called once each, though installed twice; the later handler stays.
    assert calls == ['server', 'feed']
    assert kept is later


async def test_exit_signals_are_not_taken_outside_the_main_thread():
    async def install_elsewhere():
        ExitSignals(lambda: None).install()
        return signal.getsignal(signal.SIGINT)

    before = signal.getsignal(signal.SIGINT)
    after = await asyncio.to_thread(asyncio.run, install_elsewhere())

    assert after is before


def test_a_signal_after_the_event_loop_closed_goes_to_the_server_alone():
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda *args: calls.append('server'))
    signals = ExitSignals(lambda: calls.append('feed'))

    async def install():
        signals.install()

    try:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(install())
        loop.close()
        signal.raise_signal(signal.SIGTERM)
    finally:
        signals.uninstall()
        signal.signal(signal.SIGTERM, previous)

    assert calls == ['server']


async def test_a_default_signal_action_is_left_alone():
    previous = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        ExitSignals(lambda: None).install()
        installed = signal.getsignal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)

    assert installed is signal.SIG_DFL


async def test_a_client_that_leaves_ends_its_stream_at_once(events_config):
    # No heartbeat comes (the clock stands still): only the client's leaving
    # ends the stream, which the conductor waits for as it closes it.
    events_config.clock = FakeClock()
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        for _ in range(2):
            async with asyncio.timeout(WAIT):
                async with conductor.get_stream('/events') as stream:
                    await SSEReader(stream.stream).message()
        image = await upload_through(conductor)
        listed = (await conductor.simulate_get('/images')).json

    assert listed == [image]


async def test_the_falcon_app_alone_streams_events_too(events_config):
    # Without the guards (which tell a stream its client went), as an app
    # that mounts asgilook's Falcon app would run it: the stream ends at its
    # next heartbeat after the client went.
    events_config.events = dataclasses.replace(events_config.events, heartbeat=0.05)
    app = create_served_app(events_config).app
    async with (
        falcon.testing.ASGIConductor(app) as conductor,
        conductor.get_stream('/events') as stream,
    ):
        reader = SSEReader(stream.stream)
        await reader.message()
        image = await upload_through(conductor)
        event = await reader.event()

    assert event['data'] == image


def test_a_departure_calls_back_once_even_if_registered_late():
    departure = Departure()
    calls = []
    departure.on_leave(lambda: calls.append('early'))
    departure.leave()
    departure.leave()
    departure.on_leave(lambda: calls.append('late'))

    assert calls == ['early', 'late']
