import asyncio
import dataclasses
import logging
import threading
import time

import fakeredis
import falcon
import falcon.asgi
import falcon.testing
from redis import asyncio as aioredis

from asgilook.app import create_served_app
from asgilook.cache import RedisCache
from asgilook.imaging import convert

from .fakes import FakeClock, as_listed, owner, two_workers
from .images import encode, gradient


async def test_a_frozen_redis_costs_at_most_the_timeout(config, silent_redis, caplog):
    config.redis_from_url = aioredis.from_url
    config.redis_host = silent_redis
    config.redis_timeout = 0.1
    caplog.set_level(logging.WARNING, logger='asgilook.cache')

    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        upload = await conductor.simulate_post(
            '/images', body=encode(gradient(), 'PNG')
        )
        image = as_listed(upload.json)
        for uri in ['/images', image['image'], image['thumbnails'][0]] * 3:
            started = time.monotonic()
            resp = await conductor.simulate_get(uri)
            # The timeout, and a margin for the work itself; never the socket's.
            assert time.monotonic() - started < 0.1 + 1.0
            assert resp.status_code == 200
            assert resp.headers['X-ASGILook-Cache'] == 'Bypass'

    messages = [r.getMessage() for r in caplog.records if r.name == 'asgilook.cache']
    assert messages == [
        f'Redis at {silent_redis} cannot be reached (no answer within 0.1 s); '
        'serving without the cache'
    ]


async def test_going_away_and_coming_back_is_logged_once_each(
    config, redis_server, caplog
):
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    config.clock = clock = FakeClock()
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        assert (await conductor.simulate_get('/images')).headers[
            'X-ASGILook-Cache'
        ] == 'Miss'
        # Past the time the list kept in memory is served without asking Redis.
        clock.advance(config.cache_timing.liveness)

        redis_server.connected = False
        down = [await conductor.simulate_get('/images') for _ in range(5)]
        redis_server.connected = True
        back = [await conductor.simulate_get('/images') for _ in range(5)]

    assert {resp.headers['X-ASGILook-Cache'] for resp in down} == {'Bypass'}
    assert [resp.headers['X-ASGILook-Cache'] for resp in back] == ['Hit'] * 5
    assert all(resp.json == [] for resp in down + back)
    messages = [r.getMessage() for r in caplog.records if r.name == 'asgilook.cache']
    assert len(messages) == 2
    assert 'cannot be reached' in messages[0]
    assert (
        messages[1]
        == 'Redis at redis://localhost answers again; serving from the cache'
    )


def test_the_redis_clients_give_up_within_their_timeouts(config):
    seen = []

    def redis_from_url(url, **kwargs):
        seen.append(dict(kwargs, url=url))
        return aioredis.from_url(url, **kwargs)

    config.redis_from_url = redis_from_url
    config.redis_timeout = 0.3
    config.cache_timing = dataclasses.replace(config.cache_timing, store_timeout=1.5)
    create_served_app(config)

    # One client for lookups, one for the writes of entries.
    lookups, stores = seen
    assert lookups['url'] == stores['url'] == 'redis://localhost'
    assert lookups['socket_timeout'] == lookups['socket_connect_timeout'] == 0.3
    assert stores['socket_timeout'] == stores['socket_connect_timeout'] == 1.5
    assert lookups['retry'].get_retries() == stores['retry'].get_retries() == 0


def test_options_is_answered_and_not_cached(client):
    resp = client.simulate_options('/images')

    assert resp.status_code == 200
    assert set(resp.headers['Allow'].split(', ')) == {'GET', 'HEAD', 'POST'}
    assert 'X-ASGILook-Cache' not in resp.headers


async def test_a_redis_that_comes_up_after_the_start_answers_not_again(
    config, redis_server, caplog
):
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    redis_server.connected = False
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        down = await conductor.simulate_get('/images')
        redis_server.connected = True
        up = [await conductor.simulate_get('/images') for _ in range(2)]

    assert down.headers['X-ASGILook-Cache'] == 'Bypass'
    assert [resp.headers['X-ASGILook-Cache'] for resp in up] == ['Miss', 'Hit']
    messages = [r.getMessage() for r in caplog.records if r.name == 'asgilook.cache']
    assert messages == [
        'Redis at redis://localhost cannot be reached (FakeRedis is emulating a '
        'connection error.); serving without the cache',
        'Redis at redis://localhost answers; serving from the cache',
    ]


class _LosesRedis:
    """A responder during whose work Redis goes away."""

    def __init__(self, redis_server):
        self._redis_server = redis_server

    async def on_get(self, req, resp):
        self._redis_server.connected = False
        resp.media = ['computed']

    async def cache_version(self, req):
        return 'computed-1'


def test_a_redis_lost_before_the_entry_is_written(config, redis_server, caplog):
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    lost = _LosesRedis(redis_server)
    versions = {'/lost': lost.cache_version}
    app = falcon.asgi.App(middleware=[RedisCache(config, versions=versions)])
    app.add_route('/lost', lost)
    client = falcon.testing.TestClient(app)

    first = client.simulate_get('/lost')
    second = client.simulate_get('/lost')

    assert (first.status_code, first.json) == (200, ['computed'])
    assert first.headers['X-ASGILook-Cache'] == 'Miss'
    assert second.headers['X-ASGILook-Cache'] == 'Bypass'
    messages = [r.getMessage() for r in caplog.records if r.name == 'asgilook.cache']
    assert len(messages) == 1
    assert 'cannot be reached' in messages[0]


class _LateRedis(fakeredis.aioredis.FakeRedis):
    """A Redis whose first `late` lookups answer after `delay` seconds."""

    late = 0
    delay = 0.0

    async def execute_command(self, *args, **options):
        if args[0] in ('GET', 'SET') and type(self).late > 0:
            type(self).late -= 1
            await asyncio.sleep(self.delay)
        return await super().execute_command(*args, **options)


