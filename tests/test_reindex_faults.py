"""Work killed midway, files damaged by hand, old directories: the next start."""

import asyncio
import pathlib
import random
import subprocess
import sys
import uuid

from asgilook.catalog.record import file_name

from .directories import (
    dead_pid,
    http_date,
    jpeg,
    listed,
    messages,
    place,
    run_reindex,
    started,
    summaries,
)
from .fakes import owner, upload_through
from .images import encode, gradient, image_files, stored_file

# A process of a worker that uploads or deletes one image, and is killed right
# after the image's file moved, before the change of the catalog is committed.
KILLED_MID_CHANGE = """
import os, sys
import fakeredis, falcon.testing
from asgilook.app import create_served_app
from asgilook.config import Config

storage, method, argument, *authorization = sys.argv[1:]
replace = os.replace


def replace_then_die(source, target):
    replace(source, target)
    moved = target if method == 'POST' else source
    if os.path.dirname(os.fspath(moved)) == storage:
        os._exit(9)


os.replace = replace_then_die
config = Config()
config.storage_path = storage
config.render_processes = 0
server = fakeredis.FakeServer()
config.redis_from_url = lambda *args, **kwargs: fakeredis.aioredis.FakeRedis(
    server=server
)
client = falcon.testing.TestClient(create_served_app(config))
if method == 'POST':
    with open(argument, 'rb') as upload:
        print(client.simulate_post('/images', body=upload.read()).status_code)
else:
    headers = {'Authorization': authorization[0]}
    print(client.simulate_delete(argument, headers=headers).status_code)
"""


def killed_mid_change(storage_path, method: str, argument, headers=None) -> None:
    """Run a worker that dies between moving an image's file and committing."""
    authorization = [headers['Authorization']] if headers else []
    script = [sys.executable, '-c', KILLED_MID_CHANGE]
    done = subprocess.run(
        [*script, str(storage_path), method, argument, *authorization],
        capture_output=True,
        text=True,
        timeout=60,
    )
    # Killed where it should be, not answered.
    assert done.returncode == 9, done.stdout + done.stderr


async def test_an_upload_killed_before_its_row_is_listed_whole_at_the_next_start(
    storage_path, tmp_path_factory
):
    async with started(storage_path) as worker:
        image = await upload_through(worker)
    upload = tmp_path_factory.mktemp('uploads') / 'upload.png'
    upload.write_bytes(encode(gradient((300, 100)), 'PNG'))

    killed_mid_change(storage_path, 'POST', str(upload))

    async with started(storage_path) as worker:
        images = await listed(worker)
        assert images[0] == image
        # The file is whole: it is listed, and served.
        assert len(images) == 2
        assert images[1]['size'] == [300, 100]
        resp = await worker.simulate_get(images[1]['image'])
        assert resp.status_code == 200
        assert resp.content == stored_file(storage_path, images[1]['id']).read_bytes()
    assert len(image_files(storage_path)) == 2


async def test_a_delete_killed_before_its_row_is_gone_at_the_next_start(
    storage_path,
):
    async with started(storage_path) as worker:
        kept = await upload_through(worker)
        gone = await upload_through(worker)

    killed_mid_change(storage_path, 'DELETE', gone['image'], owner(gone))

    async with started(storage_path) as worker:
        assert await listed(worker) == [kept]
        assert (await worker.simulate_get(gone['image'])).status_code == 404
    # The file moved out of the way is removed too.
    assert image_files(storage_path) == [stored_file(storage_path, kept['id']).name]


async def test_a_delete_killed_while_another_worker_changes_is_gone_at_restart(
    storage_path,
):
    async with started(storage_path) as other:
        kept = await upload_through(other)
        gone = await upload_through(other)
        killed_mid_change(storage_path, 'DELETE', gone['image'], owner(gone))
        # The other worker goes on answering changes.
        later = await upload_through(other)

    async with started(storage_path) as worker:
        assert await listed(worker) == [kept, later]
        assert (await worker.simulate_get(gone['image'])).status_code == 404


async def test_files_changed_by_hand_while_workers_change_are_seen_at_restart(
    storage_path,
):
    async with started(storage_path) as worker:
        kept = await upload_through(worker)
        gone = await upload_through(worker)
        stored_file(storage_path, gone['id']).unlink()
        name = place(storage_path, jpeg(), (320, 200))
        later = await upload_through(worker)

    async with started(storage_path) as worker:
        images = await listed(worker)

    assert [image['id'] for image in images] == [
        kept['id'],
        later['id'],
        name.split('.')[0],
    ]


