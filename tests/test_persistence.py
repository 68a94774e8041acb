"""Images outlive the process, are shared by every worker, and can be deleted."""

import fakeredis
import falcon
import falcon.testing
import httpx
import pytest

from asgilook.app import create_served_app
from asgilook.storage.files import StoredFile

from . import servers
from .fakes import as_listed, make_config, owner, two_workers, upload_through
from .images import decode, encode, gradient, image_files, stored_file


def worker(storage_path, redis_server):
    """An app as one worker process runs it: its own memory, shared disk and Redis."""
    return falcon.testing.TestClient(
        create_served_app(make_config(storage_path, redis_server))
    )


def upload(client, size=(320, 200)):
    resp = client.simulate_post('/images', body=encode(gradient(size), 'PNG'))
    assert resp.status_code == 201
    return as_listed(resp.json)


@pytest.fixture
async def workers(storage_path, redis_server):
    async with two_workers(storage_path, redis_server) as workers:
        yield workers


async def test_an_upload_through_one_worker_is_served_by_the_other(workers):
    one, other = workers
    for uri in ['/images', '/images?limit=10']:
        for _ in range(2):
            assert (await other.simulate_get(uri)).json == []

    image = await upload_through(one)

    for uri in ['/images', '/images?limit=10']:
        listing = await other.simulate_get(uri)
        assert listing.headers['X-ASGILook-Cache'] == 'Miss'
        assert listing.json == [image]
    assert (await other.simulate_get(image['image'])).status_code == 200
    for uri in image['thumbnails']:
        assert (await other.simulate_get(uri)).status_code == 200


@pytest.mark.parametrize('cached_first', [False, True])
async def test_a_delete_through_one_worker_is_seen_by_the_other(
    workers, redis_server, cached_first
):
    one, other = workers
    kept, deleted = await upload_through(one), await upload_through(one)
    uris = ['/images', '/images?limit=1', deleted['image'], *deleted['thumbnails']]
    if cached_first:
        for uri in uris:
            await other.simulate_get(uri)
            assert (await other.simulate_get(uri)).headers['X-ASGILook-Cache'] == 'Hit'
        # Without Redis's copies, the Hits come from the worker's memory.
        await fakeredis.FakeAsyncRedis(server=redis_server).flushall()
        for uri in uris:
            assert (await other.simulate_get(uri)).headers['X-ASGILook-Cache'] == 'Hit'

    assert (
        await one.simulate_delete(deleted['image'], headers=owner(deleted))
    ).status_code == 204

    assert (await other.simulate_get('/images')).json == [kept]
    assert (await other.simulate_get('/images?limit=1')).json == [kept]
    for uri in [deleted['image'], *deleted['thumbnails']]:
        resp = await other.simulate_get(uri)
        assert resp.status_code == 404
        assert 'X-ASGILook-Cache' not in resp.headers or (
            resp.headers['X-ASGILook-Cache'] != 'Hit'
        )
    assert (
        await other.simulate_delete(deleted['image'], headers=owner(deleted))
    ).status_code == 404
    assert (await other.simulate_get(kept['image'])).status_code == 200


def test_a_restart_lists_the_same_images(storage_path):
    before = worker(storage_path, fakeredis.FakeServer())
    images = [upload(before, size) for size in [(320, 200), (64, 64), (500, 90)]]
    assert (
        before.simulate_delete(images[1]['image'], headers=owner(images[1])).status_code
        == 204
    )
    survivors = [images[0], images[2]]

    after = worker(storage_path, fakeredis.FakeServer())

    assert after.simulate_get('/images').json == survivors
    for image in survivors:
        picture = decode(after.simulate_get(image['image']).content)
        assert list(picture.size) == image['size']


def test_delete(client, redis_server, storage_path):
    image = upload(client)
    for uri in ['/images', image['image'], *image['thumbnails']]:
        client.simulate_get(uri)
    redis = fakeredis.FakeRedis(server=redis_server)
    assert len(redis.keys('asgilook:*')) == 2 + len(image['thumbnails'])

    resp = client.simulate_delete(image['image'], headers=owner(image))

    assert resp.status_code == 204
    assert resp.content == b''
    assert image_files(storage_path) == []
    assert redis.keys('asgilook:*') == []
    assert client.simulate_get('/images').json == []
    again = client.simulate_delete(image['image'], headers=owner(image))
    assert again.status_code == 404
    assert again.json['title'] == 'No such image'


