"""The whole list of a long catalog: sent a batch at a time, byte for byte the
list in one piece, never kept whole in memory or in the cache."""

import dataclasses
import pathlib
import shutil
import sqlite3

import falcon.testing
import msgpack
import pytest

from asgilook.app import create_app
from asgilook.catalog import CATALOG_DIRECTORY, DATABASE_NAME, Catalog
from asgilook.errors import CatalogError, StorageUnavailableError

from .fakes import make_config, redis_keys
from .paging import upload_many


def _long_lists(config, at_once=3, batch=2, largest_entry=1000):
    """The config, answering lists of more than at_once images a batch at a time.

    And keeping no answer over largest_entry bytes (the lists of these tests
    have more than 1000 bytes).
    """
    config.catalog_limits = dataclasses.replace(
        config.catalog_limits, listed_at_once=at_once, list_batch=batch
    )
    config.cache_timing = dataclasses.replace(
        config.cache_timing, entry_read_rate=int(largest_entry / config.redis_timeout)
    )
    return config


def _snapshots_closed(storage_path) -> bool:
    """Whether no read transaction holds the catalog (a checkpoint can finish)."""
    path = pathlib.Path(storage_path) / CATALOG_DIRECTORY / DATABASE_NAME
    with sqlite3.connect(path) as connection:
        busy, _, _ = connection.execute('PRAGMA wal_checkpoint(TRUNCATE)').fetchone()
    return busy == 0


@pytest.fixture
async def stored(storage_path, redis_server):
    """Seven images, uploaded through an app that lists them in one piece."""
    app = create_app(make_config(storage_path, redis_server))
    async with falcon.testing.ASGIConductor(app) as conductor:
        return await upload_many(conductor, 7)


@pytest.mark.parametrize('accept', ['application/json', 'application/msgpack'])
async def test_a_long_list_is_the_list_in_one_piece_byte_for_byte(
    storage_path, redis_server, stored, accept
):
    whole = create_app(make_config(storage_path))
    streamed = create_app(_long_lists(make_config(storage_path)))
    headers = {'Accept': accept}
    async with falcon.testing.ASGIConductor(whole) as conductor:
        expected = await conductor.simulate_get('/images', headers=headers)
    async with falcon.testing.ASGIConductor(streamed) as conductor:
        resp = await conductor.simulate_get('/images', headers=headers)

    assert resp.status_code == 200
    assert resp.content == expected.content
    assert resp.headers['etag'] == expected.headers['etag']
    assert resp.headers['content-type'] == accept
    assert 'content-length' not in resp.headers
    listed = resp.json if accept.endswith('json') else msgpack.unpackb(resp.content)
    assert [image['id'] for image in listed] == [image['id'] for image in stored]
    assert _snapshots_closed(storage_path)


async def test_a_long_list_too_large_to_keep_is_sent_and_not_kept(config, stored):
    app = create_app(_long_lists(config))
    async with falcon.testing.ASGIConductor(app) as conductor:
        long = [await conductor.simulate_get('/images') for _ in range(2)]
        short = [await conductor.simulate_get('/images?limit=5') for _ in range(2)]
        keys = await redis_keys(config)

    assert [resp.headers['x-asgilook-cache'] for resp in long] == ['Miss', 'Miss']
    assert long[0].content == long[1].content
    assert [resp.headers['x-asgilook-cache'] for resp in short] == ['Miss', 'Hit']
    assert keys == [b'asgilook:/images?limit=5']


async def test_a_long_list_small_enough_to_keep_is_kept_byte_for_byte(config, stored):
    app = create_app(_long_lists(config, largest_entry=100_000))
    async with falcon.testing.ASGIConductor(app) as conductor:
        answers = [await conductor.simulate_get('/images') for _ in range(2)]

    assert [resp.headers['x-asgilook-cache'] for resp in answers] == ['Miss', 'Hit']
    assert answers[0].content == answers[1].content
    assert answers[1].json == stored


