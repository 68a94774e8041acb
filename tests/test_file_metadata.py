"""What a file's name and times say, taken only as far as the catalog holds it."""

import asyncio
import os
import pathlib
import uuid

import pytest

from asgilook.catalog.record import file_name

from .directories import (
    listed,
    messages,
    run_reindex,
    started,
    summaries,
)
from .fakes import upload_through
from .images import stored_file

SECOND = 10**9
# A time after 2262, the last the catalog's integers hold in nanoseconds
# (within what ext4 holds: it keeps times up to 2446), and one before 1970.
YEAR_2300 = 10_413_792_000 * SECOND
YEAR_1900 = -2_208_988_800 * SECOND
LATEST = 'Fri, 11 Apr 2262 23:47:16 GMT'
EARLIEST = 'Thu, 01 Jan 1970 00:00:00 GMT'
NOT_A_NAME = 'not the name of an image'


async def an_uploads_jpeg(storage_path) -> tuple[bytes, tuple[int, int]]:
    """The JPEG asgilook stored for an upload, and its size: a real image file."""
    async with started(storage_path) as worker:
        image = await upload_through(worker, (320, 200))
    return stored_file(storage_path, image['id']).read_bytes(), (320, 200)


def copy_in(storage_path, data: bytes, size, time_ns: int) -> str:
    """Copy an image into the storage directory as a user would, dated time_ns."""
    path = pathlib.Path(storage_path) / file_name(str(uuid.uuid4()), size, len(data))
    path.write_bytes(data)
    os.utime(path, ns=(time_ns, time_ns))
    return path.name


def out_of_range(storage_path, name: str) -> bool:
    """Whether a file's time is out of the catalog's range, as the disk keeps it."""
    return not 0 <= (pathlib.Path(storage_path) / name).stat().st_mtime_ns < 2**63


def absurd_names(storage_path, data: bytes) -> list[str]:
    """Files of an image under names whose numbers no image has."""
    image_id = str(uuid.uuid4())
    length = len(data)
    names = [
        f'{image_id}.{"9" * 30}x200.{length}.jpeg',
        f'{image_id}.320x{"9" * 30}.{length}.jpeg',
        f'{image_id}.65536x200.{length}.jpeg',
        f'{image_id}.320x200.{"9" * 30}.jpeg',
    ]
    for name in names:
        (pathlib.Path(storage_path) / name).write_bytes(data)
    return names


@pytest.mark.parametrize('first', ['a start', 'the reindex command'])
async def test_files_dated_out_of_range_are_listed_at_the_nearest_date_held(
    storage_path, logged, first
):
    data, size = await an_uploads_jpeg(storage_path)
    late = copy_in(storage_path, data, size, YEAR_2300)
    early = copy_in(storage_path, data, size, YEAR_1900)
    absurd = absurd_names(storage_path, data)
    # The file system keeps times this far out, or the test means nothing.
    assert out_of_range(storage_path, late)
    assert out_of_range(storage_path, early)

    if first == 'the reindex command':
        done = await asyncio.to_thread(run_reindex, storage_path)
        assert done.returncode == 0, done.stderr
    async with started(storage_path) as worker:
        images = {image['id']: image for image in await listed(worker)}
        page = await worker.simulate_get('/images?limit=10')
        served = {
            name: await worker.simulate_get(f'/images/{name.split(".")[0]}.jpeg')
            for name in (late, early)
        }
        late_image = images[late.split('.')[0]]
        thumbnail = await worker.simulate_get(late_image['thumbnails'][0])
    again = await asyncio.to_thread(run_reindex, storage_path)

    dates = {late: LATEST, early: EARLIEST}
    for name, date in dates.items():
        assert images[name.split('.')[0]]['modified'] == date
        assert served[name].status_code == 200
        assert served[name].headers['Last-Modified'] == date
        assert served[name].content == data
    assert page.json == list(images.values())
    assert thumbnail.status_code == 200
    assert len(images) == 3
    assert again.returncode == 0, again.stderr
    logs = messages(logged) if first == 'a start' else again.stderr
    assert (
        f'dating {late} in {storage_path}: its time is after the range the '
        'catalog holds (1970 to 2262): dated 2262-04-11 23:47:16 UTC'
    ) in logs
    assert (
        f'dating {early} in {storage_path}: its time is before the range the '
        'catalog holds (1970 to 2262): dated 1970-01-01 00:00:00 UTC'
    ) in logs
    for name in absurd:
        assert f'ignoring {name} in {storage_path}: {NOT_A_NAME}' in logs


async def test_a_storage_directory_dated_after_2262_is_read_and_written(
    storage_path, logged
):
    data, size = await an_uploads_jpeg(storage_path)
    copied = copy_in(storage_path, data, size, 1_700_000_000 * SECOND)
    os.utime(storage_path, ns=(YEAR_2300, YEAR_2300))
    assert os.stat(storage_path).st_mtime_ns >= 2**63

    async with started(storage_path) as worker:
        found = await listed(worker)
        added = await upload_through(worker)
    logged.clear()
    async with started(storage_path) as worker:
        after = await listed(worker)

    assert found[-1]['id'] == copied.split('.')[0]
    assert after == [*found, added]
    # The time the last change left was recorded: nothing to read again.
    assert summaries(logged) == []
