"""The feed a worker follows the change log with: catching up, backlogs, faults."""

import asyncio
import contextlib
import dataclasses
import json
import logging
import sqlite3

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.catalog import log
from asgilook.catalog.database import SqliteCatalog
from asgilook.errors import CatalogError
from asgilook.events import Feed
from asgilook.events.feed import Ending, SubscriptionEnded
from asgilook.store import Store

from .fakes import upload_through
from .streams import WAIT, uploads


def _data(event):
    """The data of an event, as a client reads it."""
    return json.loads(event.text)['data']


@contextlib.asynccontextmanager
async def _other_worker(config):
    """A feed over the storage of config, as another worker process has."""
    store = Store(config)
    await store.startup()
    feed = Feed(store, config)
    try:
        yield feed
    finally:
        feed.close()
        await store.shut()


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
    read = SqliteCatalog.changes
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
        monkeypatch.setattr(SqliteCatalog, 'changes', failing_once_caught_up)
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
    read = SqliteCatalog.changes

    async def counted(self, after, limit):
        reads.append(after)
        return await read(self, after, limit)

    async with (
        falcon.testing.ASGIConductor(create_served_app(events_config)) as conductor,
        _other_worker(events_config) as feed,
    ):
        images = await uploads(conductor, 70)
        monkeypatch.setattr(SqliteCatalog, 'changes', counted)
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
    read = SqliteCatalog.changes

    async def failing(self, after, limit):
        if next(failures, False):
            raise CatalogError('disk I/O error')
        return await read(self, after, limit)

    async with (
        falcon.testing.ASGIConductor(create_served_app(events_config)) as conductor,
        _other_worker(events_config) as feed,
    ):
        subscription = await feed.subscribe(None)
        monkeypatch.setattr(SqliteCatalog, 'changes', failing)
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

            monkeypatch.setattr(SqliteCatalog, 'changes', failing)
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
        monkeypatch.setattr(SqliteCatalog, 'change_span', failing)
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
