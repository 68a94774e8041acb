"""A reindex while workers change the catalog: it holds no lock as it reads."""

import collections
import contextlib
import dataclasses
import logging
import os
import pathlib
import sqlite3
import uuid

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.catalog import CATALOG_DIRECTORY, DATABASE_NAME, SqliteCatalog, reindex
from asgilook.catalog.record import file_name
from asgilook.limits import CatalogLimits
from asgilook.serving import launcher

from .directories import dead_pid, listed, started
from .fakes import make_config, owner, upload_through
from .images import stored_file

# Files copied in by hand, and how many a batch of the reindex applies.
FILES = 2000
BATCH = 500


@pytest.fixture
def given_ids():
    """Ids the next uploads of the worker take, before new ones."""
    return collections.deque()


@pytest.fixture
async def worker(storage_path, given_ids):
    """A worker over the storage directory, as another process would be."""
    config = make_config(storage_path)
    config.uuid_generator = lambda: (
        uuid.UUID(given_ids.popleft()) if given_ids else uuid.uuid4()
    )
    # An upload that waited for a lock the reindex held would fail (503).
    config.catalog_limits = dataclasses.replace(config.catalog_limits, write_wait=2.0)
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        yield conductor


def copy_in(storage_path, data: bytes, count: int) -> list[str]:
    """Copy a JPEG into the storage directory under count new ids; their names.

    Each is dated a second apart, in an order that is not that of their ids.
    """
    names = []
    for second in range(count):
        name = file_name(str(uuid.uuid4()), (320, 200), len(data))
        path = pathlib.Path(storage_path) / name
        path.write_bytes(data)
        moment = (1_700_000_000 + (second * 7919) % count) * 10**9
        os.utime(path, ns=(moment, moment))
        names.append(name)
    return names


def database(storage_path) -> pathlib.Path:
    return pathlib.Path(storage_path) / CATALOG_DIRECTORY / DATABASE_NAME


def id_of(name: str) -> str:
    return name.split('.')[0]


def modified_ns(storage_path, name: str) -> int:
    return (pathlib.Path(storage_path) / name).stat().st_mtime_ns


async def test_uploads_and_deletes_go_on_while_a_reindex_reads_and_lists(
    storage_path, worker, given_ids
):
    kept = await upload_through(worker)
    deleted = await upload_through(worker)
    removed = await upload_through(worker)
    data = stored_file(storage_path, kept['id']).read_bytes()
    copied = copy_in(storage_path, data, FILES)
    times = {name: modified_ns(storage_path, name) for name in copied}
    stored_file(storage_path, removed['id']).unlink()
    uploads = []
    late = []
    doomed = []
    pauses = 0

    async def delete(image):
        resp = await worker.simulate_delete(image['image'], headers=owner(image))
        assert resp.status_code == 204

    async def pause():
        nonlocal pauses
        pauses += 1
        if pauses == 1:
            # The directory is read: what changes now, it has not seen.
            await delete(deleted)
            late.extend(copy_in(storage_path, data, 1))
            doomed.append(await upload_through(worker, (64, 48)))
        elif pauses == 2:
            # The files are checked: one is removed by hand, one's id is
            # stored again, and an upload made since the reading is deleted.
            (pathlib.Path(storage_path) / copied[0]).unlink()
            given_ids.append(id_of(copied[1]))
            await delete(doomed[0])
        uploads.append(await upload_through(worker, (64, 48)))

    catalog = SqliteCatalog(
        pathlib.Path(storage_path), CatalogLimits(reindex_batch=BATCH)
    )
    try:
        report = await reindex.reindex(catalog, pause=pause)
    finally:
        await catalog.close()
        catalog.shutdown()
    images = await listed(worker)
    ids = [image['id'] for image in images]
    async with started(storage_path) as restarted:
        after_restart = [image['id'] for image in await listed(restarted)]

    # After the reading; before the batch of rows to remove, and before each
    # batch of files to list.
    assert pauses == 2 + FILES // BATCH
    # The files are listed oldest first, each batch after the upload made
    # before it; one removed by hand, one whose id was stored again, never.
    order = sorted(copied, key=times.__getitem__)
    batches = [
        [id_of(name) for name in order[start : start + BATCH] if name not in copied[:2]]
        for start in range(0, FILES, BATCH)
    ]
    expected = [kept['id'], uploads[0]['id'], uploads[1]['id']]
    for upload, batch in zip(uploads[2:], batches, strict=True):
        expected += [upload['id'], *batch]
    assert ids == expected
    assert id_of(copied[1]) == uploads[1]['id']
    assert report.removed == [removed['id']]
    assert report.adopted == FILES - 2
    assert report.ignored == [(copied[1], 'another file of this image is listed')]
    # Its own reading began before the late copy: the next start reads again.
    assert after_restart == [*ids, id_of(late[0])]


class WriteWhenLogged(logging.Handler):
    """A write of the catalog by another process, tried when a line is logged.

    In the thread that logs it: a reindex's, as it reads the directory.
    """

    def __init__(self, database: pathlib.Path) -> None:
        super().__init__()
        self._database = database
        self.answers: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        writer = sqlite3.connect(self._database, timeout=0, isolation_level=None)
        try:
            writer.execute('BEGIN IMMEDIATE')
            writer.execute('ROLLBACK')
            self.answers.append('written')
        except sqlite3.OperationalError as ex:
            self.answers.append(str(ex))
        finally:
            writer.close()


async def test_another_process_writes_the_catalog_while_a_reindex_reads_files(
    storage_path,
):
    async with started(storage_path) as worker:
        await upload_through(worker)
    # An upload of asgilook 0.2 that was killed: its file is removed, and the
    # removal logged, as the reindex reads the directory.
    leftover = f'.incoming-{dead_pid()}-{uuid.uuid4().hex}.tmp'
    (pathlib.Path(storage_path) / leftover).write_bytes(b'\xff\xd8 partial')
    probe = WriteWhenLogged(
        pathlib.Path(storage_path) / CATALOG_DIRECTORY / DATABASE_NAME
    )
    logger = logging.getLogger('asgilook.files')
    logger.addHandler(probe)
    catalog = SqliteCatalog(pathlib.Path(storage_path))
    try:
        await reindex.reindex(catalog)
    finally:
        logger.removeHandler(probe)
        await catalog.close()
        catalog.shutdown()

    assert probe.answers == ['written']


def test_the_reindex_command_of_a_damaged_catalog_fails_with_a_message(
    storage_path, monkeypatch, caplog
):
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', str(storage_path))
    assert launcher.main(['reindex']) == 0
    with contextlib.closing(sqlite3.connect(database(storage_path))) as connection:
        (page,) = connection.execute(
            "SELECT rootpage FROM sqlite_master WHERE name = 'images'"
        ).fetchone()
        (size,) = connection.execute('PRAGMA page_size').fetchone()
    with open(database(storage_path), 'r+b') as damaged:
        damaged.seek((page - 1) * size)
        damaged.write(b'\xff' * size)

    assert launcher.main(['reindex']) == 1

    assert caplog.messages[-1] == (
        f'cannot reindex {storage_path}: database disk image is malformed'
    )
