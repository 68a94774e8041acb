"""The catalog agrees with the files: after changes by hand, crashes, an upgrade."""

import asyncio
import logging
import os

import falcon
import falcon.testing

from asgilook.app import create_served_app
from asgilook.catalog import scan
from asgilook.serving import launcher

from .directories import (
    jpeg,
    listed,
    messages,
    place,
    run_reindex,
    started,
    summaries,
)
from .fakes import make_config, owner, upload_through
from .images import stored_file


async def test_a_file_copied_in_by_hand_is_listed_at_the_next_start(
    storage_path, logged
):
    async with started(storage_path) as worker:
        image = await upload_through(worker)
    data = jpeg((200, 160))
    name = place(storage_path, data, (200, 160))

    async with started(storage_path) as worker:
        images = await listed(worker)
        served = await worker.simulate_get(images[-1]['image'])

    assert images[0] == image
    assert images[1]['id'] == name.split('.')[0]
    assert images[1]['size'] == [200, 160]
    assert served.content == data
    assert f'listed {name} found in {storage_path}' in messages(logged)
    assert summaries(logged)[-1] == (
        f'reindexed {storage_path}: 2 images listed, 1 files adopted, '
        '0 rows of missing files removed, 0 files ignored'
    )


async def test_a_file_removed_by_hand_is_unlisted_at_the_next_start(
    storage_path, logged
):
    async with started(storage_path) as worker:
        kept = await upload_through(worker)
        gone = await upload_through(worker)
    stored_file(storage_path, gone['id']).unlink()

    async with started(storage_path) as worker:
        images = await listed(worker)
        resp = await worker.simulate_get(gone['image'])

    assert images == [kept]
    assert resp.status_code == 404
    assert (
        f'unlisted image {gone["id"]}: its file is gone from {storage_path}'
        in messages(logged)
    )


async def test_a_start_with_nothing_changed_reads_no_directory(
    storage_path, logged, monkeypatch
):
    readings = []

    def counted(*args):
        readings.append(args)
        return read_directory(*args)

    read_directory = scan.read_directory
    monkeypatch.setattr(scan, 'read_directory', counted)
    async with started(storage_path) as worker:
        image = await upload_through(worker)
        assert (
            await worker.simulate_delete(image['image'], headers=owner(image))
        ).status_code == 204
        image = await upload_through(worker)
    assert len(readings) == 1
    logged.clear()

    for _ in range(2):
        async with started(storage_path) as worker:
            assert await listed(worker) == [image]

    assert len(readings) == 1
    assert summaries(logged) == []


async def test_workers_starting_together_read_a_changed_directory_once(
    storage_path, monkeypatch
):
    readings = []

    def counted(*args):
        readings.append(args)
        return read_directory(*args)

    read_directory = scan.read_directory
    async with started(storage_path) as worker:
        await upload_through(worker)
    name = place(storage_path, jpeg(), (320, 200))
    monkeypatch.setattr(scan, 'read_directory', counted)
    workers = [
        falcon.testing.ASGIConductor(create_served_app(make_config(storage_path)))
        for _ in range(2)
    ]

    # One after the other: two apps of one process share its temporary files.
    await workers[0].__aenter__()
    try:
        await workers[1].__aenter__()
        try:
            lists = [await listed(worker) for worker in workers]
        finally:
            await workers[1].__aexit__(None, None, None)
    finally:
        await workers[0].__aexit__(None, None, None)

    assert len(readings) == 1
    assert lists[0] == lists[1]
    assert lists[0][-1]['id'] == name.split('.')[0]


async def test_the_reindex_command_reconciles_while_a_worker_runs(storage_path):
    async with started(storage_path) as worker:
        kept = await upload_through(worker)
        gone = await upload_through(worker)
        for uri in ['/images', '/images?limit=10']:
            for _ in range(2):
                assert (await worker.simulate_get(uri)).status_code == 200
        stored_file(storage_path, gone['id']).unlink()
        data = jpeg((120, 90))
        name = place(storage_path, data, (120, 90))
        image_id = name.split('.')[0]
        # Until reconciled, the catalog says what is served.
        assert await listed(worker) == [kept, gone]
        copied = await worker.simulate_get(f'/images/{image_id}.jpeg')
        assert copied.status_code == 404

        done = await asyncio.to_thread(run_reindex, storage_path)

        assert done.returncode == 0, done.stderr
        assert f'listed {name} found in {storage_path}' in done.stderr
        assert f'unlisted image {gone["id"]}' in done.stderr
        assert (
            f'reindexed {storage_path}: 2 images listed, 1 files adopted, '
            '1 rows of missing files removed, 0 files ignored'
        ) in done.stderr
        images = await listed(worker)
        assert [image['id'] for image in images] == [kept['id'], image_id]
        page = await worker.simulate_get('/images?limit=10')
        assert page.headers['X-ASGILook-Cache'] == 'Miss'
        assert page.json == images
        assert (await worker.simulate_get(images[1]['image'])).content == data
        assert (await worker.simulate_get(gone['image'])).status_code == 404


def test_the_reindex_command_of_a_missing_directory_fails_with_a_message(tmp_path):
    missing = tmp_path / 'nowhere'

    done = run_reindex(missing)

    assert done.returncode == 1
    assert f'cannot reindex {missing}: no such directory' in done.stderr
    assert not missing.exists()


def test_the_reindex_command_of_an_empty_directory_lists_nothing(tmp_path):
    done = run_reindex(tmp_path)

    assert done.returncode == 0, done.stderr
    assert f'reindexed {tmp_path}: 0 images listed' in done.stderr


def test_the_reindex_command_lists_what_it_finds(tmp_path, monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger='asgilook')
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', str(tmp_path))
    name = place(tmp_path, jpeg(), (320, 200))

    assert launcher.main(['reindex']) == 0
    assert launcher.main(['reindex']) == 0

    assert caplog.messages.count(f'listed {name} found in {tmp_path}') == 1
    assert caplog.messages[-1] == (
        f'reindexed {tmp_path}: 1 images listed, 0 files adopted, '
        '0 rows of missing files removed, 0 files ignored'
    )


def test_the_reindex_command_under_asgi_look_secret_writes_no_key(
    tmp_path, monkeypatch
):
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', str(tmp_path))
    monkeypatch.setenv('ASGI_LOOK_SECRET', 'a secret of enough length')
    name = place(tmp_path, jpeg(), (320, 200))

    assert launcher.main(['reindex']) == 0

    assert sorted(os.listdir(tmp_path)) == ['.catalog', '.incoming', name]


def test_the_reindex_command_of_a_file_fails(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', str(tmp_path / 'a-file'))
    (tmp_path / 'a-file').write_text('not a directory')

    assert launcher.main(['reindex']) == 1

    assert caplog.messages == [
        f'cannot reindex {tmp_path / "a-file"}: no such directory'
    ]
