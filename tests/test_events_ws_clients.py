"""Event WebSockets: resets, backlogs, the stop, bad or departed clients, heartbeats."""

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import gc

import pytest

from .fakes import FakeClock, make_config
from .sockets import closing, events_app, events_socket, received
from .streams import WAIT, SSEReader, uploads

_TOO_OLD = 'The events after 1 are no longer kept (the service keeps those after 3)'


@pytest.mark.parametrize(
    ('query', 'first', 'requested', 'gone'),
    [
        ('after=1', None, 1, _TOO_OLD),
        ('after=99', None, 99, 'There is no event 99 (the last is 5)'),
        ('', '{"after": 1}', 1, _TOO_OLD),
        (
            '',
            f'{{"after": {2**63 - 1}}}',
            2**63 - 1,
            f'There is no event {2**63 - 1} (the last is 5)',
        ),
    ],
)
async def test_an_id_the_log_does_not_hold_is_a_reset_then_live_events(
    events_config, query, first, requested, gone
):
    events_config.catalog_limits = dataclasses.replace(
        events_config.catalog_limits, retained_changes=2
    )
    async with events_app(events_config) as conductor:
        await uploads(conductor, 5)
        async with events_socket(conductor, query) as ws:
            if first is not None:
                await ws.send_text(first)
            (reset,) = await received(ws)
            images = await uploads(conductor, 1)
            following = await received(ws)

    assert reset == {
        'id': 5,
        'event': 'reset',
        'data': {
            'requested': requested,
            'oldest': 3,
            'last': 5,
            'description': f'{gone}. Read the list again (GET /images): the events '
            'after 5 follow.',
        },
    }
    assert following == [{'id': 6, 'event': 'image.created', 'data': images[0]}]


async def _uploads_of_another_worker(storage_path, count: int) -> list[dict]:
    async with events_app(make_config(storage_path)) as conductor:
        return await uploads(conductor, count)


async def test_a_socket_more_than_the_backlog_behind_closes_1013(
    events_config, storage_path
):
    events_config.events = dataclasses.replace(events_config.events, backlog=2)
    async with events_app(events_config) as conductor:
        async with events_socket(conductor) as ws:
            images = await uploads(conductor, 1)
            taken = await received(ws)
            # Another worker makes three changes while this one's event loop
            # is held (as a busy worker's is): it reads them at once, and its
            # subscriber is three events behind.
            with concurrent.futures.ThreadPoolExecutor(1) as elsewhere:
                images += elsewhere.submit(
                    asyncio.run, _uploads_of_another_worker(storage_path, 3)
                ).result(WAIT)
            closed = await closing(ws)
        # The client resumes after the last id it took.
        async with events_socket(conductor, 'after=1') as ws:
            resumed = await received(ws, 3)

    assert [message['id'] for message in taken] == [1]
    assert closed == (1013, 'too far behind')
    assert [message['id'] for message in resumed] == [2, 3, 4]
    assert [message['data'] for message in taken + resumed] == images


async def test_the_servers_shutdown_closes_open_sockets_1001(events_config):
    async with contextlib.AsyncExitStack() as running:
        conductor = await running.enter_async_context(events_app(events_config))
        async with events_socket(conductor) as ws:
            images = await uploads(conductor, 1)
            messages = await received(ws)
            # The server's lifespan ends, the socket still open.
            await running.aclose()
            closed = await closing(ws)

    assert [message['data'] for message in messages] == images
    assert closed == (1001, 'the server is going away')


async def _refused(ws, *messages: str | bytes) -> int:
    for message in messages:
        if isinstance(message, bytes):
            await ws.send_data(message)
        else:
            await ws.send_text(message)
    code, _ = await closing(ws)
    return code