def damaged_files(storage_path) -> dict[str, str]:
    """Files named as images that are not the JPEG their name says; why."""
    data = jpeg((64, 48))
    directory = pathlib.Path(storage_path)
    short = file_name(str(uuid.uuid4()), (64, 48), len(data) + 10)
    (directory / short).write_bytes(data)
    png = encode(gradient((64, 48)), 'PNG')
    not_jpeg = place(storage_path, png, (64, 48))
    smaller = place(storage_path, jpeg((32, 24)), (64, 48))
    cut = place(storage_path, data[: len(data) // 2], (64, 48))
    folder = file_name(str(uuid.uuid4()), (10, 10), 5)
    (directory / folder).mkdir()
    return {
        short: f'{len(data)} bytes where its name says {len(data) + 10}: damaged',
        not_jpeg: '',
        smaller: 'a JPEG of 32x24 where its name says 64x48',
        cut: '',
        folder: '',
        'holiday.jpeg': 'not the name of an image',
        'notes.txt': 'not the name of an image',
    }


async def test_damaged_files_named_as_images_are_never_listed(storage_path, logged):
    async with started(storage_path) as worker:
        image = await upload_through(worker)
    damaged = damaged_files(storage_path)
    for name in ('holiday.jpeg', 'notes.txt'):
        (pathlib.Path(storage_path) / name).write_bytes(b'not an image')

    for _ in range(2):
        async with started(storage_path) as worker:
            assert await listed(worker) == [image]
            for name in damaged:
                image_id = name.split('.')[0]
                resp = await worker.simulate_get(f'/images/{image_id}.jpeg')
                assert resp.status_code == 404
        done = await asyncio.to_thread(run_reindex, storage_path)
        assert done.returncode == 0

    logs = messages(logged)
    for name, reason in damaged.items():
        logged_for = [m for m in logs if m.startswith(f'ignoring {name} in ')]
        # At the start that found it; not at the start that found nothing new.
        assert len(logged_for) == 1, name
        assert logged_for[0].endswith(reason)
        assert f'ignoring {name} in ' in done.stderr
    assert summaries(logged)[-1].endswith(f'{len(damaged)} files ignored')


async def test_of_two_files_of_one_id_the_newer_is_listed(storage_path, logged):
    image_id = str(uuid.uuid4())
    older = place(storage_path, jpeg((320, 200)), (320, 200), image_id, 1_700_000_000)
    newer_data = jpeg((100, 80))
    newer = place(storage_path, newer_data, (100, 80), image_id, 1_700_000_100)

    async with started(storage_path) as worker:
        images = await listed(worker)
        served = await worker.simulate_get(f'/images/{image_id}.jpeg')

    assert [(image['id'], image['size']) for image in images] == [(image_id, [100, 80])]
    assert images[0]['modified'] == http_date(1_700_000_100)
    assert served.content == newer_data
    assert f'listed {newer} found in {storage_path}' in messages(logged)
    assert f'ignoring {older} in {storage_path}: a newer file has its id' in messages(
        logged
    )


async def test_of_two_files_of_one_id_the_listed_one_stays(storage_path, logged):
    async with started(storage_path) as worker:
        image = await upload_through(worker)
    other = place(storage_path, jpeg((100, 80)), (100, 80), image['id'])

    async with started(storage_path) as worker:
        assert await listed(worker) == [image]

    assert (
        f'ignoring {other} in {storage_path}: another file of this image is listed'
        in messages(logged)
    )


def release_0_2_0_storage(storage_path) -> tuple[list[dict], dict, str, pathlib.Path]:
    """A storage directory as asgilook 0.2.0 left it.

    The list it serves now, its files' bytes, its service key and its leftover.
    """
    directory = pathlib.Path(storage_path)
    base = 1_700_000_000
    ids = sorted(str(uuid.uuid4()) for _ in range(3))
    # Uploaded in the reverse order of their ids, half a second past a second.
    uploads = [
        (ids[2], (320, 200), base + 0.5, ['/thumbnails/{}/160x100.jpeg']),
        (ids[0], (64, 64), base + 60.5, []),
        (ids[1], (500, 90), base + 3600.5, []),
    ]
    listing = []
    for image_id, size, modified, thumbnails in uploads:
        place(storage_path, jpeg(size), size, image_id, modified)
        listing.append(
            {
                'id': image_id,
                'image': f'/images/{image_id}.jpeg',
                'modified': http_date(int(modified)),
                'size': list(size),
                'thumbnails': [uri.format(image_id) for uri in thumbnails],
                # Listed too since WebP and AVIF thumbnails came (from the same files).
                **{
                    f'thumbnails_{kind}': [
                        uri.format(image_id).replace('.jpeg', f'.{kind}')
                        for uri in thumbnails
                    ]
                    for kind in ('webp', 'avif')
                },
            }
        )
    # The counter of changes that workers of 0.2.0 mapped into memory.
    (directory / '.generation').write_bytes((3).to_bytes(8, 'little'))
    key = directory / '.service-key'
    key.write_text(random.Random(0).randbytes(32).hex() + '\n')
    key.chmod(0o600)
    # An upload of a worker that was killed.
    leftover = f'.incoming-{dead_pid()}-{uuid.uuid4().hex}.tmp'
    (directory / leftover).write_bytes(b'\xff\xd8 partial')
    files = {path.name: path.read_bytes() for path in directory.glob('*.jpeg')}
    return listing, files, key.read_text(), directory / leftover


async def test_a_storage_directory_of_release_0_2_0_is_adopted_whole(
    storage_path, logged
):
    listing, files, key, leftover = release_0_2_0_storage(storage_path)
    directory = pathlib.Path(storage_path)

    async with started(storage_path) as worker:
        assert await listed(worker) == listing
        page = await worker.simulate_get('/images?limit=2')
        assert page.json == listing[:2]
        for image in listing:
            resp = await worker.simulate_get(image['image'])
            assert resp.status_code == 200
            name = stored_file(storage_path, image['id']).name
            assert resp.content == files[name]
        thumbnail = await worker.simulate_get(listing[0]['thumbnails'][0])
        assert thumbnail.status_code == 200

    assert not leftover.exists()
    assert any(
        m.startswith(f'removed {leftover.name} from {storage_path}: ')
        for m in messages(logged)
    )
    assert summaries(logged) == [
        f'reindexed {storage_path}: 3 images listed, 3 files adopted, '
        '0 rows of missing files removed, 0 files ignored'
    ]
    # What the service keeps beside the images is kept.
    assert (directory / '.service-key').read_text() == key
    assert (directory / '.generation').exists()
    logged.clear()

    async with started(storage_path) as worker:
        assert await listed(worker) == listing

    assert summaries(logged) == []
