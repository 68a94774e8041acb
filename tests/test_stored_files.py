"""Stored files that are not what their name says, or left over: never served."""

import contextlib
import logging
import os
import pathlib
import random
import shutil
import subprocess
import tempfile
import uuid

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.catalog import SqliteCatalog, reindex
from asgilook.catalog import record as records
from asgilook.imaging import jpeg
from asgilook.storage import files

from .disks import HOUR, config_over, put_image
from .fakes import two_workers, upload_through
from .images import encode, gradient, stored_file

# Files under the name of an image that are not that image.

JPEG = encode(gradient((320, 200)), 'JPEG', quality=90)
SOI, EOI = b'\xff\xd8', b'\xff\xd9'


def comment(text: bytes) -> bytes:
    return b'\xff\xfe' + (len(text) + 2).to_bytes(2, 'big') + text


@pytest.mark.parametrize(
    ('data', 'size'),
    [
        (JPEG, (320, 200)),
        (encode(gradient((64, 48)), 'JPEG', progressive=True), (64, 48)),
        # A frame header past the first read, behind 60 kB of metadata.
        (encode(gradient((320, 200)), 'JPEG', comment=b'x' * 60000), (320, 200)),
        # Fill bytes and a restart marker before the frame: decoders skip them.
        (SOI + b'\xff\xff\xd0' + JPEG[2:], (320, 200)),
    ],
)
def test_the_size_of_a_jpeg_is_read_from_its_frame_header(tmp_path, data, size):
    path = tmp_path / 'picture.jpeg'
    path.write_bytes(data)

    assert jpeg.frame_size(path) == size


