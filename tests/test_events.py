"""GET /events as Server-Sent Events; the feed each worker follows the log with."""

import asyncio
import contextlib
import dataclasses
import json
import logging
import signal
import sqlite3

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.catalog import log
from asgilook.catalog.database import Catalog
from asgilook.errors import CatalogError
from asgilook.events import Feed
from asgilook.events.exits import ExitSignals
from asgilook.events.feed import Ending, SubscriptionEnded
from asgilook.http import media
from asgilook.http.disconnects import Departure
from asgilook.store import Store

from .fakes import FakeClock, owner, two_workers, upload_through
from .streams import WAIT, SSEReader, uploads


def _data(event):
    """The data of an event, as a client reads it."""
    return json.loads(event.text)['data']


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


# -- the feed of another worker, over the same storage directory


@contextlib.asynccontextmanager
async def _other_worker(config):
    """A feed over the storage of config, as another worker process has."""
    store = Store(config)
    await store.startup()
    await store.open_catalog()
    feed = Feed(store, config)
    try:
        yield feed
    finally:
        feed.close()
        await store.close()
        await store.catalog.close()


async def test_a_subscriber_catches_up_from_the_catalog_in_batches(events_config):
    events_config.events = dataclasses.replace(events_config.events, catch_up_batch=2)
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        images = await uploads(conductor, 5)
        async with _other_worker(events_config) as feed:
            subscription = await feed.subscribe(0)
            batches = [await subscription.next() for _ in range(3)]

    assert [[event.serial for event in batch] for batch in batches] == [
        [1, 2],
        [3, 4],
        [5],
    ]
    assert [_data(event) for batch in batches for event in batch] == images


async def test_a_subscription_ended_by_its_client_takes_nothing_more(events_config):
    async with (
        falcon.testing.ASGIConductor(create_served_app(events_config)) as conductor,
        _other_worker(events_config) as feed,
    ):
        left, staying = [await feed.subscribe(None) for _ in range(2)]
        left.end()
        left.end()
        image = await upload_through(conductor)
        with pytest.raises(SubscriptionEnded) as ended:
            await left.next()
        (event,) = await staying.next()

    assert ended.value.ending is Ending.LEFT
    assert _data(event) == image


async def test_a_read_failing_after_new_changes_is_caught_up_later(
    events_config, monkeypatch
):
    read = Catalog.changes
    previous, failed = [], []

    async def failing_once_caught_up(self, after, limit):
        # The read that follows one that found changes fails, once.
        if previous and not failed:
            failed.append(True)
            raise CatalogError('disk I/O error')
        previous[:] = await read(self, after, limit)
        return previous

    async with (
        falcon.testing.ASGIConductor(create_served_app(events_config)) as conductor,
        _other_worker(events_config) as feed,
    ):
        subscription = await feed.subscribe(None)
        monkeypatch.setattr(Catalog, 'changes', failing_once_caught_up)
        images = [await upload_through(conductor)]
        taken = await subscription.next()
        images.append(await upload_through(conductor))
        taken += await subscription.next()

    assert failed
    assert [event.serial for event in taken] == [1, 2]
    assert [_data(event) for event in taken] == images


async def test_subscribers_resuming_from_one_id_read_the_catalog_once(
    events_config, monkeypatch
):
    # Room for about 20 batches of one event.
    events_config.events = dataclasses.replace(
        events_config.events, catch_up_batch=1, catch_up_memory=25_000
    )
    reads = []
    read = Catalog.changes

    async def counted(self, after, limit):
        reads.append(after)
        return await read(self, after, limit)

    async with (
        falcon.testing.ASGIConductor(create_served_app(events_config)) as conductor,
        _other_worker(events_config) as feed,
    ):
        images = await uploads(conductor, 70)
        monkeypatch.setattr(Catalog, 'changes', counted)
        # Two clients resuming from 0 together, batch by batch.
        subscriptions = [await feed.subscribe(0) for _ in range(2)]
        taken = [[], []]
        for _ in range(70):
            for subscription, events in zip(subscriptions, taken, strict=True):
                events.extend(await subscription.next())
        again = await (await feed.subscribe(0)).next()

    assert [_data(event) for event in taken[0]] == images
    assert [event.text for event in taken[1]] == [event.text for event in taken[0]]
    # Each batch was read once for both (the feed's own reads follow 70); the
    # first ones were let go for the later ones, and read again for the third.
    assert [after for after in reads if after < 70] == [*range(70), 0]
    assert again[0].text == taken[0][0].text


async def test_a_subscriber_that_falls_behind_the_backlog_is_ended(events_config):
    events_config.events = dataclasses.replace(events_config.events, backlog=2)
    async with (
        falcon.testing.ASGIConductor(create_served_app(events_config)) as conductor,
        _other_worker(events_config) as feed,
    ):
        subscription = await feed.subscribe(None)
        await upload_through(conductor)
        taken = await subscription.next()
        await uploads(conductor, 3)
        async with asyncio.timeout(WAIT):
            while feed.last < 4:
                await feed.waiter()
        with pytest.raises(SubscriptionEnded) as ended:
            await subscription.next()

    assert [event.serial for event in taken] == [1]
    assert ended.value.ending is Ending.TOO_SLOW