async def test_late_lookups_of_a_redis_that_answers_turn_nothing_off(
    config, redis_server, caplog
):
    # Lookups answer late (this process was busy, say); a PING on the writes'
    # client answers at once: one PING decides, and the cache stays on.
    config.redis_timeout = 0.05
    clients = []

    class Late(_LateRedis):
        late, delay = 2, 0.2

    class Pinged(fakeredis.aioredis.FakeRedis):
        # The PING answers in time, but after the second late lookup gives up.
        pings = 0

        async def execute_command(self, *args, **options):
            if args[0] == 'PING':
                type(self).pings += 1
                await asyncio.sleep(0.1)
            return await super().execute_command(*args, **options)

    def from_url(*args, **kwargs):
        kind = Late if not clients else Pinged
        clients.append(kind(server=redis_server))
        return clients[-1]

    config.redis_from_url = from_url
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        image = as_listed((await conductor.simulate_post('/images', body=_png())).json)
        # Two lookups at once are late: both are given up (Bypass), one PING.
        late = await asyncio.gather(
            conductor.simulate_get('/images'),
            conductor.simulate_get(image['thumbnails'][0]),
        )
        assert [resp.headers['X-ASGILook-Cache'] for resp in late] == ['Bypass'] * 2
        states = []
        for _ in range(100):
            resp = await conductor.simulate_get(image['image'])
            states.append(resp.headers['X-ASGILook-Cache'])
            if states[-1] == 'Hit':
                break
            await asyncio.sleep(0.01)

    assert states[-1] == 'Hit'
    assert Late.late == 0
    assert Pinged.pings == 1
    assert not [r for r in caplog.records if r.name == 'asgilook.cache']


def _png() -> bytes:
    return encode(gradient((320, 200)), 'PNG')


async def test_a_render_that_a_delete_overtakes_leaves_nothing_in_redis(
    storage_path, redis_server, redis, monkeypatch
):
    # Worker one renders a thumbnail; worker two deletes the image meanwhile
    # and drops its keys; the render's entry, written after, must go too.
    started, go_on = threading.Event(), threading.Event()
    resize = convert.resize

    def held_resize(*args):
        # Rendered from the file, and not yet answered.
        thumbnail = resize(*args)
        started.set()
        go_on.wait(10)
        return thumbnail

    monkeypatch.setattr(convert, 'resize', held_resize)
    async with two_workers(storage_path, redis_server, render_processes=0) as (
        first,
        second,
    ):
        image = as_listed((await first.simulate_post('/images', body=_png())).json)
        rendering = asyncio.ensure_future(first.simulate_get(image['thumbnails'][0]))
        await asyncio.to_thread(started.wait, 10)
        assert (
            await second.simulate_delete(image['image'], headers=owner(image))
        ).status_code == 204
        go_on.set()
        await rendering
        gone = await first.simulate_get(image['thumbnails'][0])

    assert gone.status_code == 404
    assert redis.keys('asgilook:/thumbnails/*') == []


async def test_an_entry_the_storage_cannot_vouch_for_again_is_not_kept(config, redis):
    # What an answer showed is asked again once its entry is written; a
    # storage that cannot answer then (gone, unreadable) keeps nothing.
    asked = []

    class Hello:
        async def on_get(self, req, resp):
            resp.media = {'hello': 'world'}

        async def cache_version(self, req):
            asked.append(req.path)
            if len(asked) > 1:
                raise OSError('the storage went away')
            return 'version-1'

    hello = Hello()
    versions = {'/hello': hello.cache_version}
    app = falcon.asgi.App(middleware=[RedisCache(config, versions=versions)])
    app.add_route('/hello', hello)
    async with falcon.testing.ASGIConductor(app) as conductor:
        resp = await conductor.simulate_get('/hello')

    assert (resp.status_code, resp.json) == (200, {'hello': 'world'})
    assert asked == ['/hello', '/hello']
    assert redis.keys('asgilook:*') == []


class _Hello:
    """A resource that says nothing of what its answer is computed from."""

    async def on_get(self, req, resp, name):
        resp.media = {'hello': name}


class _VersionedHello(_Hello):
    async def cache_version(self, req, name):
        return None if name == 'nobody' else f'{name}-1'


def test_a_route_without_a_version_is_not_cached(config, redis):
    versioned = _VersionedHello()
    versions = {'/versioned/{name}': versioned.cache_version}
    app = falcon.asgi.App(middleware=[RedisCache(config, versions=versions)])
    app.add_route('/plain/{name}', _Hello())
    app.add_route('/versioned/{name}', versioned)
    client = falcon.testing.TestClient(app)

    states = {
        uri: [client.simulate_get(uri).headers.get('X-ASGILook-Cache') for _ in '12']
        for uri in ['/plain/world', '/versioned/nobody', '/versioned/world']
    }

    # A resource that is never cached says nothing of the cache.
    assert states == {
        '/plain/world': [None, None],
        '/versioned/nobody': ['Miss', 'Miss'],
        '/versioned/world': ['Miss', 'Hit'],
    }
    assert redis.keys('asgilook:*') == [b'asgilook:/versioned/world']
    assert client.simulate_get('/versioned/world').json == {'hello': 'world'}


def test_an_unrouted_path_says_miss_or_bypass(client, redis_server):
    found = client.simulate_get('/nowhere')
    redis_server.connected = False
    away = client.simulate_get('/nowhere')

    assert (found.status_code, away.status_code) == (404, 404)
    assert found.headers['X-ASGILook-Cache'] == 'Miss'
    assert away.headers['X-ASGILook-Cache'] == 'Bypass'
