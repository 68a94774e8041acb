"""A catalog removed, put back, split or damaged while the service runs: no
upload acknowledged that is not kept, each fault said once with what to do,
and recovery without a restart where the file comes back."""

import asyncio
import contextlib
import os
import pathlib
import shutil
import signal
import sqlite3

import falcon.testing
import httpx
import pytest

from asgilook.app import create_served_app
from asgilook.catalog import CATALOG_DIRECTORY, DATABASE_NAME, SqliteCatalog
from asgilook.catalog.faults import Faults

from . import servers
from .fakes import FakeClock, make_config, upload_through
from .images import encode, gradient
from .service import Service, eventually


def _catalog(storage_path) -> pathlib.Path:
    return pathlib.Path(storage_path) / CATALOG_DIRECTORY


def _damage(path: pathlib.Path) -> None:
    """Write over a database with garbage, as a failing disk might."""
    # Everything committed into the database file first, off its WAL.
    with contextlib.closing(sqlite3.connect(path)) as connection:
        connection.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    path.write_bytes(b'\xff' * path.stat().st_size)


def _said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == 'asgilook.catalog']


async def test_a_catalog_removed_while_serving_refuses_changes_until_it_is_back(
    config, storage_path, tmp_path, caplog
):
    database = _catalog(storage_path) / DATABASE_NAME
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        first = await upload_through(conductor)
        shutil.copytree(_catalog(storage_path), tmp_path / 'copy')
        shutil.rmtree(_catalog(storage_path))
        refused = [
            await conductor.simulate_post('/images', body=encode(gradient(), 'PNG'))
            for _ in range(3)
        ]
        listed = await conductor.simulate_get('/images?limit=5')
        # Put back as it was: served again, no restart.
        shutil.copytree(tmp_path / 'copy', _catalog(storage_path))
        second = await upload_through(conductor)
        after = await conductor.simulate_get('/images')

    assert [resp.status_code for resp in refused] == [503] * 3
    assert listed.status_code == 503
    assert after.json == [first, second]
    assert _said(caplog) == [
        f'the catalog {database} is gone ({database} is gone): the list, uploads '
        'and deletes answer 503 until it is back; put it back, or restart the '
        'service to make a new one, which lists the image files it finds',
        f'the catalog {database} changed under the service ({database} was '
        'replaced): this worker opens the one there now',
        f'the catalog {database} works again',
    ]


async def test_a_removed_wal_index_never_splits_two_workers(storage_path, redis_server):
    database = _catalog(storage_path) / DATABASE_NAME
    running = create_served_app(make_config(storage_path, redis_server))
    async with falcon.testing.ASGIConductor(running) as first:
        images = [await upload_through(first) for _ in range(3)]
        database.with_name(DATABASE_NAME + '-shm').unlink()
        # A worker restarted now makes the WAL index again.
        restarted = create_served_app(make_config(storage_path, redis_server))
        async with falcon.testing.ASGIConductor(restarted) as second:
            for _ in range(5):
                images.append(await upload_through(first))
                images.append(await upload_through(second))
            lists = [
                (await worker.simulate_get('/images?limit=100')).json
                for worker in (first, second)
            ]

    assert lists == [images, images]


async def test_a_damaged_catalog_is_said_once_with_what_to_do(
    config, storage_path, caplog
):
    database = _catalog(storage_path) / DATABASE_NAME
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        await upload_through(conductor)
        _damage(database)
        answers = [await conductor.simulate_get('/images?limit=5') for _ in range(3)]

    assert {resp.status_code for resp in answers} == {503}
    [said] = _said(caplog)
    assert said.startswith(f'the catalog {database} is damaged (')
    assert said.endswith(
        f'stop the service, move {database.parent} away and start it again; the '
        'new catalog lists the image files it finds, and delete tokens stay good'
    )


@pytest.mark.live
async def test_a_removed_wal_index_then_a_restarted_worker_loses_nothing(
    tmp_path, live_redis
):
    storage = tmp_path / 'images'
    service = Service(storage, live_redis)
    try:
        workers = await service.two_workers()
        body = encode(gradient(), 'PNG')
        created = [_upload(service.url, body) for _ in range(3)]
        (_catalog(storage) / (DATABASE_NAME + '-shm')).unlink()
        await _restart_one(service, workers)
        created += [_upload(service.url, body) for _ in range(20)]
        # From either worker, each time on a new connection.
        lists = [_list(service.url) for _ in range(10)]
    finally:
        servers.stop(service.process)

    assert all(status == 201 for status, _ in created)
    ids = [image['id'] for _, image in created]
    assert {tuple(image['id'] for image in listed) for listed in lists} == {tuple(ids)}


async def _restart_one(service: Service, workers: list[int]) -> None:
    """Kill a worker, as the system might; wait until uvicorn started another."""
    os.kill(workers[0], signal.SIGKILL)
    await eventually(
        lambda: len(w := service.workers()) == 2 and workers[0] not in w, wait=30
    )


def _list(url: str) -> list[dict]:
    return httpx.get(f'{url}/images').json()


def _upload(url: str, body: bytes) -> tuple[int, dict]:
    resp = httpx.post(f'{url}/images', content=body)
    return resp.status_code, resp.json()


