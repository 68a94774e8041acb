"""The cache against a real redis-server: large writes, a frozen server, media types."""

import asyncio
import dataclasses
import logging
import random
import signal
import time

import falcon
import falcon.asgi
import falcon.testing
import httpx
import msgpack
import pytest
from redis import asyncio as aioredis

from asgilook.app import create_served_app
from asgilook.cache import RedisCache

from . import servers
from .fakes import FakeClock, as_listed, make_config
from .images import encode, gradient
from .streams import WAIT

pytestmark = pytest.mark.live

LARGE = 4 * 1024 * 1024


class _Blobs:
    """Responses of a known body per number: large ones, and small ones."""

    async def on_get(self, req, resp, number):
        resp.content_type = falcon.MEDIA_JPEG
        resp.data = _blob(number, LARGE)

    async def on_get_small(self, req, resp, number):
        resp.content_type = falcon.MEDIA_JPEG
        resp.data = _blob(number, 64)

    async def cache_version(self, req, number):
        return str(number)


def _blob(number: int, size: int) -> bytes:
    return random.Random(number).randbytes(size)


def _app(storage_path, redis_url, redis_timeout, **timing) -> falcon.asgi.App:
    config = make_config(storage_path)
    config.cache_timing = dataclasses.replace(config.cache_timing, **timing)
    config.redis_from_url = aioredis.from_url
    config.redis_host = redis_url
    config.redis_timeout = redis_timeout
    # Every Hit comes from Redis, through the client under test.
    config.memory_cache_size = 0
    blobs = _Blobs()
    versions = {
        '/blobs/{number:int}': blobs.cache_version,
        '/small/{number:int}': blobs.cache_version,
    }
    app = falcon.asgi.App(middleware=[RedisCache(config, versions=versions)])
    app.add_route('/blobs/{number:int}', blobs)
    app.add_route('/small/{number:int}', blobs, suffix='small')
    return app


def _cache_log(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == 'asgilook.cache']


async def test_large_entries_written_at_once_turn_nothing_off(
    storage_path, live_redis, caplog
):
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    numbers = range(16)
    # Entries of 4 MiB are kept at a timeout of 0.1 s (6.4 MiB at most).
    app = _app(storage_path, live_redis, 0.1, entry_read_rate=64 * 1024 * 1024)
    # Another worker, in no hurry, reads back what the first one wrote.
    reader = _app(storage_path, live_redis, 2.0)
    async with falcon.testing.ASGIConductor(app) as conductor:
        burst = await asyncio.gather(
            *(conductor.simulate_get(f'/blobs/{number}') for number in numbers)
        )
        async with falcon.testing.ASGIConductor(reader) as elsewhere:
            stored = [
                await elsewhere.simulate_get(f'/blobs/{number}') for number in numbers
            ]
        # The same client afterwards: every answer is the one asked for.
        small = [
            [await conductor.simulate_get(f'/small/{number}') for _ in range(2)]
            for number in numbers
        ]

    for number, resp, read in zip(numbers, burst, stored, strict=True):
        assert (resp.status_code, resp.content) == (200, _blob(number, LARGE))
        assert read.content == resp.content
        # What was computed was written whole, under its own path; a lookup
        # this busy process got to late went without the cache.
        state = resp.headers['X-ASGILook-Cache'], read.headers['X-ASGILook-Cache']
        assert state in {('Miss', 'Hit'), ('Bypass', 'Miss')}
    assert [resp.headers['X-ASGILook-Cache'] for resp in burst].count('Miss') >= 1
    for number, (miss, hit) in zip(numbers, small, strict=True):
        assert (miss.headers['X-ASGILook-Cache'], hit.headers['X-ASGILook-Cache']) == (
            'Miss',
            'Hit',
        )
        assert miss.content == hit.content == _blob(number, 64)
    # The cache never went off.
    assert _cache_log(caplog) == []