@pytest.mark.parametrize('method', ['GET image', 'GET thumbnail', 'DELETE'])
async def test_a_file_gone_behind_the_catalogs_back_is_404(config, method):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        assert (await conductor.simulate_get('/images')).json == [image]
        stored_file(config.storage_path, image['id']).unlink()

        if method == 'DELETE':
            resp = await conductor.simulate_delete(image['image'], headers=owner(image))
        else:
            uri = image['image'] if method == 'GET image' else image['thumbnails'][0]
            resp = await conductor.simulate_get(uri)
        listing = await conductor.simulate_get('/images')

    assert resp.status_code == 404
    assert resp.json['title'] == 'No such image'
    # Found gone: no longer listed either.
    assert listing.json == []


def test_an_empty_storage_directory_is_an_empty_catalog(client, storage_path):
    assert image_files(storage_path) == []

    assert client.simulate_get('/images').json == []


def test_a_storage_path_that_cannot_hold_files_fails_start_up(tmp_path):
    blocker = tmp_path / 'a-file'
    blocker.write_text('in the way')
    app = create_served_app(make_config(blocker / 'images'))

    async def start():
        async with falcon.testing.ASGIConductor(app):
            pass  # pragma: no cover (start-up fails before this runs)

    with pytest.raises(RuntimeError) as failure:
        falcon.async_to_sync(start)

    assert str(blocker / 'images') in str(failure.value)
    assert 'ASGI_LOOK_STORAGE_PATH' in str(failure.value)


@pytest.mark.live
def test_two_servers_on_one_storage_see_each_others_changes_at_once(
    tmp_path, live_redis
):
    storage = tmp_path / 'images'
    with (
        servers.uvicorn_server(storage, live_redis) as one_url,
        servers.uvicorn_server(storage, live_redis) as other_url,
        httpx.Client(base_url=one_url, timeout=30) as one,
        httpx.Client(base_url=other_url, timeout=30) as other,
    ):
        images = []
        for number in range(5):
            body = encode(gradient((256 + number, 192)), 'PNG')
            images.append(as_listed(one.post('/images', content=body).json()))
            # Listed by the other server as soon as it is answered.
            assert other.get('/images').json() == images
        deleted = images[1]
        uris = ['/images?limit=2', deleted['image'], *deleted['thumbnails']]
        for uri in uris:
            for _ in range(2):
                assert other.get(uri).status_code == 200
            assert other.get(uri).headers['X-ASGILook-Cache'] == 'Hit'
        first = other.get('/images?limit=2')

        assert one.delete(deleted['image'], headers=owner(deleted)).status_code == 204

        for uri in uris[1:]:
            assert other.get(uri).status_code == 404
        page = other.get('/images?limit=2')
        assert page.json() == [images[0], images[2]]
        assert page.headers['ETag'] != first.headers['ETag']
        kept = [image for image in images if image is not deleted]
        assert other.get('/images').json() == kept

    with servers.uvicorn_server(storage, live_redis) as base_url:
        assert httpx.get(f'{base_url}/images').json() == kept


class _SmallChunks(StoredFile):
    CHUNK = 1024


async def test_a_stored_file_streams_in_chunks_as_stored(config, storage_path):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
    path = stored_file(storage_path, image['id'])
    stored = await _SmallChunks.open(path)
    chunks = [chunk async for chunk in stored]
    await stored.close()

    assert len(chunks) > 1
    assert b''.join(chunks) == path.read_bytes()


def test_thumbnails_render_in_threads_without_render_processes(config):
    config.render_processes = 0
    client = falcon.testing.TestClient(create_served_app(config))
    image = upload(client)
    resp = client.simulate_get(image['thumbnails'][0])

    assert resp.status_code == 200
    assert decode(resp.content).size == (160, 100)
