"""A value too large to be an entry, under an entry's key: measured once a
lookup of it is late, and deleted (against a real Redis: test_cache_live.py)."""

import asyncio
import logging

import fakeredis
import falcon.testing

from asgilook.app import create_served_app

from .streams import WAIT

KEY = 'asgilook:/images'
# Over the largest entry at a timeout of 0.05 s (1.6 MiB of body, and 64 KiB).
PLANTED = b'x' * 2 * 1024 * 1024


class _LateRedis(fakeredis.aioredis.FakeRedis):
    """A Redis whose next `late[name]` commands of each name answer late."""

    late: dict[str, int]
    strlen_given_up: asyncio.Event

    async def execute_command(self, *args, **options):
        if self.late.get(args[0], 0) > 0:
            self.late[args[0]] -= 1
            try:
                await asyncio.sleep(WAIT)
            finally:
                if args[0] == 'STRLEN':
                    self.strlen_given_up.set()
        return await super().execute_command(*args, **options)


async def test_a_value_whose_size_redis_does_not_tell_is_measured_again(
    config, redis_server, caplog
):
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    config.redis_timeout = 0.05
    config.memory_cache_size = 0
    clients = []

    class Late(_LateRedis):
        late = {}
        strlen_given_up = asyncio.Event()

    def from_url(*args, **kwargs):
        # Lookups late, as a value too large to read in time makes them;
        # the writes' client (which PINGs a late Redis) answers.
        kind = Late if not clients else fakeredis.aioredis.FakeRedis
        clients.append(kind(server=redis_server))
        return clients[-1]

    config.redis_from_url = from_url
    redis = fakeredis.FakeRedis(server=redis_server)
    redis.set(KEY, PLANTED)
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        # Late, and so is the size asked after it: the value stays.
        Late.late.update(SET=1, STRLEN=1)
        first = await conductor.simulate_get('/images')
        async with asyncio.timeout(WAIT):
            await Late.strlen_given_up.wait()
        kept = redis.strlen(KEY)
        # Late again; the size is told: the value goes.
        Late.late.update(SET=1)
        states = [first.headers['X-ASGILook-Cache']]
        async with asyncio.timeout(WAIT):
            while states[-1] != 'Miss':
                resp = await conductor.simulate_get('/images')
                states.append(resp.headers['X-ASGILook-Cache'])
                # Time for the measure, and the PING that tells whether
                # Redis answers.
                await asyncio.sleep(0.01)

    assert kept == len(PLANTED)
    assert states[:2] == ['Bypass', 'Bypass']
    assert states[-1] == 'Miss'
    assert len(redis.get(KEY)) < 1024
    assert [r.getMessage() for r in caplog.records if r.name == 'asgilook.cache'] == [
        f"Redis at redis://localhost held {len(PLANTED)} bytes under '{KEY}', "
        f'more than any entry asgilook stores ({int(0.05 * 32 * 2**20) + 65536} '
        'at most) and too many to read within the timeout: every lookup of its '
        'path was late; they were deleted'
    ]
