"""An image whose file is gone is unlisted, on a full disk too, or said to stay."""

import dataclasses
import logging

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.storage.gone import STAYS_LISTED_LOG_INTERVAL

from .disks import Disk, config_over
from .fakes import FakeClock, owner, upload_through
from .images import stored_file
from .mounts import tmpfs


@pytest.fixture
def disk(tmp_path):
    with tmpfs(tmp_path / 'disk', '2m') as mount:
        yield Disk(mount)


def messages(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith('asgilook')]


def stays_listed(caplog, image) -> list[str]:
    return [m for m in messages(caplog) if m.startswith(f'image {image["id"]} stays')]


async def test_on_a_full_disk_images_are_unlisted_and_deleted_from_the_reserve(
    disk, caplog
):
    caplog.set_level(logging.WARNING, logger='asgilook')
    async with falcon.testing.ASGIConductor(
        create_served_app(config_over(disk.storage))
    ) as conductor:
        gone, deleted, later, kept = [
            await upload_through(conductor, (64, 48)) for _ in range(4)
        ]
        stored_file(disk.storage, gone['id']).unlink()
        disk.fill()
        missing = await conductor.simulate_get(gone['image'])
        removed = await conductor.simulate_delete(
            deleted['image'], headers=owner(deleted)
        )
        full = await conductor.simulate_get('/images')
        # Room again: the next change keeps a reserve again.
        disk.empty()
        added = await upload_through(conductor, (64, 48))
        disk.fill()
        removed_again = await conductor.simulate_delete(
            later['image'], headers=owner(later)
        )
        listing = await conductor.simulate_get('/images')

    assert missing.status_code == 404
    assert (removed.status_code, removed_again.status_code) == (204, 204)
    assert full.json == [later, kept]
    assert listing.json == [kept, added]
    assert (
        f'unlisted image {gone["id"]}: its file is gone from {disk.storage}'
        in messages(caplog)
    )
    assert stays_listed(caplog, gone) == []


async def test_an_image_that_cannot_be_unlisted_is_said_once_a_minute_until_it_is(
    disk, caplog
):
    caplog.set_level(logging.WARNING, logger='asgilook')
    config = config_over(disk.storage)
    config.clock = clock = FakeClock()
    # Nothing kept in reserve: the disk is full for the unlisting too.
    config.catalog_limits = dataclasses.replace(config.catalog_limits, reserve=0)
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        gone = await upload_through(conductor, (64, 48))
        kept = await upload_through(conductor, (64, 48))
        stored_file(disk.storage, gone['id']).unlink()
        disk.fill()
        first = [await conductor.simulate_get(gone['image']) for _ in range(3)]
        full = await conductor.simulate_get('/images')
        said = stays_listed(caplog, gone)
        clock.advance(STAYS_LISTED_LOG_INTERVAL)
        later = await conductor.simulate_get(gone['image'])
        disk.empty()
        unlisted = await conductor.simulate_get(gone['image'])
        listing = await conductor.simulate_get('/images')

    assert [resp.status_code for resp in [*first, later, unlisted]] == [404] * 5
    assert full.json == [gone, kept]
    assert said == [
        f'image {gone["id"]} stays listed though its file is gone from '
        f'{disk.storage}: its disk has no room to unlist it now; the first '
        'request for it once there is room unlists it, as does python -m '
        'asgilook reindex'
    ]
    # A minute later, again, with how many were held back.
    assert stays_listed(caplog, gone) == [*said, said[0] + ' (2 more in the last 60 s)']
    assert listing.json == [kept]
    assert messages(caplog)[-1] == (
        f'unlisted image {gone["id"]}: its file is gone from {disk.storage}'
    )
