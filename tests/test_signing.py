"""The service key: ASGI_LOOK_SECRET, or one made once in the storage directory."""

import asyncio
import os
import stat

import pytest

from asgilook.errors import ServiceKeyError
from asgilook.files import TEMPORARY_DIRECTORY
from asgilook.signing import KEY_FILE_NAME, ServiceKey

from .fakes import make_config, two_workers, upload_through


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
    # The key file, and no file half written or left behind.
    assert sorted(os.listdir(storage_path)) == [TEMPORARY_DIRECTORY, KEY_FILE_NAME]
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
