"""An upload never replaces an image: an id already taken is asked again."""

import asyncio
import logging
import pathlib
import uuid

import falcon.testing

from asgilook.app import create_served_app
from asgilook.catalog import SqliteCatalog

from .fakes import as_listed, make_config, two_workers, upload_through
from .images import encode, gradient, image_files

FIXED = uuid.UUID('36562622-48e5-4a61-be67-e426b11821ed')


def _repeating(*ids):
    """A uuid_generator that answers ids in turn, then new random ones."""
    given = iter(ids)
    return lambda: next(given, None) or uuid.uuid4()


def _post(client, size):
    return client.simulate_post('/images', body=encode(gradient(size), 'PNG'))


def test_a_generator_that_answers_one_id_stores_one_image_then_503(
    storage_path, redis_server, caplog
):
    config = make_config(storage_path, redis_server, lambda: FIXED)
    client = falcon.testing.TestClient(create_served_app(config))
    first = _post(client, (320, 200))
    stored = client.simulate_get(first.json['image']).content
    files = image_files(storage_path)

    with caplog.at_level(logging.WARNING, 'asgilook'):
        second = _post(client, (64, 48))

    assert first.status_code == 201
    assert first.json['id'] == str(FIXED)
    assert second.status_code == 503
    assert second.json['title'] == 'No new image id'
    assert 'Nothing was stored' in second.json['description']
    assert int(second.headers['Retry-After']) > 0
    assert client.simulate_get('/images').json == [as_listed(first.json)]
    assert client.simulate_get(first.json['image']).content == stored
    # Nothing more on disk: no file, no temporary one.
    assert image_files(storage_path) == files
    (warning,) = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert 'uuid_generator answered 8 ids already taken' in warning.getMessage()
    assert str(FIXED) in warning.getMessage()


def test_an_id_taken_is_asked_again(storage_path, redis_server):
    other = uuid.UUID('3bc731ac-8cd8-4f39-b6fe-1a195d3b4e74')
    config = make_config(storage_path, redis_server, _repeating(FIXED, FIXED, other))
    client = falcon.testing.TestClient(create_served_app(config))

    first = _post(client, (320, 200))
    second = _post(client, (64, 48))

    assert (first.status_code, second.status_code) == (201, 201)
    assert (first.json['id'], second.json['id']) == (str(FIXED), str(other))
    assert [image['size'] for image in client.simulate_get('/images').json] == [
        [320, 200],
        [64, 48],
    ]


def test_the_tutorials_fixture_still_gives_its_ids(client, predictable_uuid):
    ids = [_post(client, (64, 48)).json['id'] for _ in range(4)]

    assert ids[:3] == [
        '36562622-48e5-4a61-be67-e426b11821ed',
        '3bc731ac-8cd8-4f39-b6fe-1a195d3b4e74',
        'ba1c4951-73bc-45a4-a1f6-aa2b958dafa4',
    ]
    assert len(set(ids)) == 4


async def test_two_workers_never_take_one_id(storage_path, redis_server):
    # Both workers are given the same id for their first upload, at once.
    generator = _repeating(FIXED, FIXED)
    sizes = [(320, 200), (64, 48)]
    async with two_workers(
        storage_path, redis_server, uuid_generator=generator
    ) as workers:
        created = await asyncio.gather(*map(upload_through, workers, sizes))
        listed = [(await worker.simulate_get('/images')).json for worker in workers]

    assert [image['size'] for image in created] == [list(size) for size in sizes]
    assert str(FIXED) in {image['id'] for image in created}
    assert len({image['id'] for image in created}) == 2
    # Both listed, each as its upload's answer said, by either worker.
    assert listed[0] == listed[1]
    assert sorted(listed[0], key=_id) == sorted(created, key=_id)
    assert len(image_files(storage_path)) == 2


def _id(image):
    return image['id']


async def test_the_catalog_refuses_an_id_it_lists(storage_path):
    directory = pathlib.Path(storage_path)
    catalog = SqliteCatalog(directory)
    paths = [directory / f'upload-{number}.tmp' for number in range(2)]
    for number, path in enumerate(paths):
        path.write_bytes(bytes([number]) * 10)
    first = await catalog.add(str(FIXED), (1, 1), 10, paths[0])
    version = await catalog.version()

    second = await catalog.add(str(FIXED), (2, 2), 10, paths[1])
    changes = await catalog.changes(0, 10)
    listing = await catalog.listing(10)
    await catalog.close()
    catalog.shutdown()

    assert second is None
    assert listing == ([first], version)
    assert [(change.kind, change.record) for change in changes] == [('created', first)]
    # Its file is left where it was, for the caller to remove.
    assert paths[1].read_bytes() == bytes([1]) * 10
    assert (directory / first.name).read_bytes() == bytes([0]) * 10