async def test_events_trimmed_while_a_subscriber_caught_up_are_a_reset(
    events_config,
):
    events_config.catalog_limits = dataclasses.replace(
        events_config.catalog_limits, retained_changes=3
    )
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        await uploads(conductor, 3)
        async with _other_worker(events_config) as feed:
            subscription = await feed.subscribe(1)
            await uploads(conductor, 3)
            async with asyncio.timeout(WAIT):
                while feed.last < 6:
                    await feed.waiter()
            (reset,) = await subscription.next()
            image = await upload_through(conductor)
            (following,) = await subscription.next()

    assert (reset.name, reset.serial) == ('reset', 6)
    assert _data(reset)['requested'] == 1
    assert _data(reset)['oldest'] == 3
    assert (following.serial, _data(following)) == (7, image)


async def test_an_unreadable_change_log_is_logged_once_and_followed_again(
    events_config, monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger='asgilook.events.feed')
    failures = iter([True, True, False])
    read = Catalog.changes

    async def failing(self, after, limit):
        if next(failures, False):
            raise CatalogError('disk I/O error')
        return await read(self, after, limit)

    async with (
        falcon.testing.ASGIConductor(create_served_app(events_config)) as conductor,
        _other_worker(events_config) as feed,
    ):
        subscription = await feed.subscribe(None)
        monkeypatch.setattr(Catalog, 'changes', failing)
        image = await upload_through(conductor)
        (event,) = await subscription.next()

    assert _data(event) == image
    logged = [
        (record.levelno, record.getMessage())
        for record in caplog.records
        if record.name == 'asgilook.events.feed'
    ]
    assert logged == [
        (logging.WARNING, 'events: the change log cannot be read: disk I/O error'),
        (logging.INFO, 'events: the change log can be read again'),
    ]


async def test_a_subscriber_whose_catch_up_fails_is_ended(events_config, monkeypatch):
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        await uploads(conductor, 2)
        async with _other_worker(events_config) as feed:
            subscription = await feed.subscribe(0)

            async def failing(self, after, limit):
                raise CatalogError('disk I/O error')

            monkeypatch.setattr(Catalog, 'changes', failing)
            with pytest.raises(SubscriptionEnded) as ended:
                await subscription.next()

    assert ended.value.ending is Ending.UNAVAILABLE


async def test_an_unreadable_catalog_refuses_a_subscriber_with_a_503(
    events_config, monkeypatch
):
    async def failing(self):
        raise CatalogError('disk I/O error')

    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        monkeypatch.setattr(Catalog, 'change_span', failing)
        resp = await conductor.simulate_get('/events')

    assert resp.status_code == 503
    assert resp.json['title'] == 'Storage unavailable'


# -- the change log


def test_a_change_log_of_asgilook_0_5_tells_changes_from_the_upgrade_on(tmp_path):
    path = tmp_path / 'catalog.sqlite3'
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as old:
        old.execute(
            'CREATE TABLE changes (serial INTEGER PRIMARY KEY AUTOINCREMENT, '
            'kind TEXT NOT NULL, image_id TEXT NOT NULL)'
        )
        old.execute('CREATE TABLE settings (name TEXT PRIMARY KEY, value NOT NULL)')
        old.execute("INSERT INTO changes (kind, image_id) VALUES ('created', 'a')")
        old.execute("INSERT INTO changes (kind, image_id) VALUES ('deleted', 'a')")

    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as writer:
        log.upgrade(writer)
        log.upgrade(writer)
        writer.execute(
            'INSERT INTO changes (kind, image_id, width, height, length, '
            "modified_ns) VALUES ('created', 'b', 4, 3, 100, 5)"
        )
        span = log.span(writer)
        changes = log.after(writer, 0, 10)

    assert (span.first_after, span.last) == (2, 3)
    assert not span.holds(1)
    # The listing logged before the upgrade has no record to tell.
    assert [(change.serial, change.kind) for change in changes] == [
        (2, 'deleted'),
        (3, 'created'),
    ]
    assert changes[1].record.size == (4, 3)


async def test_batches_kept_for_catching_up_take_at_most_their_budget(events_config):
    events_config.events = dataclasses.replace(
        events_config.events, catch_up_batch=5, catch_up_memory=30_000
    )
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        await uploads(conductor, 40)
        async with _other_worker(events_config) as feed:
            # One client resuming from every id in turn: 40 batches.
            kept = []
            for after in range(40):
                await (await feed.subscribe(after)).next()
                kept.append(feed.kept_size)

    assert max(kept) <= 30_000
    assert kept[-1] > 20_000


async def test_a_batch_larger_than_the_budget_is_read_and_not_kept(events_config):
    events_config.events = dataclasses.replace(
        events_config.events, catch_up_batch=5, catch_up_memory=1000
    )
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        images = await uploads(conductor, 5)
        async with _other_worker(events_config) as feed:
            taken = await (await feed.subscribe(0)).next()
            kept = feed.kept_size

    assert [_data(event) for event in taken] == images
    assert kept == 0
