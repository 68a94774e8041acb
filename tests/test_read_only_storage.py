"""Storage that turns read-only while the service runs: 503, and nothing worse."""

import logging
import os
import random
import signal

import falcon.testing
import httpx
import PIL.Image
import pytest

from asgilook.app import create_served_app

from . import servers
from .fakes import owner
from .images import encode, stored_file
from .mounts import read_only, tmpfs, writable
from .service import Service, eventually


@pytest.fixture
def storage(tmp_path):
    with tmpfs(tmp_path / 'images', '16m') as path:
        yield path


@pytest.fixture
async def conductor(config, storage):
    # One lifespan: the storage turns read-only after the service started.
    config.storage_path = storage
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        yield conductor


def noise(size) -> bytes:
    """A PNG that does not compress: over a MiB, so its upload is spooled."""
    pixels = random.Random(str(size)).randbytes(size[0] * size[1] * 3)
    return encode(PIL.Image.frombytes('RGB', size, pixels), 'PNG')


@pytest.mark.parametrize(
    ('size', 'where'), [((64, 48), 'in memory'), ((800, 600), 'spooled to disk')]
)
async def test_an_upload_to_read_only_storage_is_503(conductor, storage, size, where):
    body = noise(size)
    assert (len(body) > 1024 * 1024) == (where == 'spooled to disk')
    read_only(storage)

    resp = await conductor.simulate_post('/images', body=body)

    assert resp.status_code == 503
    assert resp.json['title'] == 'Storage unavailable'
    assert resp.headers['retry-after'] == '60'
    assert (await conductor.simulate_get('/images')).json == []


async def test_delete_on_read_only_storage_is_503_and_keeps_the_image(
    conductor, storage
):
    image = (await conductor.simulate_post('/images', body=noise((64, 48)))).json
    read_only(storage)

    resp = await conductor.simulate_delete(image['image'], headers=owner(image))

    assert resp.status_code == 503
    assert resp.json['title'] == 'Storage unavailable'
    assert (await conductor.simulate_get(image['image'])).status_code == 200
    listed = (await conductor.simulate_get('/images')).json
    assert [item['id'] for item in listed] == [image['id']]

    writable(storage)
    assert (
        await conductor.simulate_delete(image['image'], headers=owner(image))
    ).status_code == 204
    assert (await conductor.simulate_get(image['image'])).status_code == 404


async def test_an_image_whose_file_is_gone_from_read_only_storage_is_said_to_stay(
    conductor, storage, caplog
):
    caplog.set_level(logging.WARNING, logger='asgilook')
    image = (await conductor.simulate_post('/images', body=noise((64, 48)))).json
    image.pop('delete_token')
    stored_file(storage, image['id']).unlink()
    read_only(storage)

    gone = await conductor.simulate_get(image['image'])
    still = await conductor.simulate_get('/images')
    writable(storage)
    again = await conductor.simulate_get(image['image'])
    listing = await conductor.simulate_get('/images')

    assert (gone.status_code, again.status_code) == (404, 404)
    assert still.json == [image]
    assert listing.json == []
    messages = [r.getMessage() for r in caplog.records if r.name == 'asgilook.store']
    assert messages == [
        f'image {image["id"]} stays listed though its file is gone from {storage}: '
        'its storage cannot be written to unlist it now; the first request for it '
        'once it can be written unlists it, as does python -m asgilook reindex',
        f'unlisted image {image["id"]}: its file is gone from {storage}',
    ]


@pytest.mark.live
async def test_a_worker_started_again_on_read_only_storage_stops_no_other(
    storage, live_redis, tmp_path
):
    log_path = tmp_path / 'uvicorn.log'
    service = _logging_to(log_path, storage, live_redis)
    try:
        workers = await service.two_workers()
        # Both started: each listens from its fork on, before its start.
        await eventually(lambda: _started(log_path) == 2)
        image = _upload(service.url)
        read_only(storage)
        os.kill(workers[0], signal.SIGKILL)
        await eventually(lambda: b'this one takes no request' in log_path.read_bytes())
        # Every read is answered by the worker that serves: the new one
        # takes no connection until it starts.
        while_read_only = [_status(f'{service.url}{image["image"]}') for _ in range(20)]
        alive = service.process.poll() is None
        writable(storage)
        # At its next try (every 5 s), the new worker serves too.
        await eventually(lambda: b'started at last' in log_path.read_bytes(), wait=15)
        uploaded = [_upload(service.url) for _ in range(4)]
    finally:
        servers.stop(service.process)

    assert alive
    assert while_read_only == [200] * 20
    assert all(image['id'] for image in uploaded)


def _logging_to(log_path, storage, redis_url) -> Service:
    """uvicorn --workers 2, its log in a file the test can read as it runs."""
    with open(log_path, 'wb') as log:
        return Service(storage, redis_url, stderr=log)


def _started(log_path) -> int:
    """How many workers said their start is complete."""
    return log_path.read_bytes().count(b'Application startup complete.')


def _status(url: str) -> int:
    return httpx.get(url).status_code


def _upload(url: str) -> dict:
    resp = httpx.post(f'{url}/images', content=noise((64, 48)))
    assert resp.status_code == 201
    return resp.json()
