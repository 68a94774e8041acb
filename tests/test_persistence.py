"""Images outlive the process, are shared by every worker, and can be deleted."""

import asyncio
import logging
import os
import pathlib
import threading
import uuid

import fakeredis
import falcon
import falcon.testing
import pytest

from asgilook import catalog
from asgilook.app import create_app

from .fakes import make_config, upload_through
from .images import decode, encode, gradient, image_files, stored_file

HOUR_AGO = 3600
scan = catalog._scan


def worker(storage_path, redis_server):
    """An app as one worker process runs it: its own memory, shared disk and Redis."""
    return falcon.testing.TestClient(
        create_app(make_config(storage_path, redis_server))
    )


@pytest.fixture
def workers(storage_path, redis_server):
    return worker(storage_path, redis_server), worker(storage_path, redis_server)


def upload(client, size=(320, 200)):
    resp = client.simulate_post('/images', body=encode(gradient(size), 'PNG'))
    assert resp.status_code == 201
    return resp.json


def age_directory(path, seconds=HOUR_AGO):
    """Date the storage directory back, as if nothing had changed for a while."""
    stat = os.stat(path)
    past = stat.st_mtime_ns - seconds * 10**9
    os.utime(path, ns=(past, past))
    return past


def test_an_upload_through_one_worker_is_served_by_the_other(workers):
    one, other = workers
    assert other.simulate_get('/images').json == []

    image = upload(one)

    listing = other.simulate_get('/images')
    assert listing.headers['X-ASGILook-Cache'] == 'Miss'
    assert listing.json == [image]
    assert other.simulate_get(image['image']).status_code == 200
    for uri in image['thumbnails']:
        assert other.simulate_get(uri).status_code == 200


@pytest.mark.parametrize('cached_first', [False, True])
def test_a_delete_through_one_worker_is_seen_by_the_other(workers, cached_first):
    one, other = workers
    kept, deleted = upload(one), upload(one)
    if cached_first:
        for uri in ['/images', deleted['image'], *deleted['thumbnails']]:
            other.simulate_get(uri)
            assert other.simulate_get(uri).headers['X-ASGILook-Cache'] == 'Hit'

    assert one.simulate_delete(deleted['image']).status_code == 204

    assert other.simulate_get('/images').json == [kept]
    for uri in [deleted['image'], *deleted['thumbnails']]:
        assert other.simulate_get(uri).status_code == 404
    assert other.simulate_delete(deleted['image']).status_code == 404
    assert other.simulate_get(kept['image']).status_code == 200


def test_a_change_is_seen_even_after_a_long_quiet_spell(workers, storage_path):
    one, other = workers
    first = upload(one)
    age_directory(storage_path)
    assert other.simulate_get('/images').json == [first]

    second = upload(one)

    assert other.simulate_get('/images').json == [first, second]


def test_a_restart_lists_the_same_images(storage_path):
    before = worker(storage_path, fakeredis.FakeServer())
    images = [upload(before, size) for size in [(320, 200), (64, 64), (500, 90)]]
    assert before.simulate_delete(images[1]['image']).status_code == 204
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

    resp = client.simulate_delete(image['image'])

    assert resp.status_code == 204
    assert resp.content == b''
    assert image_files(storage_path) == []
    assert redis.keys('asgilook:*') == []
    assert client.simulate_get('/images').json == []
    again = client.simulate_delete(image['image'])
    assert again.status_code == 404
    assert again.json['title'] == 'No such image'


def test_delete_of_an_unknown_image_is_404(client):
    resp = client.simulate_delete('/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg')

    assert resp.status_code == 404
    assert resp.json['title'] == 'No such image'


def test_an_id_uploaded_again_replaces_its_image(storage_path, redis_server):
    def same_id():
        return '36562622-48e5-4a61-be67-e426b11821ed'

    config = make_config(storage_path, redis_server)
    config.uuid_generator = same_id
    client = falcon.testing.TestClient(create_app(config))
    upload(client, (320, 200))

    image = upload(client, (64, 48))

    assert client.simulate_get('/images').json == [image]
    assert len(image_files(storage_path)) == 1


