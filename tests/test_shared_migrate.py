"""`python -m asgilook migrate`: one host's directory into several hosts' engines."""

import asyncio

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.catalog import SqliteCatalog
from asgilook.catalog.keys import KEY_SETTING
from asgilook.catalog.migrate import migrate
from asgilook.catalog.opening import shared
from asgilook.serving import launcher
from asgilook.store import Store, migrate_command

from .fakes import make_config, owner
from .images import encode, gradient
from .shared import hosts, shared_config


@pytest.fixture(autouse=True)
def _s3(monkeypatch, s3_environ):
    for name, value in s3_environ.items():
        monkeypatch.setenv(name, value)


def served_by_one_host(storage_path, count=3):
    """Images uploaded to one host over storage_path; their JSON, tokens too."""

    async def uploads():
        app = create_served_app(make_config(storage_path))
        async with falcon.testing.ASGIConductor(app) as host:
            images = []
            for number in range(count):
                resp = await host.simulate_post('/images', body=png(64 + number))
                images.append(resp.json)
            return images

    return asyncio.run(uploads())


def png(width):
    return encode(gradient((width, 48)), 'PNG')


def test_a_directory_moves_in_whole_and_its_tokens_stay_good(
    tmp_path, database_url, storage_url, logged
):
    one_host = tmp_path / 'one-host'
    images = served_by_one_host(one_host)
    config = shared_config(one_host, database_url, storage_url)

    first, again = migrate_command(config), migrate_command(config)

    async def served():
        async with hosts(tmp_path, database_url, storage_url) as (host, other):
            listed = await other.simulate_get('/images')
            contents = [
                (await host.simulate_get(image['image'])).status_code
                for image in images
            ]
            deleted = await other.simulate_delete(
                images[0]['image'], headers=owner(images[0])
            )
            return listed.json, contents, deleted.status_code

    listed, contents, deleted = asyncio.run(served())

    assert (first, again) == (0, 0)
    assert [item['id'] for item in listed] == [image['id'] for image in images]
    assert [item['modified'] for item in listed] == [
        image['modified'] for image in images
    ]
    assert contents == [200] * len(images)
    assert deleted == 204
    said = [record.message for record in logged.records]
    assert any('3 images moved, 0 listed there already' in line for line in said)
    assert any('0 images moved, 3 listed there already' in line for line in said)


def test_nowhere_to_migrate_to_is_said(tmp_path, logged):
    assert migrate_command(make_config(tmp_path)) == 2
    assert any('nowhere to migrate to' in r.message for r in logged.records)


def test_a_directory_without_a_catalog_has_nothing_to_migrate(
    tmp_path, database_url, storage_url, logged
):
    config = shared_config(tmp_path / 'empty', database_url, storage_url)

    assert migrate_command(config) == 1
    assert any('cannot migrate' in r.message for r in logged.records)


def test_a_shared_catalog_with_another_key_is_not_migrated_into(
    tmp_path, database_url, storage_url, logged
):
    one_host = tmp_path / 'one-host'
    served_by_one_host(one_host, count=1)

    async def started():
        store = Store(shared_config(tmp_path / 'host', database_url, storage_url))
        await store.startup()
        await store.shut()

    asyncio.run(started())

    assert migrate_command(shared_config(one_host, database_url, storage_url)) == 1
    said = [record.message for record in logged.records]
    assert any('has a service key of its own' in line for line in said)


def test_the_command_line_migrates(tmp_path, database_url, storage_url, monkeypatch):
    one_host = tmp_path / 'one-host'
    served_by_one_host(one_host, count=1)
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', str(one_host))
    monkeypatch.setenv('ASGI_LOOK_DATABASE_URL', database_url)
    monkeypatch.setenv('ASGI_LOOK_STORAGE_URL', storage_url)

    assert launcher.main(['migrate']) == 0


def test_a_directory_signed_with_a_secret_moves_in_without_a_key(
    tmp_path, database_url, storage_url
):
    one_host = tmp_path / 'one-host'
    config = shared_config(one_host, database_url, storage_url)
    # Signed with ASGI_LOOK_SECRET: no key is kept in the directory to move.
    config.secret = b'correct-horse-battery-staple'

    async def uploads():
        served = make_config(one_host)
        served.secret = config.secret
        async with falcon.testing.ASGIConductor(create_served_app(served)) as host:
            return [
                (await host.simulate_post('/images', body=png(64 + n))).json
                for n in range(3)
            ]

    images = asyncio.run(uploads())
    status = migrate_command(config)

    async def again_a_batch_at_a_time():
        directory = SqliteCatalog(one_host)
        catalog, objects = shared(config, database_url, storage_url)
        await objects.prepare()
        await catalog.open()
        try:
            moved = await migrate(directory, catalog, batch=1)
            listed = await catalog.page(0, 10)
            key = await catalog.setting(KEY_SETTING)
        finally:
            await directory.close()
            directory.shutdown()
            await catalog.close()
            await objects.release()
        return moved, listed, key

    moved, listed, key = asyncio.run(again_a_batch_at_a_time())

    assert status == 0
    assert (moved.moved, moved.passed_over) == (0, 3)
    assert [record.image_id for record in listed.records] == [i['id'] for i in images]
    assert key is None
