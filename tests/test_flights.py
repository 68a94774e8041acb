"""No thundering herd: a cold response is computed once, however many ask for it."""

import asyncio
import dataclasses
import functools
import time

import fakeredis
import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.cache.flights import Flights
from asgilook.cache.redis_tier import LOCK_PREFIX
from asgilook.imaging import convert
from asgilook.limits import CacheTiming

from .crowds import Followers, Renders, together
from .fakes import two_workers, upload_through
from .images import stored_file

# What the key of a path holds while another process holds its lock.
ANOTHER_PROCESS_RENDERING = LOCK_PREFIX + b'0123456789abcdef'
LOCK_TTL = CacheTiming().lock_ttl
FORMATS = {'jpeg': 'image/jpeg', 'webp': 'image/webp', 'avif': 'image/avif'}


@pytest.fixture
def config(config):
    """Render in threads of the test's process, where renders can be counted."""
    config.render_processes = 0
    return config


@pytest.fixture
def renders(monkeypatch):
    """Count thumbnail renders; a test may hold them while a crowd gathers."""
    counted = Renders()
    monkeypatch.setattr(
        convert, 'resize', functools.partial(counted.resize, convert.resize)
    )
    yield counted
    counted.let_go()


@pytest.fixture
def followers(monkeypatch):
    """Count the requests that follow a flight (in any process of the test)."""
    counted = Followers()
    follow = Flights.follow

    async def counted_follow(self, flight, within):
        await counted.joined()
        return await follow(self, flight, within)

    monkeypatch.setattr(Flights, 'follow', counted_follow)
    return counted


async def test_concurrent_misses_render_once_per_process(config, renders, followers):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        uri = (await upload_through(conductor))['thumbnails'][0]

        crowd = await together(
            [conductor.simulate_get(uri) for _ in range(16)], renders, followers, 15
        )
        later = await conductor.simulate_get(uri)

    assert len(renders) == 1
    assert {resp.status_code for resp in crowd} == {200}
    assert len({resp.content for resp in crowd + [later]}) == 1
    states = sorted(resp.headers['X-ASGILook-Cache'] for resp in crowd)
    assert states == ['Hit'] * 15 + ['Miss']
    assert len({resp.headers['ETag'] for resp in crowd}) == 1


async def test_each_format_of_a_thumbnail_is_rendered_once(config, renders, followers):
    # A thread for each format's render, held at once.
    config.image_workers = 3
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        jpeg = (await upload_through(conductor))['thumbnails'][0]
        uris = [jpeg.replace('.jpeg', f'.{extension}') for extension in FORMATS]

        renders.hold()
        crowd = asyncio.gather(
            *(conductor.simulate_get(uri) for uri in uris for _ in range(6))
        )
        # Each format's leader renders; the others of its format follow it.
        await renders.begun(3)
        await followers.gathered(15)
        renders.let_go()
        answers = await crowd

    assert len(renders) == 3
    for index, media_type in enumerate(FORMATS.values()):
        mine = answers[index * 6 : (index + 1) * 6]
        assert {resp.headers['Content-Type'] for resp in mine} == {media_type}
        assert len({resp.content for resp in mine}) == 1
        states = sorted(resp.headers['X-ASGILook-Cache'] for resp in mine)
        assert states == ['Hit'] * 5 + ['Miss']


