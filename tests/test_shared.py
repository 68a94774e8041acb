"""Several hosts over one PostgreSQL catalog and one S3 storage_url (real engines)."""

import asyncio
import dataclasses
import json

import falcon.testing
import psycopg
import pytest
from aiobotocore.session import get_session

from asgilook.app import create_served_app
from asgilook.catalog import Record
from asgilook.catalog.notices import Known
from asgilook.catalog.opening import shared
from asgilook.catalog.postgres import POOL_SIZE, PostgresCatalog
from asgilook.errors import CatalogError, StorageUnavailableError
from asgilook.limits import CatalogLimits
from asgilook.storage.objects import Objects
from asgilook.store import Store

from .asgi import get_whole
from .fakes import owner
from .images import decode, encode, gradient
from .paging import ids, long_lists
from .servers import free_port
from .shared import hosts, shared_config


@pytest.fixture(autouse=True)
def _s3(monkeypatch, s3_environ):
    for name, value in s3_environ.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
async def s3_client(s3_environ):
    """A client of the object store, to look at the storage_url as a user would."""
    async with get_session().create_client(
        's3',
        endpoint_url=s3_environ['AWS_ENDPOINT_URL'],
        aws_access_key_id=s3_environ['AWS_ACCESS_KEY_ID'],
        aws_secret_access_key=s3_environ['AWS_SECRET_ACCESS_KEY'],
        region_name=s3_environ['AWS_REGION'],
    ) as client:
        yield client


async def upload(host, size=(320, 200)):
    resp = await host.simulate_post('/images', body=encode(gradient(size), 'PNG'))
    assert resp.status_code == 201, resp.text
    return resp.json


async def objects(s3_client, storage_url):
    """The keys of the objects under a storage URL (s3://bucket/prefix)."""
    bucket, _, prefix = storage_url.removeprefix('s3://').partition('/')
    found = await s3_client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(item['Key'] for item in found.get('Contents', []))


async def wait_for(condition, seconds=5.0):
    """Wait until condition() holds (another host's change reaches this one)."""
    async with asyncio.timeout(seconds):
        while not await condition():  # noqa: ASYNC110 (another host, not a task)
            await asyncio.sleep(0.01)


async def test_an_upload_on_one_host_is_served_by_the_other(
    tmp_path, database_url, storage_url, s3_client
):
    async with hosts(tmp_path, database_url, storage_url) as (first, second):
        image = await upload(first)

        listed = await second.simulate_get('/images')
        full = await second.simulate_get(image['image'])
        head = await second.simulate_head(image['image'])
        thumbnail = await second.simulate_get(image['thumbnails'][-1])

    assert [item['id'] for item in listed.json] == [image['id']]
    assert full.status_code == 200
    assert decode(full.content).size == (320, 200)
    assert full.headers['Content-Length'] == str(len(full.content))
    assert head.headers['ETag'] == full.headers['ETag']
    assert decode(thumbnail.content).size == (160, 100)
    prefix = storage_url.split('/', 3)[3]
    assert await objects(s3_client, storage_url) == [
        f'{prefix}/{image["id"]}.320x200.{len(full.content)}.jpeg'
    ]


async def test_a_host_keeps_no_file_of_the_images_it_stored(
    tmp_path, database_url, storage_url
):
    # Rendered in the host's threads: the object's bytes are handed over whole.
    async with hosts(
        tmp_path, database_url, storage_url, count=1, render_processes=0
    ) as (host,):
        images = [await upload(host, (640, 400)) for _ in range(3)]
        for image in images:
            thumbnail = await host.simulate_get(image['thumbnails'][0])
            assert decode(thumbnail.content).size == (320, 200)
        deleted = await host.simulate_delete(
            images[0]['image'], headers=owner(images[0])
        )
        assert deleted.status_code == 204

        # Its directory holds only what is on its way: nothing, now.
        left = [path for path in (tmp_path / 'host-0').rglob('*') if path.is_file()]
    assert left == []


async def test_a_delete_token_of_one_host_deletes_on_another(
    tmp_path, database_url, storage_url, s3_client
):
    async with hosts(tmp_path, database_url, storage_url) as (first, second):
        image = await upload(first)
        # Kept in memory on the first host: the delete must reach it.
        assert (await first.simulate_get(image['image'])).status_code == 200

        deleted = await second.simulate_delete(image['image'], headers=owner(image))

        async def gone_on_the_first():
            resp = await first.simulate_get(image['image'])
            return resp.status_code == 404

        await wait_for(gone_on_the_first)
        listed = await first.simulate_get('/images')

    assert deleted.status_code == 204
    assert listed.json == []
    assert await objects(s3_client, storage_url) == []


