"""Pages of the list: `GET /images?limit=N`, followed through its Link headers."""

import fakeredis
import falcon
import falcon.testing
import pytest

from asgilook.app import create_served_app

from .fakes import owner, two_workers, upload_through
from .paging import SMALL, ids, next_page, upload_many, walk


@pytest.fixture
async def conductor(config):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        yield conductor


@pytest.fixture
async def workers(storage_path, redis_server):
    async with two_workers(storage_path, redis_server) as workers:
        yield workers


async def test_without_parameters_the_list_is_whole(conductor):
    images = await upload_many(conductor, 4)

    resp = await conductor.simulate_get('/images')

    assert resp.json == images
    assert 'Link' not in resp.headers


async def test_a_page_is_the_oldest_images_and_links_to_the_next(conductor):
    images = await upload_many(conductor, 5)

    first = await conductor.simulate_get('/images?limit=2')

    assert first.status_code == 200
    assert first.json == images[:2]
    assert first.headers['Cache-Control'] == 'no-cache'
    uri = next_page(first)
    assert uri is not None
    assert uri.startswith('/images?limit=2&after=')
    second = await conductor.simulate_get(uri)
    assert second.json == images[2:4]
    last = await conductor.simulate_get(next_page(second))
    assert last.json == images[4:]
    assert 'Link' not in last.headers


async def test_a_page_that_ends_the_list_exactly_has_no_link(conductor):
    images = await upload_many(conductor, 4)

    pages = await walk([conductor], '/images?limit=2')

    assert pages == [images[:2], images[2:]]


async def test_a_page_of_an_empty_list_is_empty_and_last(conductor):
    resp = await conductor.simulate_get('/images?limit=10')

    assert resp.status_code == 200
    assert resp.json == []
    assert 'Link' not in resp.headers


async def test_following_the_links_gives_every_image_once_in_upload_order(
    conductor,
):
    images = await upload_many(conductor, 25)

    pages = await walk([conductor], '/images?limit=7')

    assert [len(page) for page in pages] == [7, 7, 7, 4]
    assert [image for page in pages for image in page] == images
    assert (await conductor.simulate_get('/images')).json == images


async def test_newest_first_pages_walk_the_list_backwards(conductor):
    images = await upload_many(conductor, 5)

    first = await conductor.simulate_get('/images?limit=2&order=newest')

    assert first.json == images[:2:-1]
    assert next_page(first).startswith('/images?limit=2&order=newest&after=')
    pages = await walk([conductor], '/images?limit=2&order=newest')
    assert pages == [images[:2:-1], images[2:0:-1], images[:1]]


async def test_a_newest_first_page_shows_an_image_added_since_once(conductor):
    images = await upload_many(conductor, 4)
    first = await conductor.simulate_get('/images?limit=2&order=newest')

    await upload_many(conductor, 1)
    second = await conductor.simulate_get(next_page(first))

    # Pages go back in time from where the first one stood.
    assert second.json == images[1::-1]
    assert 'Link' not in second.headers


async def test_paging_through_a_changing_catalog_skips_and_repeats_nothing(
    workers,
):
    one, other = workers
    images = await upload_many(one, 10)
    # Every page kept by both workers first, so that what follows is served
    # from caches that the changes must correct.
    for _ in range(2):
        assert [image for page in await walk([one, other]) for image in page] == (
            images
        )
        assert [image for page in await walk([other, one]) for image in page] == (
            images
        )

    first = await one.simulate_get('/images?limit=3')
    assert first.json == images[:3]
    # The image the cursor names, and one not reached yet, go; one comes.
    for gone in (images[2], images[4]):
        assert (
            await other.simulate_delete(gone['image'], headers=owner(gone))
        ).status_code == 204
    added = [await upload_through(one, SMALL)]
    second = await other.simulate_get(next_page(first))
    assert second.json == [images[3], *images[5:7]]
    # One already seen goes; another comes through the other worker.
    assert (
        await one.simulate_delete(images[0]['image'], headers=owner(images[0]))
    ).status_code == 204
    added.append(await upload_through(other, SMALL))
    rest = await walk([one, other], next_page(second))

    seen = first.json + second.json + [image for page in rest for image in page]
    assert ids(seen) == ids([*images[:4], *images[5:], *added])
    assert rest[-1][-2:] == added


