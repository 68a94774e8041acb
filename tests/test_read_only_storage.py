"""Storage that turns read-only while the service runs: 503, and nothing worse."""

import os

import falcon.testing
import PIL.Image
import pytest

from asgilook.app import create_app

from .fakes import owner
from .images import encode
from .mounts import read_only, tmpfs, writable


@pytest.fixture
def storage(tmp_path):
    with tmpfs(tmp_path / 'images', '16m') as path:
        yield path


@pytest.fixture
async def conductor(config, storage):
    # One lifespan: the storage turns read-only after the service started.
    config.storage_path = storage
    async with falcon.testing.ASGIConductor(create_app(config)) as conductor:
        yield conductor


def noise(size) -> bytes:
    """A PNG that does not compress: over a MiB, so its upload is spooled."""
    pixels = os.urandom(size[0] * size[1] * 3)
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
