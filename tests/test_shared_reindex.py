"""`python -m asgilook reindex` over a shared catalog and its bucket."""

import asyncio
import subprocess
import sys

import pytest
from aiobotocore.session import get_session

from asgilook.catalog.opening import shared
from asgilook.catalog.reconcile import reconcile
from asgilook.store import Store, reindex_command

from .servers import free_port
from .shared import hosts, shared_config
from .test_shared import objects, upload

LOST = '0e6b7c2a-8f38-4a8e-9a55-2d6c1d3e4f50.64x64.1234.jpeg'


@pytest.fixture(autouse=True)
def _s3(monkeypatch, s3_environ):
    for name, value in s3_environ.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def s3(s3_environ):
    async with get_session().create_client('s3') as client:
        yield client


async def put(s3, storage_url, name, body=b'left behind'):
    bucket, _, prefix = storage_url.removeprefix('s3://').partition('/')
    await s3.put_object(Bucket=bucket, Key=f'{prefix}/{name}', Body=body)


async def test_objects_no_row_names_go_and_rows_without_objects_are_unlisted(
    tmp_path, database_url, storage_url, s3, logged
):
    async with hosts(tmp_path, database_url, storage_url, count=1) as (host,):
        kept, lost = await upload(host), await upload(host, (64, 48))
    bucket, _, prefix = storage_url.removeprefix('s3://').partition('/')
    [lost_key] = [key for key in await objects(s3, storage_url) if lost['id'] in key]
    await s3.delete_object(Bucket=bucket, Key=lost_key)
    await put(s3, storage_url, LOST)
    await put(s3, storage_url, 'notes.txt')
    config = shared_config(tmp_path, database_url, storage_url)
    catalog, stored = shared(config, database_url, storage_url)
    await stored.prepare()
    await catalog.open()
    try:
        # An object as fresh as an upload in flight's stays.
        fresh = await reconcile(catalog, stored)
        found = await reconcile(catalog, stored, grace=0)
        listed = [record.image_id for record in await catalog.rows_after('', 10)]
        told = await catalog.changes(0, 10)
    finally:
        await catalog.close()
        await stored.release()

    assert (fresh.listed, fresh.removed) == (1, [])
    assert fresh.unlisted == [lost['id']]
    assert (found.listed, found.removed, found.unlisted) == (1, [LOST], [])
    assert listed == [kept['id']]
    assert [(change.kind, change.image_id) for change in told][-1] == (
        'deleted',
        lost['id'],
    )
    remaining = [key.split('/')[-1] for key in await objects(s3, storage_url)]
    assert 'notes.txt' in remaining
    assert LOST not in remaining
    assert any('removed ' + LOST in record.message for record in logged.records)


def test_the_command_reindexes_the_shared_catalog(
    tmp_path, database_url, storage_url, s3_environ
):
    env = {
        'ASGI_LOOK_STORAGE_PATH': str(tmp_path),
        'ASGI_LOOK_DATABASE_URL': database_url,
        'ASGI_LOOK_STORAGE_URL': storage_url,
        **s3_environ,
    }

    done = subprocess.run(
        [sys.executable, '-m', 'asgilook', 'reindex'],
        env=env,
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert f'reindexed {storage_url}/: 0 images listed' in done.stderr.decode()


async def test_a_store_lets_its_back_ends_go_at_its_end(
    tmp_path, database_url, storage_url
):
    store = Store(shared_config(tmp_path, database_url, storage_url))
    await store.startup()
    await store.close()
    # Started again, as a lifespan may be.
    await store.startup()
    assert await store.page(0, 10) == ([], None)
    await store.shut()


def test_a_bucket_emptied_by_hand_unlists_every_row(
    tmp_path, database_url, storage_url, logged
):
    config = shared_config(tmp_path, database_url, storage_url)

    async def emptied():
        async with hosts(tmp_path, database_url, storage_url, count=1) as (host,):
            images = [await upload(host), await upload(host, (64, 48))]
        async with get_session().create_client('s3') as s3:
            bucket = storage_url.split('/')[2]
            for key in await objects(s3, storage_url):
                await s3.delete_object(Bucket=bucket, Key=key)
        return images

    images = asyncio.run(emptied())
    status = reindex_command(config)
    store = Store(config)

    async def listed():
        await store.startup()
        try:
            return await store.page(0, 10)
        finally:
            await store.shut()

    assert status == 0
    assert asyncio.run(listed()) == ([], None)
    unlisted = [r.message for r in logged.records if r.message.startswith('unlisted')]
    assert len(unlisted) == len(images)


def test_a_reindex_that_cannot_reach_the_database_fails(tmp_path, storage_url, logged):
    url = f'postgresql://postgres@127.0.0.1:{free_port()}/none'
    config = shared_config(tmp_path, url, storage_url)

    assert reindex_command(config) == 1
    assert any(
        record.message.startswith(f'cannot reindex {storage_url}')
        for record in logged.records
    )
