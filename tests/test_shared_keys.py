"""The service key of several hosts: made once, in the database, or ASGI_LOOK_SECRET."""

import asyncio

import psycopg
import pytest

from asgilook.store import Store

from .fakes import owner
from .shared import hosts, shared_config
from .test_shared import upload


@pytest.fixture(autouse=True)
def _s3(monkeypatch, s3_environ):
    for name, value in s3_environ.items():
        monkeypatch.setenv(name, value)


async def test_the_first_host_makes_the_key_every_host_signs_with(
    tmp_path, database_url, storage_url
):
    stores = [
        Store(shared_config(tmp_path / name, database_url, storage_url))
        for name in ('a', 'b')
    ]
    # The first as a server starts it, the second served with no lifespan.
    await stores[0].startup()
    try:
        secrets = [await store.service_secret() for store in stores]
    finally:
        for store in stores:
            await store.shut()

    assert secrets[0] == secrets[1]
    assert len(secrets[0]) == 64


async def test_hosts_that_start_at_once_make_one_schema_and_one_key(
    tmp_path, database_url, storage_url
):
    stores = [
        Store(shared_config(tmp_path / f'host-{number}', database_url, storage_url))
        for number in range(3)
    ]
    try:
        await asyncio.gather(*(store.startup() for store in stores))
        secrets = {await store.service_secret() for store in stores}
    finally:
        for store in stores:
            await store.shut()

    assert len(secrets) == 1


async def test_hosts_signing_with_a_secret_keep_no_key(
    tmp_path, database_url, storage_url
):
    secret = b'correct-horse-battery-staple'
    async with hosts(tmp_path, database_url, storage_url, secret=secret) as (
        first,
        second,
    ):
        image = await upload(first)
        deleted = await second.simulate_delete(image['image'], headers=owner(image))
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        cursor = await connection.execute('SELECT count(*) FROM settings')
        (kept,) = await cursor.fetchone()

    assert deleted.status_code == 204
    assert kept == 0