@pytest.mark.parametrize(
    ('data', 'reason'),
    [
        (b'', 'not a JPEG'),
        (encode(gradient(), 'PNG'), 'not a JPEG'),
        (SOI + b'\xff', 'not a whole JPEG'),
        (JPEG[:-2], 'not a whole JPEG'),
        (JPEG[: len(JPEG) // 2], 'not a whole JPEG'),
        (SOI + b'no markers here' + EOI, 'no frame header'),
        # Scan data before any frame header.
        (SOI + b'\xff\xda\x00\x08' + bytes(6) + EOI, 'no frame header'),
        (SOI + comment(b'') + EOI, 'no frame header'),
        # A segment that says it is shorter than its own length field.
        (SOI + b'\xff\xfe\x00\x00' + JPEG[2:], 'no frame header'),
        # A frame header cut short by the end of the file.
        (SOI + b'\xff\xc0\x00\x11\x08' + EOI, 'no frame header'),
        (SOI + comment(b'x') * 300 + JPEG[2:], 'no frame header'),
    ],
)
def test_what_is_not_a_whole_jpeg_says_what_it_is(tmp_path, data, reason):
    path = tmp_path / 'picture.jpeg'
    path.write_bytes(data)

    with pytest.raises(jpeg.JPEGError) as failure:
        jpeg.frame_size(path)

    assert reason in str(failure.value)


def test_files_that_are_not_the_jpeg_their_name_says_are_not_listed_or_served(
    config, storage_path, caplog
):
    honest = put_image(storage_path)
    liars = {
        put_image(storage_path, data=random.Random(0).randbytes(5000)): 'not a JPEG',
        put_image(storage_path, data=JPEG[: len(JPEG) // 2]): 'not a whole JPEG',
        put_image(storage_path, data=encode(gradient(), 'PNG')): 'not a JPEG',
        put_image(
            storage_path, name_size=(64000, 48000)
        ): 'a JPEG of 320x200 where its name says 64000x48000',
    }
    # Hidden files are asgilook's own (its catalog, its key) or the system's.
    (pathlib.Path(storage_path) / '.DS_Store').write_bytes(b'\0' * 64)
    caplog.set_level(logging.WARNING, logger='asgilook.reindex')
    client = falcon.testing.TestClient(create_served_app(config))

    # Each request of the TestClient is a start: only the first reads files.
    listings = [client.simulate_get('/images') for _ in range(3)]
    upload = client.simulate_post('/images', body=encode(gradient((64, 64)), 'PNG'))
    after = client.simulate_get('/images')
    answers = {
        image_id: [
            client.simulate_get(f'/images/{image_id}.jpeg').status_code,
            client.simulate_get(f'/thumbnails/{image_id}/32000x24000.jpeg').status_code,
            client.simulate_get(f'/thumbnails/{image_id}/160x100.jpeg').status_code,
        ]
        for image_id in liars
    }
    picture = client.simulate_get(f'/images/{honest}.jpeg')

    assert [[item['id'] for item in resp.json] for resp in listings] == [[honest]] * 3
    assert [item['id'] for item in after.json] == [honest, upload.json['id']]
    assert answers == {image_id: [404, 404, 404] for image_id in liars}
    assert picture.content == stored_file(storage_path, honest).read_bytes()
    messages = [record.getMessage() for record in caplog.records]
    assert not [m for m in messages if m.startswith('ignoring .')]
    for image_id, reason in liars.items():
        (message,) = [m for m in messages if m.startswith(f'ignoring {image_id}.')]
        assert f': {reason}' in message


async def test_a_file_is_checked_once_when_found_and_an_upload_never(
    storage_path, redis_server, monkeypatch
):
    checked = []
    check = records.check_jpeg
    monkeypatch.setattr(
        records,
        'check_jpeg',
        lambda directory, name, record: (
            checked.append(name) or check(directory, name, record)
        ),
    )
    by_hand = put_image(storage_path)
    liar = put_image(storage_path, data=JPEG[:-2])
    async with two_workers(storage_path, redis_server) as (first, second):
        # The first worker to start reconciles; the second finds it done.
        at_start = sorted(checked)
        checked.clear()
        uploads = [await upload_through(first, (64, 64)) for _ in range(3)]
        own = await upload_through(second, (64, 64))
        listing = await first.simulate_get('/images')

    assert at_start == sorted(
        [stored_file(storage_path, by_hand).name, stored_file(storage_path, liar).name]
    )
    assert checked == []
    assert [item['id'] for item in listing.json] == [
        by_hand,
        *(image['id'] for image in uploads),
        own['id'],
    ]


async def test_as_an_unprivileged_user_what_cannot_be_read_is_not_listed(
    redis_server, caplog
):
    # A directory an unprivileged process may use: none of pytest's is.
    directory = pathlib.Path(tempfile.mkdtemp())
    try:
        os.chmod(directory, 0o777)
        image_id = put_image(directory)
        path = stored_file(directory, image_id)
        # Not even root reads past an LSM; an unprivileged process past mode 0.
        os.chmod(path, 0)
        # An upload in progress of a process of another user (init's, here).
        in_progress = temporary(directory, 1)
        os.chmod(directory / files.TEMPORARY_DIRECTORY, 0o777)
        config = config_over(directory, redis_server)
        async with contextlib.AsyncExitStack() as stack:
            with as_nobody():
                conductor = await stack.enter_async_context(
                    falcon.testing.ASGIConductor(create_served_app(config))
                )
                hidden = await conductor.simulate_get('/images')
            os.chmod(path, 0o644)
            # Found by the next reindex (a change of mode moves no time).
            await upload_through(conductor, (64, 64))
            unchanged = await conductor.simulate_get('/images')
            catalog = SqliteCatalog(directory)
            await reindex.reindex(catalog)
            await catalog.close()
            catalog.shutdown()
            shown = await conductor.simulate_get('/images')
        left = os.listdir(directory / files.TEMPORARY_DIRECTORY)
    finally:
        shutil.rmtree(directory)

    assert hidden.json == []
    assert image_id not in [item['id'] for item in unchanged.json]
    assert image_id in [item['id'] for item in shown.json]
    assert in_progress in left
    messages = [record.getMessage() for record in caplog.records]
    assert any(
        m.startswith(f'ignoring {path.name} ') and 'cannot be read' in m
        for m in messages
    )


@contextlib.contextmanager
def as_nobody():
    """Act as the unprivileged user 'nobody' for a while (as root only)."""
    assert os.geteuid() == 0, 'this test needs root, as the tmpfs tests do'
    # Real and effective ids (signals check the real one); root stays saved.
    os.setresgid(65534, 65534, 0)
    os.setresuid(65534, 65534, 0)
    try:
        yield
    finally:
        os.setresuid(0, 0, 0)
        os.setresgid(0, 0, 0)


# A file removed by hand.


async def test_once_a_worker_answered_404_for_an_image_it_never_answers_200(
    storage_path, redis_server, caplog
):
    async with two_workers(storage_path, redis_server) as workers:
        image = await upload_through(workers[0], (640, 400))
        kept = [image['image'], image['thumbnails'][0]]
        for worker in workers:
            for uri in kept * 2:
                assert (await worker.simulate_get(uri)).status_code == 200
        assert (await worker.simulate_get(kept[0])).headers['X-ASGILook-Cache'] == 'Hit'

        stored_file(storage_path, image['id']).unlink()
        answers = []
        for worker in workers:
            # What memory does not hold is looked up, and found gone.
            first = await worker.simulate_get(image['thumbnails'][1])
            later = [
                await worker.simulate_get(uri)
                for _ in range(3)
                for uri in [image['image'], *image['thumbnails'], '/images']
            ]
            answers.append((first.status_code, [resp.status_code for resp in later]))
            listing = later[-1]

    assert answers == [(404, [404, 404, 404, 200] * 3)] * 2
    # The first 404 unlisted it, for every worker.
    assert listing.json == []
    messages = [record.getMessage() for record in caplog.records]
    assert [m for m in messages if m.startswith(f'unlisted image {image["id"]}')]


# What killed workers leave behind.


def ended_pid() -> int:
    """The pid of a process that has run and ended."""
    process = subprocess.Popen(['true'])
    process.wait()
    return process.pid


def temporary(directory, pid=None, age=0) -> str:
    """Leave a temporary file as an upload of process pid does; return its name.

    Without a pid: a name as no process of this release makes it.
    """
    hex_part = uuid.uuid4().hex
    name = f'{hex_part}.tmp' if pid is None else f'{pid}-{hex_part}.tmp'
    incoming = pathlib.Path(directory) / files.TEMPORARY_DIRECTORY
    incoming.mkdir(exist_ok=True)
    path = incoming / name
    path.write_bytes(b'\xff\xd8 part of an upload')
    moment = path.stat().st_mtime_ns - age * 10**9
    os.utime(path, ns=(moment, moment))
    return name


def test_a_start_removes_what_uploads_of_ended_processes_left(
    config, storage_path, caplog
):
    image_id = put_image(storage_path)
    dead = ended_pid()
    removed = [
        temporary(storage_path, dead),
        # Left by an earlier process that had this one's pid.
        temporary(storage_path, os.getpid()),
        # From the release that did not name the process, over an hour ago.
        temporary(storage_path, age=HOUR + 60),
    ]
    # An upload of a process that runs, or one of the last hour.
    kept = [
        temporary(storage_path, os.getppid()),
        temporary(storage_path, age=HOUR - 60),
    ]
    caplog.set_level(logging.WARNING)
    client = falcon.testing.TestClient(create_served_app(config))

    incoming = pathlib.Path(storage_path) / files.TEMPORARY_DIRECTORY
    listing = client.simulate_get('/images')
    left = set(os.listdir(incoming))
    # Only the first start of a process clears: later ones may meet uploads
    # in progress, as this one could be.
    later = temporary(storage_path, dead)
    client.simulate_post('/images', body=encode(gradient((64, 64)), 'PNG'))
    again = client.simulate_get('/images')

    assert [item['id'] for item in listing.json] == [image_id]
    assert not left & set(removed)
    assert set(kept) <= left
    assert later in os.listdir(incoming)
    assert len(again.json) == 2
    messages = [record.getMessage() for record in caplog.records]
    for name in removed:
        assert len([m for m in messages if m.startswith(f'removed {name} ')]) == 1
    assert any(
        m.startswith(f'removed {removed[0]} ')
        and f'process {dead}, which has ended' in m
        for m in messages
    )
    # The recent one is reported, as it may be a leftover; the live one is not.
    assert [m for m in messages if m.startswith(f'ignoring {kept[1]} ')]
    assert not [m for m in messages if kept[0] in m]
    assert not [m for m in messages if later in m]


def test_a_leftover_that_cannot_be_removed_is_reported_and_one_gone_is_not(
    config, storage_path, caplog
):
    # What another worker's start removed first is gone: this one looks no
    # further. A temporary name that points nowhere is as good as gone.
    incoming = pathlib.Path(storage_path) / files.TEMPORARY_DIRECTORY
    incoming.mkdir()
    gone = f'{uuid.uuid4().hex}.tmp'
    (incoming / gone).symlink_to('nowhere')
    stuck = temporary(storage_path, ended_pid())
    (incoming / stuck).unlink()
    (incoming / stuck).mkdir()
    (incoming / stuck / 'inside').write_text('in the way')
    caplog.set_level(logging.WARNING)
    client = falcon.testing.TestClient(create_served_app(config))

    listing = client.simulate_get('/images')

    assert listing.json == []
    messages = [record.getMessage() for record in caplog.records]
    assert [m for m in messages if m.startswith(f'ignoring {stuck} ')] == [
        f'ignoring {stuck} in {incoming}: a leftover that cannot be removed: '
        'Is a directory'
    ]
    assert not [m for m in messages if gone in m]


async def test_what_one_directory_holds_says_nothing_of_another(
    config, tmp_path, caplog
):
    first, second = tmp_path / 'first', tmp_path / 'second'
    first.mkdir()
    second.mkdir()
    image_id = put_image(first)
    original = stored_file(first, image_id)
    # The same name, time and size in another directory, and garbage in it.
    copy = second / original.name
    copy.write_bytes(random.Random(1).randbytes(original.stat().st_size))
    os.utime(copy, ns=(original.stat().st_atime_ns, original.stat().st_mtime_ns))
    config.storage_path = first
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        listed = await conductor.simulate_get('/images')
    config.storage_path = second
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        elsewhere = await conductor.simulate_get('/images')

    assert [item['id'] for item in listed.json] == [image_id]
    assert elsewhere.json == []
