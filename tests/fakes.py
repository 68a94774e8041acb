"""Configurations with fakes injected: fakeredis and a given storage directory."""

import contextlib
import os
import pathlib
import time
import uuid

import fakeredis
import falcon.testing

from asgilook.app import create_served_app
from asgilook.config import Config

from .images import encode, gradient


def make_config(storage_path, redis_server=None, uuid_generator=uuid.uuid4) -> Config:
    """A Config over storage_path whose Redis is a fakeredis server."""
    redis_server = redis_server or fakeredis.FakeServer()

    def fake_redis_from_url(*args, **kwargs):
        return fakeredis.aioredis.FakeRedis(server=redis_server)

    config = Config()
    config.redis_from_url = fake_redis_from_url
    config.redis_host = 'redis://localhost'
    config.storage_path = storage_path
    config.uuid_generator = uuid_generator
    return config


@contextlib.asynccontextmanager
async def two_workers(
    storage_path, redis_server, render_processes=None, uuid_generator=uuid.uuid4
):
    """Two apps over one storage directory and one Redis: two worker processes.

    render_processes=0 renders in this process's threads (where a test
    injects a render function). Both ask uuid_generator for the ids of uploads.
    """
    configs = [
        make_config(storage_path, redis_server, uuid_generator) for _ in range(2)
    ]
    if render_processes is not None:
        for config in configs:
            config.render_processes = render_processes
    apps = [create_served_app(config) for config in configs]
    async with (
        falcon.testing.ASGIConductor(apps[0]) as first,
        falcon.testing.ASGIConductor(apps[1]) as second,
    ):
        yield first, second


async def upload_through(conductor, size=(320, 200)) -> dict:
    """Upload a PNG gradient through an ASGIConductor; the new image's JSON."""
    resp = await conductor.simulate_post('/images', body=encode(gradient(size), 'PNG'))
    assert resp.status_code == 201
    return as_listed(resp.json)


async def redis_keys(config) -> list[bytes]:
    """The keys of the Redis a config names, sorted."""
    client = config.redis_from_url(config.redis_host)
    try:
        return sorted(await client.keys('*'))
    finally:
        await client.aclose()


def dying_render(*args):
    """A render whose process dies, as one killed for its memory would."""
    os._exit(1)


def stuck_render(source, size, quality, extension='jpeg'):
    """A render that never ends; it says it began in a file beside source."""
    pathlib.Path(f'{source}.rendering').touch()
    time.sleep(600)


class FakeClock:
    """A monotonic clock that moves only when a test moves it (Config.clock)."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# The delete tokens of the images uploaded by as_listed's callers, by id.
_TOKENS: dict[str, str] = {}


def as_listed(created: dict) -> dict:
    """The image object of a 201 body as lists show it (no delete_token).

    Its token is kept for owner(): only the uploader has it.
    """
    image = dict(created)
    _TOKENS[image['id']] = image.pop('delete_token')
    return image


def owner(image: dict) -> dict[str, str]:
    """The headers with which the uploader of image deletes it."""
    token = image.get('delete_token') or _TOKENS[image['id']]
    return {'Authorization': f'Bearer {token}'}
