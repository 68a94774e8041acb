"""The catalog database itself: damaged, replaced, busy, bounded, raced."""

import asyncio
import contextlib
import dataclasses
import logging
import os
import pathlib
import platform
import shutil
import sqlite3

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.catalog import (
    CATALOG_DIRECTORY,
    DATABASE_NAME,
    Removal,
    SqliteCatalog,
    reindex,
)
from asgilook.errors import StorageUnavailableError
from asgilook.store import Store

from .asgi import body, call
from .disks import Disk, config_over, put_image
from .fakes import make_config, owner, upload_through
from .images import stored_file
from .streams import WAIT


def database(storage_path) -> pathlib.Path:
    return pathlib.Path(storage_path) / CATALOG_DIRECTORY / DATABASE_NAME


def test_a_catalog_that_is_not_a_database_stops_the_start_naming_the_path(
    config, storage_path
):
    database(storage_path).parent.mkdir(parents=True)
    database(storage_path).write_bytes(b'not a database, but long enough ' * 100)
    client = falcon.testing.TestClient(create_served_app(config))

    with pytest.raises(RuntimeError) as failed:
        client.simulate_get('/images')

    assert 'ASGI_LOOK_STORAGE_PATH' in str(failed.value)
    assert 'file is not a database' in str(failed.value)


async def test_a_catalog_replaced_while_serving_is_served_from_then_on(
    config, storage_path, tmp_path, caplog
):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        copy = tmp_path / 'copy.sqlite3'
        shutil.copy(database(storage_path), copy)
        copy.replace(database(storage_path))
        listing = await conductor.simulate_get('/images?limit=1')
        other = await upload_through(conductor)
        after = await conductor.simulate_get('/images')

    assert listing.status_code == 200
    assert listing.json == [image]
    assert after.json == [image, other]
    assert [r.getMessage() for r in caplog.records if r.name == 'asgilook.catalog'] == [
        f'the catalog {database(storage_path)} changed under the service '
        f'({database(storage_path)} was replaced): this worker opens the one there '
        'now',
        f'the catalog {database(storage_path)} works again',
    ]


async def test_lookups_past_the_remembered_bound_still_answer_right(config):
    config.catalog_limits = dataclasses.replace(
        config.catalog_limits, remembered_records=2
    )
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        images = [await upload_through(conductor) for _ in range(3)]
        answers = [
            (await conductor.simulate_head(image['image'])).status_code
            for image in images * 2
        ]

    assert answers == [200] * 6


async def test_two_deletes_of_one_image_at_once_are_204_and_404(config):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        deletes = await asyncio.gather(
            conductor.simulate_delete(image['image'], headers=owner(image)),
            conductor.simulate_delete(image['image'], headers=owner(image)),
        )
        listing = await conductor.simulate_get('/images')

    assert sorted(resp.status_code for resp in deletes) == [204, 404]
    assert listing.json == []


async def test_a_delete_that_finds_the_image_unlisted_leaves_its_trash_alone(
    storage_path,
):
    # What the second of two deletes at once meets, whatever their timing.
    catalog = SqliteCatalog(pathlib.Path(storage_path))
    await catalog.open()
    trash = pathlib.Path(storage_path) / 'trash'
    removal = await catalog.remove('1a256a8a-2063-46ff-b53f-d04d5bcf5eee', trash)
    await catalog.close()
    catalog.shutdown()

    assert removal is Removal.NOT_LISTED
    assert not trash.exists()


async def test_a_delete_with_no_room_to_record_it_is_507_and_keeps_the_image(
    tmp_path,
):
    from .mounts import tmpfs

    with tmpfs(tmp_path / 'disk', '2m') as mount:
        disk = Disk(mount)
        config = config_over(disk.storage)
        # No room kept in reserve for it either.
        config.catalog_limits = dataclasses.replace(config.catalog_limits, reserve=0)
        async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
            image = await upload_through(conductor, (64, 48))
            disk.fill()
            refused = await conductor.simulate_delete(
                image['image'], headers=owner(image)
            )
            still = await conductor.simulate_get(image['image'])
            disk.empty()
            deleted = await conductor.simulate_delete(
                image['image'], headers=owner(image)
            )
            gone = await conductor.simulate_get(image['image'])

    assert refused.status_code == 507
    assert refused.json['title'] == 'Storage full'
    assert still.status_code == 200
    assert deleted.status_code == 204
    assert gone.status_code == 404


# The system calls a thread sleeps in, by machine: SQLite's busy handler
# sleeps between its tries of a lock another connection holds.
SLEEPS = {'x86_64': {35, 230}, 'aarch64': {101, 115}}


def _threads() -> set[str]:
    return set(os.listdir('/proc/self/task'))


