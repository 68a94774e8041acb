"""The service key: ASGI_LOOK_SECRET, or one made once in the storage directory."""

import asyncio
import os
import pathlib
import socket
import stat
import tempfile

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.auth.deletes import DeleteTokens
from asgilook.auth.signing import ServiceKey
from asgilook.catalog import CATALOG_DIRECTORY, reindex
from asgilook.catalog.keys import KEY_FILE_NAME
from asgilook.config import Config
from asgilook.errors import ServiceKeyError
from asgilook.storage.files import TEMPORARY_DIRECTORY

from .fakes import make_config, owner, two_workers, upload_through
from .images import encode, gradient


@pytest.fixture
def unset_secret(monkeypatch):
    monkeypatch.delenv('ASGI_LOOK_SECRET', raising=False)


async def _signatures(configs) -> set[bytes]:
    keys = [ServiceKey(config) for config in configs]
    await asyncio.gather(*(key.load() for key in keys))
    return {key.sign(b'test', b'the same message') for key in keys}


@pytest.mark.usefixtures('unset_secret')
async def test_workers_starting_at_once_make_one_key(storage_path):
    configs = [make_config(storage_path) for _ in range(8)]

    signatures = await _signatures(configs)

    assert len(signatures) == 1
    # The catalog and the copy of its key, and no file half written or left.
    assert sorted(os.listdir(storage_path)) == [
        CATALOG_DIRECTORY,
        TEMPORARY_DIRECTORY,
        KEY_FILE_NAME,
    ]
    assert os.listdir(os.path.join(storage_path, TEMPORARY_DIRECTORY)) == []
    mode = os.stat(os.path.join(storage_path, KEY_FILE_NAME)).st_mode
    assert stat.S_IMODE(mode) == 0o600
    # A later start reads it.
    assert await _signatures([make_config(storage_path)]) == signatures


@pytest.mark.usefixtures('unset_secret')
async def test_two_workers_without_a_secret_share_the_cache(storage_path, redis_server):
    async with two_workers(storage_path, redis_server) as (first, second):
        uri = (await upload_through(first))['thumbnails'][0]
        miss = await first.simulate_get(uri)
        hit = await second.simulate_get(uri)

    assert (miss.headers['X-ASGILook-Cache'], hit.headers['X-ASGILook-Cache']) == (
        'Miss',
        'Hit',
    )
    assert hit.content == miss.content


async def test_with_a_secret_no_key_file_is_made(storage_path, tmp_path):
    configs = [make_config(storage_path), make_config(tmp_path / 'elsewhere')]
    for config in configs:
        config.secret = b'a secret of more than 16 characters'

    signatures = await _signatures(configs)

    assert len(signatures) == 1
    assert KEY_FILE_NAME not in os.listdir(storage_path)
    assert not (tmp_path / 'elsewhere').exists()
    # Another secret, another key.
    configs[0].secret = b'another secret of over 16 characters'
    assert await _signatures(configs[:1]) != signatures


async def test_signatures_tell_purposes_and_parts_apart(config):
    key = ServiceKey(config)
    await key.load()

    signature = key.sign(b'cache', b'ab', b'c')

    assert key.verify(signature, b'cache', b'ab', b'c')
    assert not key.verify(signature, b'delete', b'ab', b'c')
    assert not key.verify(signature, b'cache', b'a', b'bc')
    assert not key.verify(signature, b'cache', b'abc')


def test_a_key_is_loaded_before_use(config):
    with pytest.raises(RuntimeError, match='before load'):
        ServiceKey(config).sign(b'cache', b'data')


@pytest.fixture
def damaged_key(storage_path):
    path = os.path.join(storage_path, KEY_FILE_NAME)
    with open(path, 'w') as damaged:
        damaged.write('short-and-secret')
    return path


@pytest.mark.usefixtures('unset_secret')
async def test_a_damaged_key_file_stops_the_start(storage_path, damaged_key):
    path = damaged_key

    with pytest.raises(ServiceKeyError) as caught:
        await ServiceKey(make_config(storage_path)).load()

    message = str(caught.value)
    assert path in message
    assert 'ASGI_LOOK_SECRET' in message
    assert 'short-and-secret' not in message


@pytest.mark.usefixtures('unset_secret')
async def test_a_storage_path_that_takes_no_file_stops_the_start(tmp_path):
    occupied = tmp_path / 'a-file'
    occupied.write_bytes(b'')

    with pytest.raises(ServiceKeyError, match='ASGI_LOOK_SECRET'):
        await ServiceKey(make_config(occupied)).load()


async def _upload(storage_path, redis_server) -> dict:
    """Upload an image through a worker; its 201 body (with its delete token)."""
    app = create_served_app(make_config(storage_path, redis_server))
    async with falcon.testing.ASGIConductor(app) as conductor:
        created = await conductor.simulate_post(
            '/images', body=encode(gradient(), 'PNG')
        )
    assert created.status_code == 201
    return created.json