def test_the_same_picture_uploaded_again_under_its_id_is_one_image(
    storage_path, redis_server
):
    config = make_config(storage_path, redis_server)
    config.uuid_generator = lambda: '36562622-48e5-4a61-be67-e426b11821ed'
    client = falcon.testing.TestClient(create_app(config))

    first = upload(client, (320, 200))
    again = upload(client, (320, 200))

    assert client.simulate_get('/images').json == [again]
    assert len(image_files(storage_path)) == 1
    assert falcon.http_date_to_dt(again['modified']) >= falcon.http_date_to_dt(
        first['modified']
    )


@pytest.mark.parametrize('method', ['GET image', 'GET thumbnail', 'DELETE'])
async def test_a_file_gone_behind_the_catalogs_back_is_404(config, method):
    async with falcon.testing.ASGIConductor(create_app(config)) as conductor:
        image = await upload_through(conductor)
        # The directory has been quiet for an hour: the catalog trusts what it read.
        past = age_directory(config.storage_path)
        assert (await conductor.simulate_get('/images')).json == [image]
        # Removed in the same tick of the directory's clock as the last change:
        # the directory looks unchanged, yet the file is gone.
        stored_file(config.storage_path, image['id']).unlink()
        os.utime(config.storage_path, ns=(past, past))
        assert (await conductor.simulate_get('/images')).json == [image]

        if method == 'DELETE':
            resp = await conductor.simulate_delete(image['image'])
        else:
            uri = image['image'] if method == 'GET image' else image['thumbnails'][0]
            resp = await conductor.simulate_get(uri)

    assert resp.status_code == 404
    assert resp.json['title'] == 'No such image'


def copy_in_by_hand(storage_path, image) -> str:
    """Put a copy of a stored image in the directory, as an operator would.

    A hard link: its upload moment is the original's, so the two are listed
    in the order of their ids.
    """
    stored = stored_file(storage_path, image['id'])
    image_id = str(uuid.uuid4())
    os.link(stored, stored.with_name(stored.name.replace(image['id'], image_id)))
    return image_id