async def test_head_and_a_304_of_a_long_list_read_no_snapshot(
    config, storage_path, stored
):
    app = create_app(_long_lists(config))
    async with falcon.testing.ASGIConductor(app) as conductor:
        head = await conductor.simulate_head('/images')
        etag = head.headers['etag']
        same = await conductor.simulate_get('/images', headers={'If-None-Match': etag})
        closed = _snapshots_closed(storage_path)
        full = await conductor.simulate_get('/images')

    assert head.status_code == 200
    assert head.content == b''
    # As its GET, sent in chunks: no length to announce.
    assert 'content-length' not in head.headers
    assert same.status_code == 304
    assert closed
    assert full.headers['etag'] == etag


def _failing_at(monkeypatch, call: int) -> None:
    """Make the catalog fail at the call-th read of a snapshot."""
    read = Catalog.read_snapshot
    calls = []

    async def failing(self, snapshot, size):
        calls.append(size)
        if len(calls) == call:
            raise CatalogError('disk I/O error')
        return await read(self, snapshot, size)

    monkeypatch.setattr(Catalog, 'read_snapshot', failing)


async def test_a_catalog_failing_before_the_answer_begins_is_a_503(
    config, storage_path, stored, monkeypatch
):
    _failing_at(monkeypatch, 2)
    app = create_app(_long_lists(config))
    async with falcon.testing.ASGIConductor(app) as conductor:
        resp = await conductor.simulate_get('/images')
        keys = await redis_keys(config)

    assert resp.status_code == 503
    assert resp.json['title'] == 'Storage unavailable'
    assert keys == []
    assert _snapshots_closed(storage_path)


async def test_a_catalog_failing_on_the_way_drops_the_answer(
    config, storage_path, stored, monkeypatch
):
    # The first 1000 bytes (three batches) are read by the cache, and sent.
    _failing_at(monkeypatch, 4)
    app = create_app(_long_lists(config))
    async with falcon.testing.ASGIConductor(app) as conductor:
        with pytest.raises(StorageUnavailableError):
            await conductor.simulate_get('/images')

    assert _snapshots_closed(storage_path)


async def test_a_client_gone_mid_list_lets_the_snapshot_go(
    config, storage_path, stored
):
    app = create_app(_long_lists(config))
    sent = []

    async def receive():
        return {'type': 'http.request', 'body': b'', 'more_body': False}

    async def send(event):
        sent.append(event)
        if len(sent) == 3:
            raise OSError('the client went')

    scope = {
        'type': 'http',
        'asgi': {'version': '3.0', 'spec_version': '2.3'},
        'http_version': '1.1',
        'method': 'GET',
        'scheme': 'http',
        'path': '/images',
        'raw_path': b'/images',
        'query_string': b'',
        'root_path': '',
        'headers': [(b'host', b'localhost')],
        'client': ('127.0.0.1', 50000),
        'server': ('127.0.0.1', 8000),
    }
    async with falcon.testing.ASGIConductor(app):
        with pytest.raises(OSError, match='the client went'):
            await app(scope, receive, send)

    assert sent[0]['status'] == 200
    assert _snapshots_closed(storage_path)


async def test_a_catalog_put_back_under_a_long_list_is_read_from_then_on(
    config, storage_path, stored
):
    path = pathlib.Path(storage_path) / CATALOG_DIRECTORY / DATABASE_NAME
    app = create_app(_long_lists(config))
    async with falcon.testing.ASGIConductor(app) as conductor:
        await conductor.simulate_get('/images?limit=1')
        copy = path.with_name('copy')
        shutil.copy(path, copy)
        copy.replace(path)
        resp = await conductor.simulate_get('/images')

    assert resp.status_code == 200
    assert resp.json == stored


async def test_an_image_too_large_to_keep_is_sent_from_its_file_each_time(
    config, stored
):
    app = create_app(_long_lists(config, largest_entry=100))
    async with falcon.testing.ASGIConductor(app) as conductor:
        answers = [await conductor.simulate_get(stored[0]['image']) for _ in range(2)]
        keys = await redis_keys(config)

    assert [resp.headers['x-asgilook-cache'] for resp in answers] == ['Miss', 'Miss']
    assert answers[0].content == answers[1].content
    assert int(answers[0].headers['content-length']) > 100
    assert keys == []