# Redis before 7.0 does not take SET with both NX and GET.
@pytest.mark.parametrize('redis_version', [(6, 2), (7, 0)])
async def test_processes_sharing_redis_render_once_between_them(
    storage_path, renders, followers, redis_version, caplog
):
    redis_server = fakeredis.FakeServer(version=redis_version)
    async with two_workers(storage_path, redis_server, render_processes=0) as (
        first,
        second,
    ):
        thumbnails = [(await upload_through(first))['thumbnails'][0] for _ in range(2)]

        # In each process, one leads and seven follow: the leader of one
        # renders, the other's waits for its entry in Redis.
        crowds = [
            await together(
                [
                    process.simulate_get(uri)
                    for _ in range(8)
                    for process in (first, second)
                ],
                renders,
                followers,
                14,
            )
            for uri in thumbnails
        ]

    assert len(renders) == 2
    for crowd in crowds:
        assert {resp.status_code for resp in crowd} == {200}
        assert len({resp.content for resp in crowd}) == 1
        states = [resp.headers['X-ASGILook-Cache'] for resp in crowd]
        assert states.count('Miss') == 1
    # Nothing for the log: no lock lost, no Redis trouble. (asyncio's notes
    # of a slow step on a loaded machine are not asgilook's to judge here.)
    assert not [record for record in caplog.records if record.name != 'asyncio']


async def test_a_lock_left_behind_delays_a_render_only_so_long(
    config, redis_server, renders
):
    """Another process locked a path to render it, and died."""
    config.cache_timing = dataclasses.replace(config.cache_timing, lock_ttl=0.3)
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        uri = (await upload_through(conductor))['thumbnails'][0]
        fakeredis.FakeRedis(server=redis_server).set(
            f'asgilook:{uri}', ANOTHER_PROCESS_RENDERING, px=60_000
        )

        started = time.monotonic()
        resp = await conductor.simulate_get(uri)
        waited = time.monotonic() - started
        again = await conductor.simulate_get(uri)

    assert resp.status_code == 200
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert waited >= 0.3
    # What it rendered took the place of the lock.
    assert again.headers['X-ASGILook-Cache'] == 'Hit'
    assert len(renders) == 1


async def test_a_lock_released_without_an_entry_is_rendered_here(
    config, redis_server, renders
):
    """The other process's render failed: it released its lock, storing nothing."""
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        uri = (await upload_through(conductor))['thumbnails'][0]
        fakeredis.FakeRedis(server=redis_server).set(
            f'asgilook:{uri}', ANOTHER_PROCESS_RENDERING, px=50
        )

        resp = await conductor.simulate_get(uri)
        again = await conductor.simulate_get(uri)

    assert (resp.status_code, resp.headers['X-ASGILook-Cache']) == (200, 'Miss')
    assert again.headers['X-ASGILook-Cache'] == 'Hit'
    assert len(renders) == 1


async def test_a_render_that_fails_releases_its_lock(
    storage_path, redis_server, monkeypatch
):
    """A file gone behind the catalog's back: the other process is not held up."""
    async with two_workers(storage_path, redis_server, render_processes=0) as (
        first,
        second,
    ):
        image = await upload_through(first)
        uri = image['thumbnails'][0]
        for process in (first, second):
            assert (await process.simulate_get('/images')).json == [image]
        stored_file(storage_path, image['id']).unlink()

        failed = await first.simulate_get(uri)
        started = time.monotonic()
        also_failed = await second.simulate_get(uri)
        waited = time.monotonic() - started

    assert failed.status_code == also_failed.status_code == 404
    assert waited < LOCK_TTL


async def test_redis_lost_during_a_render(config, redis_server, renders):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        renders.hold()
        rendering = asyncio.create_task(conductor.simulate_get(image['thumbnails'][0]))
        await renders.begun(1)
        redis_server.connected = False
        bypassed = await conductor.simulate_get(image['image'])
        renders.let_go()
        rendered = await rendering
        redis_server.connected = True
        started = time.monotonic()
        fresh = await conductor.simulate_get(image['thumbnails'][0])
        waited = time.monotonic() - started

    assert bypassed.headers['X-ASGILook-Cache'] == 'Bypass'
    assert (rendered.status_code, rendered.headers['X-ASGILook-Cache']) == (200, 'Miss')
    # Nothing was stored while Redis was away; the lock the render left does
    # not hold up the process that left it.
    assert fresh.headers['X-ASGILook-Cache'] == 'Miss'
    assert waited < LOCK_TTL
    assert fresh.content == rendered.content
    assert len(renders) == 2