async def test_every_host_tells_every_change_with_the_same_ids(
    tmp_path, database_url, storage_url
):
    async with hosts(tmp_path, database_url, storage_url) as (first, second):
        created = await upload(first)
        await second.simulate_delete(created['image'], headers=owner(created))
        stores = [
            Store(shared_config(tmp_path / name, database_url, storage_url))
            for name in ('a', 'b')
        ]
        told, spans = [], []
        for store in stores:
            # Started twice, as a lifespan may be: the second start changes nothing.
            await store.startup()
            await store.startup()
            try:
                told.append(await store.changes(0, 10))
                spans.append(await store.change_span())
            finally:
                await store.shut()

    assert told[0] == told[1]
    assert [(change.kind, change.image_id) for change in told[0]] == [
        ('created', created['id']),
        ('deleted', created['id']),
    ]
    assert told[0][0].serial < told[0][1].serial
    assert spans[0] == spans[1]
    assert spans[0].holds(0)
    assert spans[0].last == told[0][1].serial


async def test_pages_and_a_long_list_read_a_batch_at_a_time(
    tmp_path, database_url, storage_url
):
    config = long_lists(shared_config(tmp_path, database_url, storage_url))
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as host:
        images = [await upload(host, (64 + number, 64)) for number in range(5)]
        status, _, content = await get_whole(app, '/images')
        first = await host.simulate_get('/images?limit=2')
        newest = await host.simulate_get('/images?limit=2&order=newest')
        after = await host.simulate_get(first.headers['Link'].split('>')[0][1:])

    assert status == 200
    assert [item['id'] for item in json.loads(content)] == ids(images)
    assert ids(first.json) == ids(images)[:2]
    assert ids(after.json) == ids(images)[2:4]
    assert ids(newest.json) == ids(images)[::-1][:2]


async def test_an_upload_never_replaces_an_image_of_another_host(
    tmp_path, database_url, storage_url, s3_client
):
    config = shared_config(tmp_path, database_url, storage_url)
    taken = config.uuid_generator()
    config.uuid_generator = lambda: taken
    async with falcon.testing.ASGIConductor(create_served_app(config)) as host:
        image = await upload(host)
        refused = await host.simulate_post(
            '/images', body=encode(gradient((320, 200)), 'PNG')
        )
        kept = await host.simulate_get(image['image'])

    assert refused.status_code == 503
    assert kept.status_code == 200
    assert len(await objects(s3_client, storage_url)) == 1


async def test_an_object_removed_behind_its_back_is_404_and_unlisted(
    tmp_path, database_url, storage_url, s3_client
):
    async with hosts(tmp_path, database_url, storage_url, count=1) as (host,):
        image = await upload(host)
        [key] = await objects(s3_client, storage_url)
        bucket = storage_url.split('/')[2]
        await s3_client.delete_object(Bucket=bucket, Key=key)

        full = await host.simulate_get(image['image'])
        listed = await host.simulate_get('/images')

    assert full.status_code == 404
    assert listed.json == []


async def test_a_missing_bucket_stops_the_start_naming_its_variable(
    tmp_path, database_url
):
    store = Store(shared_config(tmp_path, database_url, 's3://no-such-bucket/look'))

    with pytest.raises(StorageUnavailableError, match='ASGI_LOOK_STORAGE_URL'):
        await store.startup()
    await store.shut()


async def test_an_unreachable_database_stops_the_start_naming_its_variable(
    tmp_path, storage_url
):
    url = f'postgresql://postgres:hunter2@127.0.0.1:{free_port()}/look'
    store = Store(shared_config(tmp_path, url, storage_url))

    with pytest.raises(StorageUnavailableError, match='ASGI_LOOK_DATABASE_URL') as ex:
        await store.startup()
    await store.shut()

    assert 'hunter2' not in str(ex.value)


async def test_the_change_log_keeps_its_last_changes(
    tmp_path, database_url, storage_url
):
    limits = dataclasses.replace(
        shared_config(tmp_path, database_url, storage_url).catalog_limits,
        retained_changes=2,
    )
    async with hosts(
        tmp_path, database_url, storage_url, count=1, catalog_limits=limits
    ) as (host,):
        for number in range(3):
            await upload(host, (64 + number, 64))
    async with await psycopg.AsyncConnection.connect(database_url) as connection:
        cursor = await connection.execute('SELECT count(*) FROM changes')
        (kept,) = await cursor.fetchone()

    assert kept == 2