async def test_a_frozen_redis_still_turns_the_cache_off(storage_path, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    port = servers.free_port()
    redis_url = f'redis://127.0.0.1:{port}'
    redis = await asyncio.to_thread(servers.start_redis, tmp_path, port)
    try:
        # A late Redis is asked again soon: the test need not wait.
        app = _app(storage_path, redis_url, 0.1, retry_interval=0.05)
        async with falcon.testing.ASGIConductor(app) as conductor:
            warm = [await conductor.simulate_get('/small/1')]
            # The entry goes to Redis once the answer is sent: asked until kept.
            async with asyncio.timeout(5):
                while (await _kept(conductor, '/small/1', warm)) != 'Hit':
                    pass
            redis.send_signal(signal.SIGSTOP)
            started = time.monotonic()
            frozen = await conductor.simulate_get('/small/1')
            # While a PING decides whether Redis is away, nobody waits for it.
            meanwhile = await conductor.simulate_get('/small/1')
            waited = time.monotonic() - started
        # The server stopped once that PING had its answer: none.
        redis.send_signal(signal.SIGCONT)
        async with falcon.testing.ASGIConductor(app) as conductor:
            thawed = await conductor.simulate_get('/small/1')
    finally:
        redis.send_signal(signal.SIGCONT)
        servers.stop(redis)

    answers = [*warm, frozen, meanwhile, thawed]
    states = [resp.headers['X-ASGILook-Cache'] for resp in answers]
    assert states[0] == 'Miss'
    assert states[-4:] == ['Hit', 'Bypass', 'Bypass', 'Hit']
    assert {resp.content for resp in answers} == {_blob(1, 64)}
    assert waited < 0.1 + 1.0
    assert _cache_log(caplog) == [
        f'Redis at {redis_url} cannot be reached (no answer within 0.1 s); '
        'serving without the cache',
        f'Redis at {redis_url} answers again; serving from the cache',
    ]


def test_two_workers_give_each_client_the_type_it_asks_for(tmp_path, live_redis):
    json_type, msgpack_type = 'application/json', 'application/msgpack'
    accepts = [json_type, msgpack_type] * 4
    with servers.uvicorn_server(
        tmp_path / 'images', live_redis, '--workers', '2'
    ) as base_url:
        created = httpx.post(
            f'{base_url}/images',
            content=encode(gradient((64, 48)), 'PNG'),
            headers={'Accept': msgpack_type},
        )
        # A connection each: either worker may answer, from the one Redis.
        answers = [
            httpx.get(f'{base_url}/images', headers={'Accept': accept})
            for accept in accepts
        ]

    assert created.headers['Content-Type'] == msgpack_type
    listed = [as_listed(msgpack.unpackb(created.content, raw=False))]
    for resp, accept in zip(answers, accepts, strict=True):
        assert resp.headers['Content-Type'] == accept
        assert resp.headers['Vary'] == 'Accept'
        if accept == json_type:
            assert resp.json() == listed
        else:
            assert msgpack.unpackb(resp.content, raw=False) == listed
    assert {resp.headers['X-ASGILook-Cache'] for resp in answers[2:]} == {'Hit'}


async def test_a_redis_that_refuses_writes_is_told_once_and_answers_go_on(
    storage_path, live_redis, caplog
):
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    clock = FakeClock()
    app_config = make_config(storage_path)
    app_config.clock = clock
    app_config.redis_from_url = aioredis.from_url
    app_config.redis_host = live_redis
    admin = aioredis.from_url(live_redis)
    async with falcon.testing.ASGIConductor(create_served_app(app_config)) as conductor:
        # Full: Redis refuses every command that would add to it.
        await admin.config_set('maxmemory-policy', 'noeviction')
        await admin.config_set('maxmemory', 1)
        full = [await conductor.simulate_get('/images') for _ in range(3)]
        clock.advance(app_config.cache_timing.refusal_log_interval)
        full.append(await conductor.simulate_get('/images'))
        await admin.config_set('maxmemory', 0)
        room = [await conductor.simulate_get('/images') for _ in range(2)]
    await admin.aclose()

    assert [resp.status_code for resp in full + room] == [200] * 6
    assert [resp.headers['X-ASGILook-Cache'] for resp in full + room] == [
        *['Bypass'] * 4,
        'Miss',
        'Hit',
    ]
    # Once, and again a minute later while it goes on; never "cannot be reached".
    refusal = (
        f"Redis at {live_redis} refuses the cache's commands (OutOfMemoryError: "
        "command not allowed when used memory > 'maxmemory'.); answering without "
        'the cache until it takes them'
    )
    assert _cache_log(caplog) == [refusal, refusal]


@pytest.mark.parametrize(
    ('maxmemory', 'policy', 'problem'),
    [
        (
            0,
            'allkeys-lru',
            'has no memory limit (maxmemory): it will hold every answer',
        ),
        (
            64 * 1024 * 1024,
            'noeviction',
            'refuses writes when its memory is full (noeviction)',
        ),
        (64 * 1024 * 1024, 'volatile-lru', None),
    ],
)
async def test_a_redis_that_would_grow_without_end_is_told_at_start(
    storage_path, live_redis, caplog, maxmemory, policy, problem
):
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    admin = aioredis.from_url(live_redis)
    await admin.config_set('maxmemory', maxmemory)
    await admin.config_set('maxmemory-policy', policy)
    await admin.aclose()
    config = make_config(storage_path)
    config.redis_from_url = aioredis.from_url
    config.redis_host = live_redis
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        resp = await conductor.simulate_get('/images')

    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    expected = [
        f'Redis at {live_redis} {problem}; start it with --maxmemory 256mb '
        '--maxmemory-policy allkeys-lru (or set them in redis.conf)'
    ]
    assert _cache_log(caplog) == (expected if problem else [])


async def _states_until_a_miss(conductor, path: str) -> list[str]:
    """GET path until an answer is computed afresh; the cache's states of each."""
    states = []
    async with asyncio.timeout(WAIT):
        while not states or states[-1] == 'Bypass':
            resp = await conductor.simulate_get(path)
            assert resp.status_code == 200
            states.append(resp.headers['X-ASGILook-Cache'])
            # Time for the PING that tells whether Redis answers.
            await asyncio.sleep(0.01)
    return states


async def test_a_value_too_large_to_read_in_time_is_deleted(
    storage_path, live_redis, caplog
):
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    config = make_config(storage_path)
    config.redis_from_url = aioredis.from_url
    config.redis_host = live_redis
    # No entry over 1.6 MiB; 64 MiB take longer to read (157 ms on an idle machine).
    config.redis_timeout = 0.05
    config.memory_cache_size = 0
    admin = aioredis.from_url(live_redis)
    key, planted = 'asgilook:/images', b'x' * 64 * 1024 * 1024
    rounds = []
    try:
        async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
            # Planted twice: deleted twice, logged once.
            for _ in range(2):
                await admin.set(key, planted)
                states = await _states_until_a_miss(conductor, '/images')
                hit = await conductor.simulate_get('/images')
                rounds.append((states, hit.headers['X-ASGILook-Cache']))
        kept = await admin.strlen(key)
    finally:
        await admin.aclose()

    for states, after in rounds:
        assert states[0] == 'Bypass'
        assert states[-1] == 'Miss'
        assert after == 'Hit'
    # An entry of the list in place of the planted value.
    assert 0 < kept < 1024
    # (At so short a timeout, a busy machine may make Redis late at times.)
    assert [line for line in _cache_log(caplog) if ' held ' in line] == [
        f"Redis at {live_redis} held {len(planted)} bytes under 'asgilook:/images', "
        f'more than any entry asgilook stores ({int(0.05 * 32 * 2**20) + 65536} at '
        'most) and too many to read within the timeout: every lookup of its path '
        'was late; they were deleted'
    ]


async def _kept(conductor, path: str, answers: list) -> str:
    """GET path, keep the answer in answers; what the cache said of it."""
    answers.append(await conductor.simulate_get(path))
    return answers[-1].headers['X-ASGILook-Cache']