async def test_followers_of_a_failed_leader_compute_their_own():
    flights = Flights()
    flight, leading = flights.join('/thumbnails/x', 'v1')
    follower, follows = flights.join('/thumbnails/x', 'v1')
    waiting = asyncio.create_task(flights.follow(follower, within=5))

    flights.land(flight, None)

    assert (leading, follows, follower is flight) == (True, False, True)
    assert await waiting is None
    assert flights.join('/thumbnails/x', 'v1')[1] is True


async def test_a_new_version_starts_a_new_flight():
    flights = Flights()
    old, _ = flights.join('/images', 'v1')
    new, leading = flights.join('/images', 'v2')

    flights.land(old, 'stale list')

    assert leading is True
    assert flights.join('/images', 'v2') == (new, False)
    flights.land(new, 'list')
    assert await flights.follow(new, within=1) == 'list'


async def test_a_follower_stops_waiting_in_time():
    flights = Flights()
    flight, _ = flights.join('/images', 'v1')

    started = time.monotonic()
    assert await flights.follow(flight, within=0.05) is None
    assert time.monotonic() - started < 1
    assert not flight.outcome.done()


async def test_a_leader_that_ends_without_landing_releases_its_followers():
    flights = Flights()
    joined = asyncio.get_running_loop().create_future()

    async def leader():
        joined.set_result(flights.join('/images', 'v1')[0])
        raise RuntimeError('the request failed before it could land')

    task = asyncio.create_task(leader())
    flight = await joined
    with pytest.raises(RuntimeError):
        await task

    assert await flights.follow(flight, within=1) is None
    assert flights.join('/images', 'v1')[1] is True


async def test_a_head_of_a_cold_thumbnail_renders_it_for_the_get(
    storage_path, redis_server, renders
):
    async with two_workers(storage_path, redis_server, render_processes=0) as (
        first,
        second,
    ):
        uri = (await upload_through(first))['thumbnails'][0]

        head = await first.simulate_head(uri)
        get = await first.simulate_get(uri)
        elsewhere = await second.simulate_get(uri)

    assert len(renders) == 1
    assert (head.status_code, head.content) == (200, b'')
    states = [resp.headers['X-ASGILook-Cache'] for resp in (head, get, elsewhere)]
    assert states == ['Miss', 'Hit', 'Hit']
    matters = ('Content-Type', 'Content-Length', 'ETag', 'Last-Modified')
    for name in matters + ('Cache-Control',):
        assert head.headers[name] == get.headers[name] == elsewhere.headers[name]
    assert int(get.headers['Content-Length']) == len(get.content) > 0
    assert get.content == elsewhere.content


async def test_concurrent_heads_and_gets_render_once(config, renders, followers):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        uri = (await upload_through(conductor))['thumbnails'][0]

        crowd = await together(
            [
                conductor.simulate_request(method, uri)
                for _ in range(4)
                for method in ('HEAD', 'GET')
            ],
            renders,
            followers,
            7,
        )

    assert len(renders) == 1
    gets = [resp for resp in crowd if resp.content]
    assert len(gets) == 4
    assert len({resp.content for resp in gets}) == 1


async def test_a_head_of_an_image_leaves_no_lock_and_stores_nothing(
    config, redis_server, storage_path
):
    redis = fakeredis.FakeRedis(server=redis_server)
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        uri = image['image']

        head = await conductor.simulate_head(uri)
        held = redis.get(f'asgilook:{uri}')
        get = await conductor.simulate_get(uri)
        again = await conductor.simulate_get(uri)

    assert (head.status_code, head.content) == (200, b'')
    assert held is None
    stored = stored_file(storage_path, image['id']).read_bytes()
    assert (get.status_code, get.content) == (200, stored)
    assert get.headers['X-ASGILook-Cache'] == 'Miss'
    assert head.headers['Content-Length'] == get.headers['Content-Length']
    assert (again.headers['X-ASGILook-Cache'], again.content) == ('Hit', stored)
