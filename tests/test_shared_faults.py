"""Several hosts when PostgreSQL or the object store stops, and comes back."""

import asyncio
import logging
import time

import pytest

from .fakes import owner
from .images import encode, gradient, photo
from .shared import hosts

# A fault is answered within this many seconds: a connection, then a request
# that waits TIMEOUT at most (the database's 2 s, the object store's 5 s).
QUICK = 6.0
# A host serves again within this many seconds of the database's return: its
# pool tries to connect less often the longer it failed (psycopg_pool).
RECOVERY = 30.0


@pytest.fixture(autouse=True)
def _s3(monkeypatch, s3_environ):
    for name, value in s3_environ.items():
        monkeypatch.setenv(name, value)


async def upload(host):
    return await host.simulate_post('/images', body=encode(gradient((320, 200)), 'PNG'))


async def timed(request):
    started = time.monotonic()
    resp = await request
    return resp, time.monotonic() - started


async def until(request, status, seconds=RECOVERY):
    """Ask again until the answer has status, for seconds at most; the last."""
    deadline = time.monotonic() + seconds
    while (resp := await request()).status_code != status:
        if time.monotonic() > deadline:
            break
        await asyncio.sleep(0.1)
    return resp


def unavailable(resp, took):
    return (
        resp.status_code == 503
        and resp.json['title'] == 'Storage unavailable'
        and resp.headers['Retry-After'] == '60'
        and took < QUICK
    )


async def test_a_database_that_stops_is_503_and_its_return_is_served(
    tmp_path, database_url, storage_url, postgres_server, caplog
):
    caplog.set_level(logging.WARNING, logger='asgilook.catalog')
    async with hosts(tmp_path, database_url, storage_url) as (first, second):
        image = (await upload(first)).json
        uris = [image['image'], image['thumbnails'][-1]]
        cached = [(await second.simulate_get(uri)).content for uri in uris]
        with postgres_server.stopped():
            refused, took = await timed(upload(first))
            kept, kept_took = await timed(
                second.simulate_delete(image['image'], headers=owner(image))
            )
            listing, listing_took = await timed(first.simulate_get('/images'))
            # Never changing under their URLs: served from memory and Redis.
            served = [
                await host.simulate_get(uri) for host in (first, second) for uri in uris
            ]
        # Each host listens again, and serves, without a restart: each when
        # its own pool connects again (on a schedule of its own).
        again = await until(lambda: upload(second), 201)
        listed = await until(lambda: first.simulate_get('/images'), 200)

    assert unavailable(refused, took)
    assert unavailable(kept, kept_took)
    assert unavailable(listing, listing_took)
    assert [resp.status_code for resp in served] == [200] * 4
    assert [resp.content for resp in served] == cached * 2
    assert {resp.headers['X-ASGILook-Cache'] for resp in served} == {'Hit'}
    assert again.status_code == 201
    assert [item['id'] for item in listed.json] == [image['id'], again.json['id']]
    assert any(
        'lost the changes of the other hosts' in r.message for r in caplog.records
    )


async def test_an_object_store_that_stops_is_503_and_cached_thumbnails_are_served(
    tmp_path, database_url, storage_url, seaweed_server
):
    async with hosts(tmp_path, database_url, storage_url) as (first, second):
        image = (await upload(first)).json
        cached = await second.simulate_get(image['thumbnails'][-1])
        with seaweed_server.stopped():
            refused, took = await timed(upload(first))
            full, full_took = await timed(second.simulate_get(image['image']))
            thumbnail = await second.simulate_get(image['thumbnails'][-1])
            deleted = await first.simulate_delete(image['image'], headers=owner(image))
        after = await upload(first)
        listed = await second.simulate_get('/images')

    assert unavailable(refused, took)
    assert unavailable(full, full_took)
    assert thumbnail.status_code == 200
    assert thumbnail.content == cached.content
    # Unlisted all the same: its object is left for a reindex to remove.
    assert deleted.status_code == 204
    assert after.status_code == 201
    assert [item['id'] for item in listed.json] == [after.json['id']]


async def test_a_database_that_hangs_is_503_quickly_and_served_after(
    tmp_path, database_url, storage_url, postgres_server
):
    async with hosts(tmp_path, database_url, storage_url) as (first, second):
        image = (await upload(first)).json
        cached = await second.simulate_get(image['thumbnails'][-1])
        with postgres_server.hung():
            refused, took = await timed(upload(first))
            listing, listing_took = await timed(second.simulate_get('/images'))
            thumbnail = await second.simulate_get(image['thumbnails'][-1])
        # The connections that were waiting are let go: a new one serves.
        again = await upload(second)
        listed = await first.simulate_get('/images')

    assert unavailable(refused, took)
    assert unavailable(listing, listing_took)
    assert thumbnail.content == cached.content
    assert again.status_code == 201
    assert [item['id'] for item in listed.json] == [image['id'], again.json['id']]


async def test_an_object_store_that_hangs_is_503_quickly_and_served_after(
    tmp_path, database_url, storage_url, seaweed_server
):
    async with hosts(tmp_path, database_url, storage_url) as (first, second):
        image = (await upload(first)).json
        cached = await second.simulate_get(image['thumbnails'][-1])
        with seaweed_server.hung():
            # More than the sockets' buffers hold: the put itself stalls.
            refused, took = await timed(
                first.simulate_post('/images', body=photo((3000, 2000)))
            )
            full, full_took = await timed(second.simulate_get(image['image']))
            thumbnail = await second.simulate_get(image['thumbnails'][-1])
        again = await upload(second)
        listed = await first.simulate_get('/images')

    assert unavailable(refused, took)
    assert unavailable(full, full_took)
    assert thumbnail.content == cached.content
    assert again.status_code == 201
    assert [item['id'] for item in listed.json] == [image['id'], again.json['id']]
