"""The ids of events: a catalog made anew never gives an id the one before gave."""

import shutil
import time

import falcon.testing

from asgilook.app import create_served_app
from asgilook.catalog import CATALOG_DIRECTORY

from .fakes import owner
from .streams import SSEReader, uploads


async def _events_after(config, after: int, count: int) -> list[dict]:
    app = create_served_app(config)
    async with (
        falcon.testing.ASGIConductor(app) as conductor,
        conductor.get_stream('/events', query_string=f'after={after}') as stream,
    ):
        reader = SSEReader(stream.stream)
        return [await reader.event() for _ in range(count)]


async def test_a_catalog_made_anew_tells_a_resuming_client_to_read_the_list_again(
    events_config, storage_path
):
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        images = await uploads(conductor, 6)
        for image in images[:2]:
            await conductor.simulate_delete(image['image'], headers=owner(image))
    # The catalog is lost; a start makes another, listing the files it finds.
    shutil.rmtree(storage_path / CATALOG_DIRECTORY)
    started = time.time_ns() // 1000

    # A client that had taken events 1 to 3 resumes: the new catalog's last
    # id would have been 4 (its four files listed anew).
    [reset] = await _events_after(events_config, 3, 1)
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        listed = (await conductor.simulate_get('/images')).json

    assert reset['event'] == 'reset'
    assert reset['data']['requested'] == 3
    # Numbered from the moment the new catalog was made: above any id of the
    # one before; the four files it found and listed came before it.
    assert reset['id'] == reset['data']['last'] >= started + 4
    assert [image['id'] for image in listed] == [image['id'] for image in images[2:]]


async def test_a_new_storage_directory_numbers_its_events_from_1(events_config):
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        await uploads(conductor, 2)

    assert [event['id'] for event in await _events_after(events_config, 0, 2)] == [
        1,
        2,
    ]