def _error(code: int, message: str) -> sqlite3.Error:
    error = sqlite3.OperationalError(message)
    error.sqlite_errorcode = code
    return error


def test_each_kind_of_fault_is_said_once_until_the_catalog_works(tmp_path, caplog):
    path = tmp_path / 'catalog.sqlite3'
    faults = Faults(path)
    errors = [
        _error(sqlite3.SQLITE_READONLY, 'attempt to write a readonly database'),
        _error(sqlite3.SQLITE_READONLY_DBMOVED, 'attempt to write a readonly database'),
        _error(sqlite3.SQLITE_IOERR_WRITE, 'disk I/O error'),
        _error(sqlite3.SQLITE_NOTADB, 'file is not a database'),
        _error(sqlite3.SQLITE_FULL, 'database or disk is full'),
        _error(sqlite3.SQLITE_BUSY, 'database is locked'),
    ]
    for error in errors:
        faults.failed(error)
    faults.worked()
    faults.worked()
    faults.failed(errors[0])

    assert _said(caplog) == [
        f'the catalog {path} cannot be written (attempt to write a readonly '
        'database): uploads and deletes answer 503 until it can; make it writable '
        'again',
        f'the catalog {path} fails (disk I/O error): what needs it answers 503 '
        'until it works again',
        f'the catalog {path} is damaged (file is not a database): stop the '
        f'service, move {tmp_path} away and start it again; the new catalog '
        'lists the image files it finds, and delete tokens stay good',
        f'the catalog {path} works again',
        f'the catalog {path} cannot be written (attempt to write a readonly '
        'database): uploads and deletes answer 503 until it can; make it writable '
        'again',
    ]


def _replaced(catalog: SqliteCatalog, tmp_path) -> None:
    """Put a copy of a catalog's database in its place, as a restore would."""
    copy = tmp_path / 'copy.sqlite3'
    shutil.copy(catalog.path, copy)
    copy.replace(catalog.path)


async def test_reads_that_meet_a_replaced_catalog_together_open_it_once(
    storage_path, tmp_path
):
    catalog = SqliteCatalog(pathlib.Path(storage_path))
    try:
        await catalog.open()
        _replaced(catalog, tmp_path)
        pages = await asyncio.gather(*(catalog.page(0, 10) for _ in range(3)))
        snapshot_read = await catalog.snapshot()
        await catalog.close_snapshot(snapshot_read)
        _replaced(catalog, tmp_path)
        # Met by the snapshot's own check: opened once more, and read.
        snapshot = await catalog.snapshot()
        count = snapshot.count
        await catalog.close_snapshot(snapshot)
    finally:
        await catalog.close()
        catalog.shutdown()

    assert [page.records for page in pages] == [[], [], []]
    assert count == 0


async def test_the_change_token_is_none_once_the_files_moved(storage_path):
    clock = FakeClock()
    catalog = SqliteCatalog(pathlib.Path(storage_path), clock=clock)
    try:
        await catalog.open()
        before = catalog.token()
        (catalog.path.parent / (DATABASE_NAME + '-shm')).unlink()
        still = catalog.token()
        clock.advance(0.1)
        moved = [catalog.token(), catalog.token()]
    finally:
        await catalog.close()
        catalog.shutdown()

    # Looked at once an interval: nothing kept in memory is trusted after.
    assert before is not None
    assert still == before
    assert moved == [None, None]


@pytest.mark.live
async def test_a_removed_wal_loses_nothing_it_held(tmp_path, live_redis):
    storage = tmp_path / 'images'
    service = Service(storage, live_redis)
    try:
        workers = await service.two_workers()
        body = encode(gradient(), 'PNG')
        created = [_upload(service.url, body) for _ in range(5)]
        # What they committed is in the WAL alone (no checkpoint yet).
        (_catalog(storage) / (DATABASE_NAME + '-wal')).unlink()
        seen = [_list(service.url) for _ in range(10)]
        await _restart_one(service, workers)
        created += [_upload(service.url, body) for _ in range(5)]
        lists = [_list(service.url) for _ in range(10)]
    finally:
        servers.stop(service.process)

    assert all(status == 201 for status, _ in created)
    ids = [image['id'] for _, image in created]
    assert {len(listed) for listed in seen} == {5}
    assert {tuple(image['id'] for image in listed) for listed in lists} == {tuple(ids)}


async def test_what_a_removed_wal_held_is_kept(storage_path):
    catalog = SqliteCatalog(pathlib.Path(storage_path))
    try:
        await catalog.open()
        await catalog.keep_setting('kept', 'in the WAL')
        catalog.path.with_name(DATABASE_NAME + '-wal').unlink()
        kept = await catalog.setting('kept')
        await catalog.keep_setting('after', 'in a new WAL')
    finally:
        await catalog.close()
        catalog.shutdown()
    with contextlib.closing(sqlite3.connect(catalog.path)) as connection:
        settings = dict(connection.execute('SELECT name, value FROM settings'))

    assert kept == 'in the WAL'
    assert (settings['kept'], settings['after']) == ('in the WAL', 'in a new WAL')
