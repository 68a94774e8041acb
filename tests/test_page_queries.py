"""Queries of the list that are no page: 400s, and redirects to a page's one URL."""

import base64

import fakeredis
import falcon
import falcon.testing
import pytest

from asgilook.app import create_served_app

from .paging import LINK, next_page, upload_many


@pytest.fixture
async def conductor(config):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        yield conductor


def assert_bad_request(resp, title: str) -> None:
    assert resp.status_code == 400
    assert resp.headers['Content-Type'] == falcon.MEDIA_JSON
    assert resp.json['title'] == title
    assert resp.json['description']
    assert 'Link' not in resp.headers


@pytest.mark.parametrize(
    'query',
    [
        'limit=0',
        'limit=1001',
        'limit=abc',
        'limit=-1',
        'limit=',
        'limit',
        'limit=2.5',
        'limit=1e3',
        'limit=%EF%BC%95',  # a fullwidth 5
        'after=AQAAAAAAAAAB',
        # More digits than Python turns into a number without being told to.
        'limit=' + '1' * 5000,
    ],
)
async def test_a_bad_limit_is_400(conductor, query):
    assert_bad_request(
        await conductor.simulate_get(f'/images?{query}'), 'Invalid page size'
    )


@pytest.mark.parametrize(
    'query',
    ['limit=2&limit=2', 'limit=2&limit=3', 'limit=2&after=AQAAAAAAAAAB&after=AQ'],
)
async def test_a_repeated_parameter_is_400(conductor, query):
    assert_bad_request(
        await conductor.simulate_get(f'/images?{query}'), 'Repeated parameter'
    )


@pytest.mark.parametrize(
    'query', ['limit=2&order=', 'limit=2&order=desc', 'limit=2&order=NEWEST']
)
async def test_an_unknown_order_is_400(conductor, query):
    assert_bad_request(
        await conductor.simulate_get(f'/images?{query}'), 'Invalid order'
    )


@pytest.mark.parametrize('query', ['x=1', 'limit=2&sort=desc', 'page=2', 'LIMIT=2'])
async def test_an_unknown_parameter_is_400(conductor, query):
    assert_bad_request(
        await conductor.simulate_get(f'/images?{query}'), 'Unknown parameter'
    )


def cursor_of(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


@pytest.mark.parametrize(
    'cursor',
    [
        '',
        'not-a-cursor',
        '%%%',
        'AQ',
        'AQAAAAAAAAAAAAAA',
        cursor_of(b'\x01' + (2**63).to_bytes(8, 'big')),
        cursor_of(b'\x01' + (2**64 - 1).to_bytes(8, 'big')),
        cursor_of(b'\x01' + (3).to_bytes(9, 'big')),
        cursor_of(b'\x02' + (3).to_bytes(8, 'big')),
        cursor_of(b'\x01' + (3).to_bytes(8, 'big')) + '==',
        cursor_of(b'\x01' + (3).to_bytes(8, 'big')) + '%3D',
        '%C3%A9',
    ],
)
async def test_a_bad_cursor_is_400(conductor, cursor):
    await upload_many(conductor, 3)

    resp = await conductor.simulate_get(f'/images?limit=2&after={cursor}')

    assert_bad_request(resp, 'Invalid cursor')


async def test_a_tampered_cursor_is_400(conductor):
    await upload_many(conductor, 3)
    uri = next_page(await conductor.simulate_get('/images?limit=1'))
    cursor = LINK.fullmatch(f'<{uri}>; rel="next"')[3]
    # Another version byte, and the same bytes in standard base64's alphabet.
    tampered = [
        'B' + cursor[1:],
        cursor + 'A',
        cursor[:-1],
        cursor.replace('A', '+', 1),
    ]

    for bad in tampered:
        resp = await conductor.simulate_get(f'/images?limit=1&after={bad}')
        assert_bad_request(resp, 'Invalid cursor')


async def test_a_cursor_past_the_end_is_an_empty_last_page(conductor):
    await upload_many(conductor, 2)
    cursor = cursor_of(b'\x01' + (2**63 - 1).to_bytes(8, 'big'))

    resp = await conductor.simulate_get(f'/images?limit=2&after={cursor}')

    assert resp.status_code == 200
    assert resp.json == []
    assert 'Link' not in resp.headers


@pytest.mark.parametrize(
    ('query', 'canonical'),
    [
        ('limit=010', 'limit=10'),
        ('limit=' + '0' * 5000 + '5', 'limit=5'),
        ('limit=%32', 'limit=2'),
        ('limit=2&', 'limit=2'),
        ('&limit=2', 'limit=2'),
        ('limit=+2', 'limit=2'),
        ('after={cursor}&limit=2', 'limit=2&after={cursor}'),
        ('limit=02&after={cursor}', 'limit=2&after={cursor}'),
        ('limit=2&order=oldest', 'limit=2'),
        ('order=newest&limit=2', 'limit=2&order=newest'),
        ('after={cursor}&order=newest&limit=2', 'limit=2&order=newest&after={cursor}'),
        # The cursor of the very start names no image: the first page.
        (f'limit=2&after={cursor_of(bytes([1, 0, 0, 0, 0, 0, 0, 0, 0]))}', 'limit=2'),
    ],
)
async def test_another_spelling_of_a_page_redirects_to_its_one_url(
    conductor, redis_server, query, canonical
):
    await upload_many(conductor, 3)
    uri = next_page(await conductor.simulate_get('/images?limit=1'))
    cursor = LINK.fullmatch(f'<{uri}>; rel="next"')[3]

    resp = await conductor.simulate_get(f'/images?{query.format(cursor=cursor)}')

    assert resp.status_code == 308
    location = f'/images?{canonical.format(cursor=cursor)}'
    assert resp.headers['Location'] == location
    assert (await conductor.simulate_get(location)).status_code == 200
    # Never kept under its own spelling.
    keys = fakeredis.FakeRedis(server=redis_server).keys('asgilook:/images?*')
    assert sorted(keys) == sorted(
        {b'asgilook:/images?limit=1', f'asgilook:{location}'.encode()}
    )


async def test_the_largest_page_is_a_thousand(conductor):
    images = await upload_many(conductor, 2)

    resp = await conductor.simulate_get('/images?limit=1000')

    assert resp.json == images