async def test_concurrent_requests_read_a_changed_directory_once(config, monkeypatch):
    scans = []
    monkeypatch.setattr(catalog, '_scan', lambda path: scans.append(path) or scan(path))
    # Look at the directory on every request, not once a second.
    monkeypatch.setattr(catalog, 'RECHECK_SECONDS', 0)
    async with falcon.testing.ASGIConductor(create_app(config)) as conductor:
        image = await upload_through(conductor)
        age_directory(config.storage_path)
        scans.clear()
        copy = copy_in_by_hand(config.storage_path, image)
        # Long enough ago that one reading is to be trusted.
        age_directory(config.storage_path, HOUR_AGO // 2)

        listings = await asyncio.gather(
            *(conductor.simulate_get('/images') for _ in range(8))
        )

    assert [[item['id'] for item in resp.json] for resp in listings] == [
        sorted([image['id'], copy])
    ] * 8
    assert len(scans) == 1


async def test_a_change_made_while_the_directory_is_read_is_seen(config, monkeypatch):
    first_scan_began, first_scan_may_end = threading.Event(), threading.Event()
    held_until_released = []

    def slow_first_scan(path):
        if not first_scan_began.is_set():
            first_scan_began.set()
            held_until_released.append(first_scan_may_end.wait(5))
        return scan(path)

    monkeypatch.setattr(catalog, 'RECHECK_SECONDS', 0)
    async with falcon.testing.ASGIConductor(create_app(config)) as conductor:
        image = await upload_through(conductor)
        age_directory(config.storage_path)
        monkeypatch.setattr(catalog, '_scan', slow_first_scan)
        copy_in_by_hand(config.storage_path, image)
        early = asyncio.create_task(conductor.simulate_get('/images'))
        assert await asyncio.to_thread(first_scan_began.wait, 5)

        # Copied in while the first request's reading is under way, at a later
        # tick of the directory's clock.
        late_copy = copy_in_by_hand(config.storage_path, image)
        age_directory(config.storage_path, -1)
        late = await conductor.simulate_get('/images')
        first_scan_may_end.set()
        await early
        after = await conductor.simulate_get('/images')

    # The late request was answered from a reading of its own while the first
    # was held, not from the first once it gave up waiting.
    assert held_until_released == [True]

    assert late_copy in [item['id'] for item in late.json]
    assert late_copy in [item['id'] for item in after.json]
    assert len(after.json) == 3


async def test_a_change_by_hand_in_the_tick_of_the_last_is_seen(config, monkeypatch):
    monkeypatch.setattr(catalog, 'RECHECK_SECONDS', 0)
    # The list kept in memory would hide hand-made changes for MEMORY_TTL.
    config.memory_cache_size = 0
    async with falcon.testing.ASGIConductor(create_app(config)) as conductor:
        image = await upload_through(conductor)
        first_copy = copy_in_by_hand(config.storage_path, image)
        tick = os.stat(config.storage_path).st_mtime_ns
        assert len((await conductor.simulate_get('/images')).json) == 2

        second_copy = copy_in_by_hand(config.storage_path, image)
        os.utime(config.storage_path, ns=(tick, tick))
        listing = (await conductor.simulate_get('/images')).json

    assert sorted(item['id'] for item in listing) == sorted(
        [image['id'], first_copy, second_copy]
    )


def _stray_files(storage_path, image):
    stored = stored_file(storage_path, image['id'])
    directory = pathlib.Path(storage_path)
    truncated = stored.name.replace(image['id'], '1a256a8a-2063-46ff-b53f-d04d5bcf5eee')
    (directory / truncated).write_bytes(stored.read_bytes()[:100])
    (directory / '.incoming-0123456789abcdef.tmp').write_bytes(b'\xff\xd8 partial')
    (directory / 'holiday.jpeg').write_bytes(stored.read_bytes())
    (directory / 'notes.txt').write_text('not an image')
    misnamed = directory / 'not-a-uuid.320x200.100.jpeg'
    misnamed.write_bytes(b'x' * 100)
    (directory / 'a5e8a2d3-1c1e-4a55-9a3c-6a1d7b7d1c01.10x10.5.jpeg').mkdir()
    return [
        truncated,
        '.incoming-0123456789abcdef.tmp',
        'holiday.jpeg',
        'notes.txt',
        misnamed.name,
        'a5e8a2d3-1c1e-4a55-9a3c-6a1d7b7d1c01.10x10.5.jpeg',
    ]


def test_files_that_are_not_complete_images_are_ignored_and_reported_once(
    client, storage_path, caplog
):
    image = upload(client)
    strays = _stray_files(storage_path, image)
    caplog.set_level(logging.WARNING, logger='asgilook.catalog')

    restarted = worker(storage_path, fakeredis.FakeServer())
    for _ in range(3):
        assert restarted.simulate_get('/images').json == [image]
    assert (
        restarted.simulate_get(
            '/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg'
        ).status_code
        == 404
    )

    messages = [record.getMessage() for record in caplog.records]
    for name in strays:
        assert len([m for m in messages if m.startswith(f'ignoring {name} ')]) == 1
    assert any('damaged' in m for m in messages if m.startswith('ignoring 1a256a8a'))


def test_an_empty_storage_directory_is_an_empty_catalog(client, storage_path):
    assert image_files(storage_path) == []

    assert client.simulate_get('/images').json == []


def test_a_storage_path_that_cannot_hold_files_fails_start_up(tmp_path):
    blocker = tmp_path / 'a-file'
    blocker.write_text('in the way')
    app = create_app(make_config(blocker / 'images'))

    async def start():
        async with falcon.testing.ASGIConductor(app):
            pass  # pragma: no cover (start-up fails before this runs)

    with pytest.raises(RuntimeError) as failure:
        falcon.async_to_sync(start)

    assert str(blocker / 'images') in str(failure.value)
    assert 'ASGI_LOOK_STORAGE_PATH' in str(failure.value)
