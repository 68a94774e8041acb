"""The in-process tier of the cache: fast, bounded, and as coherent as Redis."""

import pathlib

import fakeredis
import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.cache.memory import MemoryTier
from asgilook.catalog import SqliteCatalog, reindex

from .fakes import FakeClock, owner, two_workers, upload_through
from .images import stored_file


def test_the_least_recently_used_go_first_when_bytes_run_out():
    memory = MemoryTier(max_bytes=800)
    for key in 'abcdefgh':
        memory.put(key, key.upper(), 100)
    memory.get('a')

    memory.put('i', 'I', 100)
    memory.put('j', 'J', 100)

    assert [memory.get(key) for key in 'abcdij'] == ['A', None, None, 'D', 'I', 'J']
    assert memory.size == 800


def test_an_item_over_an_eighth_of_the_budget_is_not_kept():
    memory = MemoryTier(max_bytes=800)
    memory.put('small', 'kept', 100)
    memory.put('small', 'too big now', 101)

    assert memory.get('small') is None
    assert memory.size == 0


def test_discard_and_replace_keep_the_count_of_bytes():
    memory = MemoryTier(max_bytes=8000)
    memory.put('a', 1, 300)
    memory.put('a', 2, 200)
    memory.put('b', 3, 100)
    memory.discard('b')
    memory.discard('missing')

    assert (memory.get('a'), memory.size) == (2, 200)


@pytest.fixture
def redis(redis_server):
    return fakeredis.FakeRedis(server=redis_server)


async def test_a_hit_from_memory_needs_no_redis_entry(config, redis):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        uris = ['/images', image['image'], image['thumbnails'][0]]
        first = [await conductor.simulate_get(uri) for uri in uris]

        redis.flushall()
        again = [await conductor.simulate_get(uri) for uri in uris]

    assert [resp.headers['X-ASGILook-Cache'] for resp in first] == ['Miss'] * 3
    assert [resp.headers['X-ASGILook-Cache'] for resp in again] == ['Hit'] * 3
    assert [resp.content for resp in again] == [resp.content for resp in first]
    assert [resp.headers['ETag'] for resp in again] == [
        resp.headers['ETag'] for resp in first
    ]


async def test_what_another_worker_changes_is_never_served_old(
    storage_path, redis_server
):
    async with two_workers(storage_path, redis_server) as (first, second):
        kept = await upload_through(first)
        gone = await upload_through(first, (200, 320))
        uris = ['/images', gone['image'], *gone['thumbnails']]
        for _ in range(2):
            for uri in uris:
                assert (await second.simulate_get(uri)).status_code == 200
        assert (await second.simulate_get('/images')).headers[
            'X-ASGILook-Cache'
        ] == 'Hit'

        assert (
            await first.simulate_delete(gone['image'], headers=owner(gone))
        ).status_code == 204
        after_delete = [await second.simulate_get(uri) for uri in uris]
        added = await upload_through(first, (256, 256))
        after_upload = await second.simulate_get('/images')

    assert after_delete[0].json == [kept]
    assert [resp.status_code for resp in after_delete[1:]] == [404] * len(uris[1:])
    assert after_upload.json == [kept, added]


async def test_a_change_behind_asgilooks_back_shows_after_a_reindex(
    config, storage_path
):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        await conductor.simulate_get(image['image'])
        kept = await conductor.simulate_get(image['image'])

        stored_file(storage_path, image['id']).unlink()
        catalog = SqliteCatalog(pathlib.Path(storage_path))
        await reindex.reindex(catalog)
        await catalog.close()
        catalog.shutdown()
        resp = await conductor.simulate_get(image['image'])

    assert (kept.status_code, kept.headers['X-ASGILook-Cache']) == (200, 'Hit')
    assert resp.status_code == 404


async def test_a_memory_cache_size_of_zero_keeps_nothing(config, redis):
    config.memory_cache_size = 0
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        await conductor.simulate_get('/images')
        redis.flushall()
        resp = await conductor.simulate_get('/images')

    assert resp.headers['X-ASGILook-Cache'] == 'Miss'


async def test_a_hit_from_redis_is_kept_in_memory_too(
    storage_path, redis_server, redis
):
    async with two_workers(storage_path, redis_server) as (first, second):
        image = await upload_through(first)
        await first.simulate_get(image['image'])
        # The first upload made the change token; the second worker maps
        # it when it next reads the catalog, and keeps entries from then on.
        await second.simulate_get('/images')
        from_redis = await second.simulate_get(image['image'])
        redis.flushall()
        from_memory = await second.simulate_get(image['image'])

    assert from_redis.headers['X-ASGILook-Cache'] == 'Hit'
    assert from_memory.headers['X-ASGILook-Cache'] == 'Hit'
    assert from_memory.content == from_redis.content


async def test_a_kept_entry_outlives_its_ttl_while_the_image_is_unchanged(
    config, redis
):
    config.clock = clock = FakeClock()
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        first = await conductor.simulate_get(image['thumbnails'][0])
        redis.flushall()
        clock.advance(config.cache_timing.memory_ttl)
        # Redis answered a moment ago: what memory holds is checked against
        # the storage directory, and served again.
        await conductor.simulate_get('/images')
        again = await conductor.simulate_get(image['thumbnails'][0])

    assert again.headers['X-ASGILook-Cache'] == 'Hit'
    assert again.content == first.content


async def test_a_head_is_answered_from_what_another_worker_stored(
    storage_path, redis_server
):
    async with two_workers(storage_path, redis_server) as (first, second):
        uri = (await upload_through(first))['thumbnails'][0]
        stored = await first.simulate_get(uri)

        head = await second.simulate_head(uri)

    assert head.headers['X-ASGILook-Cache'] == 'Hit'
    assert head.headers['Content-Length'] == str(len(stored.content))
    assert head.headers['ETag'] == stored.headers['ETag']
    assert head.content == b''
