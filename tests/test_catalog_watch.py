"""The catalog's change token: the WAL index, SQLite's data_version, or none."""

import pathlib
import sqlite3

import fakeredis
import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.catalog import SqliteCatalog, connections, watch
from asgilook.catalog.identity import Identity

from .fakes import make_config, owner, upload_through


async def test_a_catalog_whose_token_cannot_be_read_keeps_nothing_in_memory(
    config, redis_server
):
    redis = fakeredis.FakeRedis(server=redis_server)
    # No WAL index to map, and no count of SQLite's to read.
    config.change_token_sources = ()
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        listing = [await conductor.simulate_get('/images') for _ in range(2)]
        redis.flushall()
        refetched = await conductor.simulate_get('/images')
        deleted = await conductor.simulate_delete(image['image'], headers=owner(image))
        after = await conductor.simulate_get('/images')

    assert [resp.headers['X-ASGILook-Cache'] for resp in listing] == ['Miss', 'Hit']
    # Nothing was kept in memory: with Redis emptied, the list is computed.
    assert refetched.headers['X-ASGILook-Cache'] == 'Miss'
    assert deleted.status_code == 204
    assert after.json == []


async def test_without_a_wal_index_to_map_workers_still_see_each_others_changes(
    storage_path, redis_server
):
    configs = [make_config(storage_path, redis_server) for _ in range(2)]
    for config in configs:
        config.change_token_sources = (watch.DATA_VERSION,)
    async with (
        falcon.testing.ASGIConductor(create_served_app(configs[0])) as first,
        falcon.testing.ASGIConductor(create_served_app(configs[1])) as second,
    ):
        image = await upload_through(first)
        seen = [await second.simulate_get(image['image']) for _ in range(2)]
        assert (
            await first.simulate_delete(image['image'], headers=owner(image))
        ).status_code == 204
        gone = await second.simulate_get(image['image'])
        listing = await second.simulate_get('/images')

    assert [resp.headers['X-ASGILook-Cache'] for resp in seen] == ['Miss', 'Hit']
    assert gone.status_code == 404
    assert listing.json == []


def test_a_catalog_not_yet_open_has_no_token(storage_path):
    assert SqliteCatalog(pathlib.Path(storage_path)).token() is None


class _Connection:
    """A connection whose first answers are SQLite's errors."""

    def __init__(self, *errors):
        self.errors = list(errors)
        self.statements = []

    def execute(self, statement):
        self.statements.append(statement)
        if self.errors:
            raise self.errors.pop(0)
        return self

    def fetchone(self):
        return ('delete',)


def _error(code):
    error = sqlite3.OperationalError('database is locked')
    error.sqlite_errorcode = code
    return error


def test_switching_to_wal_waits_while_another_process_switches():
    # Which of several workers making a new catalog at once meets this is
    # chance; what it does when it does is not.
    connection = _Connection(_error(sqlite3.SQLITE_BUSY))
    connections.use_wal(connection, 60.0)

    assert connection.statements[-1] == 'PRAGMA journal_mode = WAL'

    refused = _Connection(_error(sqlite3.SQLITE_READONLY))
    with pytest.raises(sqlite3.OperationalError):
        connections.use_wal(refused, 60.0)


def test_a_database_not_in_wal_mode_has_no_wal_index_to_map(tmp_path):
    path = tmp_path / 'rollback.sqlite3'
    connection = sqlite3.connect(path)
    try:
        assert watch.map_wal_index(connection, path) is None
    finally:
        connection.close()


def test_an_empty_wal_index_is_not_mapped(tmp_path):
    # As a crash may leave it, or another program truncate it: the watch
    # falls back to the next source of tokens.
    path = tmp_path / 'rollback.sqlite3'
    (tmp_path / 'rollback.sqlite3-shm').touch()
    connection = sqlite3.connect(path)
    try:
        assert watch.map_wal_index(connection, path) is None
    finally:
        connection.close()


def test_a_data_version_sqlite_refuses_to_give_is_no_token(tmp_path):
    refusing = _Connection(_error(sqlite3.SQLITE_IOERR))
    (tmp_path / 'catalog.sqlite3').touch()
    files = Identity.of(tmp_path / 'catalog.sqlite3')
    watched = watch.Watch(refusing, None, data_version=True, identity=files)

    assert watched.token() is None
    assert refusing.statements == ['PRAGMA data_version']


async def test_the_token_of_sqlites_data_version_moves_with_anothers_change(
    storage_path,
):
    directory = pathlib.Path(storage_path)
    watching = SqliteCatalog(directory, token_sources=[watch.DATA_VERSION])
    changing = SqliteCatalog(directory)
    await changing.open()
    await watching.open()
    before = [watching.token() for _ in range(2)]
    temporary = directory / 'upload.tmp'
    temporary.write_bytes(b'\xff' * 10)
    await changing.add('0' * 8 + '-0000-4000-8000-' + '0' * 12, (1, 1), 10, temporary)
    after = watching.token()
    for catalog in (watching, changing):
        await catalog.close()
        catalog.shutdown()

    assert before[0] == before[1] is not None
    assert after not in (None, before[0])