async def test_two_hosts_deleting_one_image_at_once_answer_one_204(
    tmp_path, database_url, storage_url
):
    async with hosts(tmp_path, database_url, storage_url) as (first, second):
        image = await upload(first)
        answers = await asyncio.gather(
            first.simulate_delete(image['image'], headers=owner(image)),
            second.simulate_delete(image['image'], headers=owner(image)),
        )

    assert sorted(resp.status_code for resp in answers) == [204, 404]


async def test_a_snapshot_that_cannot_begin_gives_its_connection_back(
    tmp_path, database_url, storage_url
):
    config = shared_config(tmp_path, database_url, storage_url)
    objects = Objects(config.storage_url, tmp_path)
    catalog = PostgresCatalog(
        config.database_url, objects, CatalogLimits(remembered_records=1)
    )
    await catalog.open()
    try:
        assert await catalog.setting('no-such-setting') is None
        # Remembered one at a time: the second forgets the first.
        assert [await catalog.get(image_id) for image_id in 'abab'] == [None] * 4
        async with await psycopg.AsyncConnection.connect(
            database_url, autocommit=True
        ) as connection:
            await connection.execute('DROP TABLE images')
        # More than the pool holds: none may be kept by a failed snapshot.
        for _ in range(POOL_SIZE + 2):
            with pytest.raises(CatalogError, match='does not exist'):
                await catalog.snapshot()
    finally:
        await catalog.close()


async def test_a_bucket_removed_while_serving_is_503(
    tmp_path, database_url, s3_client, seaweed_server
):
    bucket = seaweed_server.create_bucket()
    async with hosts(tmp_path, database_url, f's3://{bucket}/images', count=1) as (
        host,
    ):
        await s3_client.delete_bucket(Bucket=bucket)
        refused = await upload_refused(host)

    assert refused.status_code == 503
    assert refused.json['title'] == 'Storage unavailable'


async def upload_refused(host):
    return await host.simulate_post('/images', body=encode(gradient((64, 48)), 'PNG'))


@pytest.mark.parametrize('sizes', [((64, 48), (64, 48)), ((64, 48), (48, 64))])
async def test_one_id_given_to_two_uploads_at_once_lists_one(
    tmp_path, database_url, storage_url, s3_client, sizes, caplog
):
    config = shared_config(tmp_path, database_url, storage_url)
    catalog, objects_ = shared(config, database_url, storage_url)
    await objects_.prepare()
    await catalog.open()
    image_id = '5d6b2d8e-0b5c-4a0e-9d1e-3c1f2a4b6c7d'
    files = []
    for number, size in enumerate(sizes):
        path = tmp_path / f'upload-{number}.jpeg'
        path.write_bytes(encode(gradient(size), 'JPEG'))
        files.append((size, path))
    try:
        added = await asyncio.gather(
            *(
                catalog.add(image_id, size, path.stat().st_size, path)
                for size, path in files
            )
        )
    finally:
        await catalog.close()
        await objects_.release()

    [listed] = [record for record in added if record is not None]
    assert added.count(None) == 1
    # The object of the image listed is there, and no other.
    prefix = storage_url.split('/', 3)[3]
    assert await objects(s3_client, storage_url) == [f'{prefix}/{listed.name}']
    same_name = sizes[0] == sizes[1]
    said = [r.message for r in caplog.records if r.name == 'asgilook.catalog']
    assert any('were given the id' in line for line in said) == same_name


def test_what_is_read_while_the_token_moves_is_not_remembered():
    known = Known()
    record = Record('an-id', (64, 48), 1234, 0)
    assert known.records(b'7') == {}

    # A change was heard of during the read: its record may be the old one.
    known.remember(b'8', 'an-id', record, 10)
    # Nor while no change can be heard of.
    known.remember(None, 'an-id', record, 10)
    kept_before = dict(known.records(b'7'))
    known.remember(b'7', 'an-id', record, 10)

    assert kept_before == {}
    assert known.records(b'7') == {'an-id': record}
    assert known.records(b'8') == {}


async def test_an_object_streams_in_chunks_as_stored(tmp_path, storage_url):
    objects = Objects(storage_url, tmp_path)
    await objects.prepare()
    data = encode(gradient((640, 400)), 'JPEG')
    try:
        await objects.write(tmp_path / 'upload.jpeg', data)
        await objects.put('image.jpeg', tmp_path / 'upload.jpeg')
        objects.kept(tmp_path / 'upload.jpeg')
        stored = await objects.open('image.jpeg')
        stored.CHUNK = 1024
        chunks = [chunk async for chunk in stored]
        await stored.close()
    finally:
        await objects.release()

    assert len(chunks) > 1
    assert b''.join(chunks) == data
