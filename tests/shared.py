"""Hosts over one PostgreSQL database and one S3 bucket (real engines)."""

import contextlib

import fakeredis
import falcon.testing

from asgilook.app import create_served_app

from .fakes import make_config


def shared_config(
    storage_path, database_url, storage_url, redis_server=None, **settings
):
    """A host's Config over the shared database and bucket (fakeredis)."""
    config = make_config(storage_path, redis_server)
    config.database_url = database_url
    config.storage_url = storage_url
    for name, value in settings.items():
        setattr(config, name, value)
    return config


@contextlib.asynccontextmanager
async def hosts(tmp_path, database_url, storage_url, count=2, **settings):
    """count hosts (apps) sharing the database, the bucket and one Redis."""
    redis_server = fakeredis.FakeServer()
    configs = [
        shared_config(
            tmp_path / f'host-{number}',
            database_url,
            storage_url,
            redis_server,
            **settings,
        )
        for number in range(count)
    ]
    async with contextlib.AsyncExitStack() as stack:
        yield [
            await stack.enter_async_context(
                falcon.testing.ASGIConductor(create_served_app(config))
            )
            for config in configs
        ]
