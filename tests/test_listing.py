"""The whole list of a long catalog: sent a batch at a time, byte for byte the
list in one piece, never kept whole in memory or in the cache."""

import json
import pathlib
import shutil

import falcon.testing
import msgpack
import pytest

from asgilook.app import create_served_app
from asgilook.catalog import CATALOG_DIRECTORY, DATABASE_NAME, SqliteCatalog
from asgilook.errors import CatalogError, StorageUnavailableError

from .asgi import get_whole
from .fakes import make_config, redis_keys
from .paging import long_lists, snapshots_closed


@pytest.mark.parametrize('accept', ['application/json', 'application/msgpack'])
async def test_a_long_list_is_the_list_in_one_piece_byte_for_byte(
    storage_path, redis_server, stored, accept
):
    whole = create_served_app(make_config(storage_path))
    streamed = create_served_app(long_lists(make_config(storage_path)))
    headers = {'Accept': accept}
    async with falcon.testing.ASGIConductor(whole) as conductor:
        expected = await conductor.simulate_get('/images', headers=headers)
    async with falcon.testing.ASGIConductor(streamed):
        status, sent, content = await get_whole(streamed, '/images', headers.items())

    assert status == 200
    assert content == expected.content
    assert sent['etag'] == expected.headers['etag']
    assert sent['content-type'] == accept
    assert 'content-length' not in sent
    listed = (
        json.loads(content) if accept.endswith('json') else msgpack.unpackb(content)
    )
    assert [image['id'] for image in listed] == [image['id'] for image in stored]
    assert snapshots_closed(storage_path)


async def test_a_long_list_too_large_to_keep_is_sent_and_not_kept(config, stored):
    app = create_served_app(long_lists(config))
    async with falcon.testing.ASGIConductor(app) as conductor:
        long = [await get_whole(app, '/images') for _ in range(2)]
        short = [await conductor.simulate_get('/images?limit=2') for _ in range(2)]
        keys = await redis_keys(config)

    assert [sent['x-asgilook-cache'] for _, sent, _ in long] == ['Miss', 'Miss']
    assert long[0][2] == long[1][2]
    assert [resp.headers['x-asgilook-cache'] for resp in short] == ['Miss', 'Hit']
    assert keys == [b'asgilook:/images?limit=2']


async def test_a_long_list_small_enough_to_keep_is_kept_byte_for_byte(config, stored):
    app = create_served_app(long_lists(config, largest_entry=100_000))
    async with falcon.testing.ASGIConductor(app):
        answers = [await get_whole(app, '/images') for _ in range(2)]

    assert [sent['x-asgilook-cache'] for _, sent, _ in answers] == ['Miss', 'Hit']
    assert answers[0][2] == answers[1][2]
    assert json.loads(answers[1][2]) == stored


async def test_head_and_a_304_of_a_long_list_read_no_snapshot(
    config, storage_path, stored
):
    app = create_served_app(long_lists(config))
    async with falcon.testing.ASGIConductor(app) as conductor:
        head = await conductor.simulate_head('/images')
        etag = head.headers['etag']
        same, _, _ = await get_whole(app, '/images', [('If-None-Match', etag)])
        closed = snapshots_closed(storage_path)
        _, full, _ = await get_whole(app, '/images')

    assert head.status_code == 200
    assert head.content == b''
    # As its GET, sent in chunks: no length to announce.
    assert 'content-length' not in head.headers
    assert same == 304
    assert closed
    assert full['etag'] == etag


def _failing_at(monkeypatch, call: int) -> None:
    """Make the catalog fail at the call-th read of a snapshot."""
    read = SqliteCatalog.read_snapshot
    calls = []

    async def failing(self, snapshot, size):
        calls.append(size)
        if len(calls) == call:
            raise CatalogError('disk I/O error')
        return await read(self, snapshot, size)

    monkeypatch.setattr(SqliteCatalog, 'read_snapshot', failing)


async def test_a_catalog_failing_before_the_answer_begins_is_a_503(
    config, storage_path, stored, monkeypatch
):
    _failing_at(monkeypatch, 2)
    app = create_served_app(long_lists(config))
    async with falcon.testing.ASGIConductor(app):
        status, _, content = await get_whole(app, '/images')
        keys = await redis_keys(config)

    assert status == 503
    assert json.loads(content)['title'] == 'Storage unavailable'
    assert keys == []
    assert snapshots_closed(storage_path)


async def test_a_catalog_failing_on_the_way_drops_the_answer(
    config, storage_path, stored, monkeypatch
):
    # The first 1000 bytes (three batches) are read by the cache, and sent.
    _failing_at(monkeypatch, 4)
    app = create_served_app(long_lists(config))
    async with falcon.testing.ASGIConductor(app):
        with pytest.raises(StorageUnavailableError):
            await get_whole(app, '/images')

    assert snapshots_closed(storage_path)


async def test_a_catalog_put_back_under_a_long_list_is_read_from_then_on(
    config, storage_path, stored
):
    path = pathlib.Path(storage_path) / CATALOG_DIRECTORY / DATABASE_NAME
    app = create_served_app(long_lists(config))
    async with falcon.testing.ASGIConductor(app) as conductor:
        await conductor.simulate_get('/images?limit=1')
        copy = path.with_name('copy')
        shutil.copy(path, copy)
        copy.replace(path)
        status, _, content = await get_whole(app, '/images')

    assert status == 200
    assert json.loads(content) == stored


async def test_an_image_too_large_to_keep_is_sent_from_its_file_each_time(
    config, stored
):
    app = create_served_app(long_lists(config, largest_entry=100))
    async with falcon.testing.ASGIConductor(app) as conductor:
        answers = [await conductor.simulate_get(stored[0]['image']) for _ in range(2)]
        keys = await redis_keys(config)

    assert [resp.headers['x-asgilook-cache'] for resp in answers] == ['Miss', 'Miss']
    assert answers[0].content == answers[1].content
    assert int(answers[0].headers['content-length']) > 100
    assert keys == []


async def test_a_long_list_whose_snapshot_cannot_open_is_a_503_and_takes_no_place(
    config, stored, monkeypatch
):
    snapshot = SqliteCatalog.snapshot
    failures = []

    async def failing_once(self):
        if not failures:
            failures.append(True)
            raise CatalogError('disk I/O error')
        return await snapshot(self)

    monkeypatch.setattr(SqliteCatalog, 'snapshot', failing_once)
    app = create_served_app(long_lists(config, long_lists=1))
    async with falcon.testing.ASGIConductor(app):
        failed, _, content = await get_whole(app, '/images')
        status, _, listed = await get_whole(app, '/images')

    assert failed == 503
    assert json.loads(content)['title'] == 'Storage unavailable'
    assert status == 200
    assert json.loads(listed) == stored