async def test_bad_clients_never_affect_others_connected_at_the_same_time(
    events_config,
):
    async with events_app(events_config) as conductor:
        images = await uploads(conductor, 1)
        async with (
            events_socket(conductor) as resuming,
            events_socket(conductor) as from_now,
            events_socket(conductor) as binary,
            events_socket(conductor) as garbage,
            events_socket(conductor) as chatty,
            events_socket(conductor) as late,
            events_socket(conductor) as leaving,
        ):
            await resuming.send_text('{"after": 0}')
            caught_up = await received(resuming)
            codes = await asyncio.gather(
                _refused(binary, b'{"after": 0}'),
                _refused(garbage, '{"after"'),
                _refused(chatty, '{"after": 0}', '{"after": 0}'),
            )
            await leaving.close()
            images += await uploads(conductor, 1)
            await received(late)
            codes.append(await _refused(late, '{"after": 0}'))
            images += await uploads(conductor, 1)
            resumed = caught_up + await received(resuming, 2)
            live = await received(from_now, 2)

    assert codes == [1003, 1008, 1008, 1008]
    assert [message['id'] for message in resumed] == [1, 2, 3]
    assert [message['data'] for message in resumed] == images
    assert [message['id'] for message in live] == [2, 3]
    assert [message['data'] for message in live] == images[1:]


async def test_clients_gone_before_an_event_leave_nothing_waiting(
    events_config, caplog
):
    async with events_app(events_config) as conductor:
        for refused in (b'{"after": 0}', '{"after"'):
            async with events_socket(conductor) as ws:
                await _refused(ws, refused)
        async with events_socket(conductor) as ws:
            await ws.close()
        waiting = [
            task
            for task in asyncio.all_tasks()
            if task.get_coro().__qualname__ == 'Subscription.next'
        ]
    gc.collect()

    assert waiting == []
    # What a task left waiting writes once the server stops.
    assert 'never retrieved' not in caplog.text


async def test_a_client_that_leaves_ends_its_socket_on_the_server(events_config):
    async with events_app(events_config) as conductor:
        # Leaving the block closes the client's end and awaits the server's
        # handler: it ends (else the block would wait for it).
        async with asyncio.timeout(WAIT):
            async with events_socket(conductor) as ws:
                await ws.close()
            async with events_socket(conductor) as ws:
                await ws.send_text('{"after": 0}')
        async with events_socket(conductor) as ws:
            images = await uploads(conductor, 1)
            messages = await received(ws)

    assert [message['data'] for message in messages] == images


async def _heartbeat(clock, sse, heartbeat: float) -> None:
    """Move the clock on to the next heartbeat; return once a stream had it."""
    clock.advance(heartbeat)
    while await sse.message() != {'': 'heartbeat'}:
        pass


async def test_a_heartbeat_sends_nothing_on_a_socket(events_config):
    clock = events_config.clock = FakeClock()
    heartbeat = events_config.events.heartbeat
    async with (
        events_app(events_config) as conductor,
        events_socket(conductor) as ws,
        conductor.get_stream('/events') as stream,
    ):
        sse = SSEReader(stream.stream)
        await sse.message()
        # Before the first event, and after one.
        await _heartbeat(clock, sse, heartbeat)
        images = await uploads(conductor, 1)
        first = await received(ws)
        await _heartbeat(clock, sse, heartbeat)
        images += await uploads(conductor, 1)
        second = await received(ws)

    assert [message['id'] for message in first + second] == [1, 2]
    assert [message['data'] for message in first + second] == images


async def test_a_first_message_after_a_heartbeat_still_resumes(events_config):
    clock = events_config.clock = FakeClock()
    heartbeat = events_config.events.heartbeat
    async with events_app(events_config) as conductor:
        images = await uploads(conductor, 1)
        async with (
            events_socket(conductor) as ws,
            conductor.get_stream('/events') as stream,
        ):
            sse = SSEReader(stream.stream)
            await sse.message()
            for _ in range(2):
                await _heartbeat(clock, sse, heartbeat)
            await ws.send_text('{"after": 0}')
            messages = await received(ws)

    assert messages == [{'id': 1, 'event': 'image.created', 'data': images[0]}]