def _asleep(threads: set[str]) -> bool:
    """Whether one of these threads of this process sleeps now."""
    for thread in threads:
        with contextlib.suppress(OSError):
            with open(f'/proc/self/task/{thread}/syscall') as syscall:
                call = syscall.read().split()[0]
            if call.isdigit() and int(call) in SLEEPS[platform.machine()]:
                return True
    return False


async def test_a_start_waits_for_a_catalog_another_process_holds(storage_path):
    # A catalog made by another process, held while this one opens it.
    database(storage_path).parent.mkdir(parents=True)
    holder = sqlite3.connect(database(storage_path), isolation_level=None)
    holder.execute('CREATE TABLE held (x)')
    holder.execute('BEGIN EXCLUSIVE')
    before = _threads()
    opened = SqliteCatalog(pathlib.Path(storage_path))
    opening = asyncio.ensure_future(opened.open())

    def refused_or_done() -> bool:
        # Refused the lock, the thread that opens it sleeps before it tries
        # again; an open that did not wait would be done (with an error).
        return opening.done() or _asleep(_threads() - before)

    async with asyncio.timeout(WAIT):
        while not refused_or_done():  # noqa: ASYNC110 (threads, not tasks)
            await asyncio.sleep(0.01)
    waited = not opening.done()
    holder.execute('COMMIT')
    holder.close()
    await opening
    version = await opened.version()
    await opened.close()
    opened.shutdown()

    assert waited
    assert version == f'{0:032x}'


async def test_a_reindex_that_finds_the_directory_as_recorded_reads_nothing(
    storage_path, caplog
):
    put_image(storage_path)
    caplog.set_level(logging.INFO, logger='asgilook.reindex')
    opened = SqliteCatalog(pathlib.Path(storage_path))
    first = await reindex.reindex(opened, force=False)
    second = await reindex.reindex(opened, force=False)
    await opened.close()
    opened.shutdown()

    assert first.adopted == 1
    assert second is None
    assert len([r for r in caplog.records if 'reindexed' in r.getMessage()]) == 1


async def test_a_reindex_reads_and_lists_in_batches(storage_path):
    config = make_config(storage_path)
    config.catalog_limits = dataclasses.replace(config.catalog_limits, reindex_batch=2)
    placed = [put_image(storage_path) for _ in range(5)]
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        listing = await conductor.simulate_get('/images')

    assert sorted(item['id'] for item in listing.json) == sorted(placed)


async def test_another_spelling_of_the_storage_path_is_the_same_catalog(
    config, storage_path
):
    config.storage_path = pathlib.Path(storage_path)
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
    config.storage_path = str(storage_path)
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        listing = await conductor.simulate_get('/images')

    assert listing.json == [image]


async def test_a_query_that_is_not_plain_ascii_is_never_an_answer_kept_in_memory(
    config,
):
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        # A page kept in memory under the same characters, read as UTF-8.
        await upload_through(conductor)
        kept = [await conductor.simulate_get('/images?limit=1') for _ in range(2)]
        answers = [
            await call(app, 'GET', '/images', [body(b'')], query=query)
            for query in (b'limit=1\xff', b'limit=\xc3\xa9')
        ]

    assert kept[1].headers['X-ASGILook-Cache'] == 'Hit'
    assert [status for status, *_ in answers] == [400, 400]
    assert answers[0][2]['title'] == 'Invalid query string'
    assert answers[1][2]['title'] == 'Invalid page size'


async def test_a_gone_file_that_cannot_be_unlisted_now_is_still_a_404(
    config, storage_path, monkeypatch, caplog
):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        stored_file(storage_path, image['id']).unlink()

        async def unavailable(self, image):
            raise StorageUnavailableError

        with monkeypatch.context() as patch:
            patch.setattr(Store, 'delete', unavailable)
            gone = await conductor.simulate_get(image['image'])
        listing = await conductor.simulate_get('/images')

    assert gone.status_code == 404
    # Still listed: the next request, start or reindex unlists it.
    assert listing.json == [image]
    assert not [
        r
        for r in caplog.records
        if r.name.startswith('asgilook') and 'unlisted' in r.getMessage()
    ]


async def test_a_catalog_removed_while_serving_is_503(config, storage_path):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        await upload_through(conductor)
        shutil.rmtree(database(storage_path).parent)
        listing = await conductor.simulate_get('/images')

    assert listing.status_code == 503
    assert listing.json['title'] == 'Storage unavailable'


async def test_a_catalog_closed_before_it_opened_opens_at_its_next_use(
    storage_path,
):
    closed = SqliteCatalog(pathlib.Path(storage_path))
    await closed.close()
    listing = await closed.listing(10)
    await closed.close()
    closed.shutdown()

    assert listing == ([], f'{0:032x}')
    assert closed.token() is None