async def test_a_page_is_cached_with_its_link(conductor, redis_server):
    await upload_many(conductor, 3)

    computed = await conductor.simulate_get('/images?limit=2')
    cached = await conductor.simulate_get('/images?limit=2')

    assert computed.headers['X-ASGILook-Cache'] == 'Miss'
    assert cached.headers['X-ASGILook-Cache'] == 'Hit'
    assert cached.content == computed.content
    for header in ('Link', 'ETag', 'Cache-Control', 'Content-Type'):
        assert cached.headers[header] == computed.headers[header]
    keys = fakeredis.FakeRedis(server=redis_server).keys('asgilook:/images?*')
    assert keys == [b'asgilook:/images?limit=2']


async def test_another_worker_serves_a_page_from_redis(workers):
    one, other = workers
    await upload_many(one, 3)
    computed = await one.simulate_get('/images?limit=2')

    resp = await other.simulate_get('/images?limit=2')

    assert resp.headers['X-ASGILook-Cache'] == 'Hit'
    assert resp.content == computed.content
    assert resp.headers['Link'] == computed.headers['Link']


async def test_an_upload_shows_on_the_last_page_once_cached(workers):
    one, other = workers
    images = await upload_many(one, 3)
    last = next_page(await other.simulate_get('/images?limit=2'))
    for _ in range(2):
        kept = await other.simulate_get(last)
    assert kept.headers['X-ASGILook-Cache'] == 'Hit'
    assert kept.json == images[2:]

    added = await upload_through(one, SMALL)
    resp = await other.simulate_get(last)

    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert resp.json == [images[2], added]


async def test_a_delete_by_another_worker_leaves_the_page_at_once(
    workers, redis_server
):
    one, other = workers
    images = await upload_many(one, 3)
    for _ in range(2):
        kept = await other.simulate_get('/images?limit=2')
    assert kept.headers['X-ASGILook-Cache'] == 'Hit'
    # Without Redis's copy, a Hit now comes from the worker's memory.
    await fakeredis.FakeAsyncRedis(server=redis_server).flushall()
    kept = await other.simulate_get('/images?limit=2')
    assert kept.headers['X-ASGILook-Cache'] == 'Hit'

    assert (
        await one.simulate_delete(images[1]['image'], headers=owner(images[1]))
    ).status_code == 204
    resp = await other.simulate_get('/images?limit=2')

    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert resp.json == [images[0], images[2]]
    assert 'Link' not in resp.headers


async def test_a_page_answers_304_to_its_etag_until_it_changes(workers):
    one, other = workers
    images = await upload_many(one, 5)
    page = await one.simulate_get('/images?limit=2')
    etag = page.headers['ETag']
    assert etag != (await one.simulate_get(next_page(page))).headers['ETag']
    asked = {'If-None-Match': etag}
    for worker in (one, other, one):
        resp = await worker.simulate_get('/images?limit=2', headers=asked)
        assert resp.status_code == 304
        assert resp.headers['ETag'] == etag
        assert resp.content == b''

    # A page that is full and not the last shows the same after an upload.
    await upload_through(one, SMALL)
    unchanged = await other.simulate_get('/images?limit=2')
    assert unchanged.headers['X-ASGILook-Cache'] == 'Miss'
    assert unchanged.headers['ETag'] == etag
    assert (await other.simulate_get('/images?limit=2', headers=asked)).status_code == (
        304
    )

    assert (
        await one.simulate_delete(images[1]['image'], headers=owner(images[1]))
    ).status_code == 204
    for worker in (one, other):
        resp = await worker.simulate_get('/images?limit=2', headers=asked)
        assert resp.status_code == 200
        assert resp.headers['ETag'] != etag
        assert resp.json == [images[0], images[2]]


async def test_a_last_page_that_gains_a_next_one_changes_its_etag(conductor):
    await upload_many(conductor, 4)
    last = next_page(await conductor.simulate_get('/images?limit=2'))
    page = await conductor.simulate_get(last)
    assert 'Link' not in page.headers

    await upload_through(conductor, SMALL)
    resp = await conductor.simulate_get(
        last, headers={'If-None-Match': page.headers['ETag']}
    )

    assert resp.status_code == 200
    assert resp.json == page.json
    assert next_page(resp) is not None
    assert resp.headers['ETag'] != page.headers['ETag']


async def test_head_of_a_page_has_the_headers_of_its_get(conductor):
    await upload_many(conductor, 3)
    page = await conductor.simulate_get('/images?limit=2')

    for _ in range(2):
        resp = await conductor.simulate_head('/images?limit=2')
        assert resp.status_code == 200
        assert resp.content == b''
        for header in ('Link', 'ETag', 'Content-Type'):
            assert resp.headers[header] == page.headers[header]
    head = await conductor.simulate_head('/images?limit=0')
    assert head.status_code == 400