async def _delete_through_another_worker(storage_path, redis_server, image) -> int:
    """The status of a DELETE of image by its owner, through a worker started now."""
    app = create_served_app(make_config(storage_path, redis_server))
    async with falcon.testing.ASGIConductor(app) as conductor:
        resp = await conductor.simulate_delete(image['image'], headers=owner(image))
    return resp.status_code


def _key_file(storage_path) -> pathlib.Path:
    return pathlib.Path(storage_path) / KEY_FILE_NAME


def _link_to_zeros(path: pathlib.Path) -> None:
    path.unlink()
    path.symlink_to('/dev/zero')


def _fifo(path: pathlib.Path) -> None:
    path.unlink()
    os.mkfifo(path)


def _socket(path: pathlib.Path) -> None:
    path.unlink()
    # A socket's path is short (108 bytes): bound elsewhere, moved into place.
    with (
        tempfile.TemporaryDirectory() as short,
        socket.socket(socket.AF_UNIX) as listening,
    ):
        listening.bind(os.path.join(short, 'key'))
        os.rename(os.path.join(short, 'key'), path)


def _link_to_a_key(path: pathlib.Path) -> None:
    path.unlink()
    path.with_name('elsewhere').write_text('f' * 64)
    path.symlink_to(path.with_name('elsewhere'))


@pytest.mark.usefixtures('unset_secret')
@pytest.mark.parametrize(
    ('change', 'why'),
    [
        (lambda path: path.unlink(), 'was missing'),
        (lambda path: path.write_text('short-and-secret'), 'was damaged'),
        (lambda path: path.write_text('f' * 64), 'held another key'),
        (lambda path: path.write_bytes(b'f' * 2**20), 'was damaged'),
        (_link_to_zeros, 'was damaged'),
        (_fifo, 'was damaged'),
        (_socket, 'was damaged'),
        (_link_to_a_key, 'was damaged'),
    ],
    ids=[
        'removed',
        'damaged',
        'replaced',
        'a-megabyte',
        'a-link-to-zeros',
        'a-fifo',
        'a-socket',
        'a-link-to-a-key',
    ],
)
async def test_a_key_file_changed_by_hand_never_changes_the_key(
    storage_path, redis_server, caplog, change, why
):
    image = await _upload(storage_path, redis_server)
    kept = _key_file(storage_path).read_bytes()
    change(_key_file(storage_path))

    # A worker started now (one restarted, say) signs as the others do.
    status = await _delete_through_another_worker(storage_path, redis_server, image)

    assert status == 204
    # A regular file again, whatever stood in its place.
    assert stat.S_ISREG(_key_file(storage_path).lstat().st_mode)
    assert _key_file(storage_path).read_bytes() == kept
    assert stat.S_IMODE(_key_file(storage_path).stat().st_mode) == 0o600
    [warning] = [r for r in caplog.records if r.name == 'asgilook.signing']
    assert warning.getMessage() == (
        f'{_key_file(storage_path)} {why}: it was written again from the '
        'catalog, whose key every worker signs with (set ASGI_LOOK_SECRET to '
        'sign with another)'
    )


@pytest.mark.usefixtures('unset_secret')
async def test_reindex_never_makes_another_key(storage_path, redis_server, monkeypatch):
    image = await _upload(storage_path, redis_server)
    _key_file(storage_path).unlink()
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', str(storage_path))

    assert await asyncio.to_thread(reindex.run, Config()) == 0
    assert (
        await _delete_through_another_worker(storage_path, redis_server, image) == 204
    )


@pytest.mark.usefixtures('unset_secret')
async def test_the_key_of_a_directory_of_0_8_is_taken_into_its_catalog(
    storage_path, redis_server
):
    # 0.8 kept the key in this file alone; its tokens stay good.
    secret = b'a' * 64
    _key_file(storage_path).write_bytes(secret + b'\n')
    key = ServiceKey(make_config(storage_path))
    await key.load()
    image = await _upload(storage_path, redis_server)
    issued = await DeleteTokens(key).issue(image['id'])

    assert image['delete_token'] == issued
    assert _key_file(storage_path).read_bytes() == secret + b'\n'


@pytest.mark.usefixtures('unset_secret')
async def test_a_copy_of_the_key_that_cannot_be_read_stops_the_start(storage_path):
    _key_file(storage_path).mkdir()

    with pytest.raises(ServiceKeyError) as caught:
        await ServiceKey(make_config(storage_path)).load()

    assert str(caught.value).startswith(
        f'cannot read the service key {_key_file(storage_path)} (or set '
        'ASGI_LOOK_SECRET): '
    )


@pytest.mark.usefixtures('unset_secret')
async def test_a_copy_of_the_key_that_cannot_be_written_stops_the_start(
    storage_path,
):
    # Where the copy is written first, a file: nothing can be made there.
    (pathlib.Path(storage_path) / TEMPORARY_DIRECTORY).write_bytes(b'')

    with pytest.raises(ServiceKeyError) as caught:
        await ServiceKey(make_config(storage_path)).load()

    assert str(caught.value).startswith(
        f'cannot write the service key {_key_file(storage_path)} (or set '
        'ASGI_LOOK_SECRET): '
    )
    assert not _key_file(storage_path).exists()
