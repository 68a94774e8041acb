"""Storage that fails or lies: a full disk, mislabelled files, leftovers."""

import falcon.testing
import httpx
import pytest

from asgilook.app import create_served_app

from . import servers
from .disks import SECRET, Disk, config_over, put_image
from .fakes import as_listed, owner, two_workers, upload_through
from .images import decode, encode, gradient, image_files
from .mounts import tmpfs


@pytest.fixture
def disk(tmp_path):
    # Fails, not skips, where no tmpfs can be mounted.
    with tmpfs(tmp_path / 'disk', '2m') as mount:
        yield Disk(mount)


async def test_a_full_disk_is_507_and_what_it_holds_is_still_served(disk):
    kept = put_image(disk.storage)
    async with falcon.testing.ASGIConductor(
        create_served_app(config_over(disk.storage))
    ) as conductor:
        # The catalog is open (its files made) before the disk fills.
        disk.fill()
        listing = await conductor.simulate_get('/images')
        (image,) = listing.json
        picture = await conductor.simulate_get(image['image'])
        thumbnail = await conductor.simulate_get(image['thumbnails'][0])
        full = await conductor.simulate_post(
            '/images', body=encode(gradient((64, 48)), 'PNG')
        )
        again = await conductor.simulate_get('/images')

        disk.empty()
        added = await upload_through(conductor, (64, 48))
        after = await conductor.simulate_get('/images')

    assert listing.status_code == 200
    assert image['id'] == kept
    assert (picture.status_code, decode(picture.content).size) == (200, (320, 200))
    assert (thumbnail.status_code, decode(thumbnail.content).size) == (200, (160, 100))
    assert full.status_code == 507
    assert full.json['title'] == 'Storage full'
    assert again.json == [image]
    assert after.json == [image, added]


async def test_an_upload_the_catalog_has_no_room_to_record_is_507_and_leaves_nothing(
    disk, redis_server
):
    async with two_workers(disk.storage, redis_server) as (first, second):
        disk.fill(leave_pages=1)
        before = image_files(disk.storage)
        # The image's file fits in the last page; the catalog's record does not.
        full = await first.simulate_post(
            '/images', body=encode(gradient((16, 16)), 'PNG')
        )
        listings = [await worker.simulate_get('/images') for worker in (first, second)]
        left = image_files(disk.storage)

        disk.empty()
        image = await upload_through(second, (16, 16))
        fetched = await first.simulate_get(image['image'])
        deleted = await first.simulate_delete(image['image'], headers=owner(image))
        gone = [await worker.simulate_get(image['image']) for worker in (first, second)]

    assert full.status_code == 507
    assert full.json['title'] == 'Storage full'
    assert [resp.json for resp in listings] == [[], []]
    assert left == before
    assert fetched.status_code == 200
    assert deleted.status_code == 204
    assert [resp.status_code for resp in gone] == [404, 404]


@pytest.mark.live
def test_a_full_disk_under_uvicorn_kills_no_worker(live_redis, disk):
    kept = put_image(disk.storage)
    port = servers.free_port()
    process = servers.start_uvicorn(
        disk.storage,
        live_redis,
        port,
        '--workers',
        '2',
        env={'ASGI_LOOK_SECRET': SECRET},
    )
    try:
        workers = worker_pids(process.pid)
        assert len(workers) == 2
        # Both workers have the catalog open before the disk fills.
        disk.fill()
        with httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=30) as http:
            # New connections, so that both workers answer some.
            answers = [
                http.get('/images', headers={'Connection': 'close'}) for _ in range(8)
            ]
            image = answers[0].json()[0]
            picture = http.get(image['image'])
            thumbnail = http.get(image['thumbnails'][0])
            upload = encode(gradient((64, 48)), 'PNG')
            full = [
                http.post('/images', content=upload, headers={'Connection': 'close'})
                for _ in range(4)
            ]
            still = http.get('/images')
            crashed = worker_pids(process.pid) != workers

            disk.empty()
            added = http.post('/images', content=upload)
            listing = [
                http.get('/images', headers={'Connection': 'close'}) for _ in range(4)
            ]
            crashed = crashed or worker_pids(process.pid) != workers
    finally:
        servers.stop(process)

    assert [resp.status_code for resp in answers] == [200] * 8
    assert image['id'] == kept
    assert (picture.status_code, thumbnail.status_code) == (200, 200)
    assert [resp.status_code for resp in full] == [507] * 4
    assert still.status_code == 200
    assert not crashed
    assert added.status_code == 201
    assert [resp.json() for resp in listing] == [[image, as_listed(added.json())]] * 4


def worker_pids(supervisor: int) -> set[int]:
    """The pids of uvicorn's worker processes: its children that serve."""
    with open(f'/proc/{supervisor}/task/{supervisor}/children') as children:
        pids = {int(pid) for pid in children.read().split()}
    # Not multiprocessing's resource tracker, should one run.
    return {pid for pid in pids if b'resource_tracker' not in _cmdline(pid)}


def _cmdline(pid: int) -> bytes:
    with open(f'/proc/{pid}/cmdline', 'rb') as cmdline:
        return cmdline.read()
