"""Preconditions: If-Match and If-Unmodified-Since, 412 when they fail, and a
DELETE's If-None-Match, 412 when it names the image (RFC 9110)."""

import asyncio
import datetime

import fakeredis
import falcon
import falcon.testing
import pytest

from asgilook.app import create_served_app

from .fakes import owner, upload_through
from .images import image_files
from .streams import WAIT

MSGPACK = {'Accept': 'application/msgpack'}


def _before(image, seconds=1):
    """An HTTP date seconds before the image's Last-Modified."""
    modified = falcon.http_date_to_dt(image['modified'])
    return falcon.dt_to_http(modified - datetime.timedelta(seconds=seconds))


# What the 412 of a failed If-Match or If-Unmodified-Since says.
GET_IT_AGAIN = 'GET it again to learn its current ETag'
# What the 412 of a DELETE whose If-None-Match names the image says
# (RFC 9110, section 13.1.2).
NAMES_IT = 'If-None-Match names what is here now'


def _assert_412(resp, says=GET_IT_AGAIN):
    assert resp.status_code == 412
    assert resp.json['title'] == 'Precondition failed'
    assert says in resp.json['description']
    # Nothing that describes the answer it replaces, for a cache to keep.
    for name in ('ETag', 'Last-Modified', 'Cache-Control', 'Link'):
        assert name not in resp.headers


def _etag(client, uri):
    return client.simulate_get(uri).headers['ETag']


@pytest.mark.parametrize(
    'precondition',
    [
        'other tag',
        'other tags',
        'weak tag',
        'unmodified since before',
        'none but star',
        'none but its tag',
        'none but its tag, weak',
        'none but a list with its tag',
        'its tag, and none but its tag',
    ],
)
def test_a_delete_whose_precondition_fails_is_412_and_deletes_nothing(
    client, image, storage_path, precondition
):
    etag = _etag(client, image['image'])
    stored = client.simulate_get(image['image']).content
    thumbnail = client.simulate_get(image['thumbnails'][0])
    files = image_files(storage_path)
    headers = {
        'other tag': {'If-Match': '"zzz"'},
        'other tags': {'If-Match': '"zzz", "older"'},
        # A weak tag never matches: If-Match compares strongly.
        'weak tag': {'If-Match': f'W/{etag}'},
        'unmodified since before': {'If-Unmodified-Since': _before(image)},
        'none but star': {'If-None-Match': '*'},
        'none but its tag': {'If-None-Match': etag},
        # If-None-Match compares weakly.
        'none but its tag, weak': {'If-None-Match': f'W/{etag}'},
        'none but a list with its tag': {'If-None-Match': f'"older", {etag}'},
        'its tag, and none but its tag': {'If-Match': etag, 'If-None-Match': etag},
    }[precondition]

    resp = client.simulate_delete(image['image'], headers={**owner(image), **headers})

    _assert_412(resp, NAMES_IT if 'If-None-Match' in headers else GET_IT_AGAIN)
    again = client.simulate_get(image['image'])
    assert (again.status_code, again.content) == (200, stored)
    assert client.simulate_get('/images').json == [image]
    assert image_files(storage_path) == files
    # No cached answer was dropped: they are still Hits.
    assert again.headers['X-ASGILook-Cache'] == 'Hit'
    kept = client.simulate_get(image['thumbnails'][0])
    assert kept.headers['X-ASGILook-Cache'] == 'Hit'
    assert kept.content == thumbnail.content


@pytest.mark.parametrize(
    'precondition',
    [
        'current tag',
        'star',
        'a list with the current tag',
        'unmodified since its date',
        'unmodified since later',
        'a date that does not parse',
        'if-match wins over if-unmodified-since',
        'none but another tag',
        'if-modified-since is for a get',
    ],
)
def test_a_delete_whose_precondition_holds_deletes(
    client, image, storage_path, precondition
):
    etag = _etag(client, image['image'])
    headers = {
        'current tag': {'If-Match': etag},
        'star': {'If-Match': '*'},
        'a list with the current tag': {'If-Match': f'"older", {etag}'},
        'unmodified since its date': {'If-Unmodified-Since': image['modified']},
        'unmodified since later': {'If-Unmodified-Since': _before(image, -60)},
        'a date that does not parse': {'If-Unmodified-Since': 'yesterday'},
        # If-Unmodified-Since is ignored when If-Match is sent.
        'if-match wins over if-unmodified-since': {
            'If-Match': etag,
            'If-Unmodified-Since': _before(image),
        },
        'none but another tag': {'If-None-Match': '"older", W/"zzz"'},
        'if-modified-since is for a get': {'If-Modified-Since': image['modified']},
    }[precondition]

    resp = client.simulate_delete(image['image'], headers={**owner(image), **headers})

    assert resp.status_code == 204
    assert client.simulate_get(image['image']).status_code == 404
    assert client.simulate_get('/images').json == []
    assert image_files(storage_path) == []


def test_a_delete_is_refused_or_not_found_before_its_preconditions(client, image):
    """Preconditions are judged only where the answer would be a 2xx."""
    headers = {'If-Match': '"zzz"'}

    unauthorized = client.simulate_delete(image['image'], headers=headers)
    client.simulate_delete(image['image'], headers=owner(image))
    gone = client.simulate_delete(image['image'], headers={**headers, **owner(image)})

    assert unauthorized.status_code == 401
    assert gone.status_code == 404
    assert gone.json['title'] == 'No such image'


@pytest.mark.parametrize('state', ['Miss', 'Hit'])
@pytest.mark.parametrize('method', ['GET', 'HEAD'])
@pytest.mark.parametrize('if_match', ['"zzz"', 'weak'])
def test_a_get_whose_if_match_fails_is_412(
    config, client, redis_server, uri, state, method, if_match
):
    etag = _etag(client, uri)
    if state == 'Miss':
        # Another worker, with a cache that does not have it.
        fakeredis.FakeRedis(server=redis_server).flushall()
        client = falcon.testing.TestClient(create_served_app(config))
    header = f'W/{etag}' if if_match == 'weak' else if_match

    resp = client.simulate_request(method, uri, headers={'If-Match': header})

    assert resp.status_code == 412
    assert resp.headers['X-ASGILook-Cache'] == state
    if method == 'GET':
        _assert_412(resp)
    else:
        assert resp.content == b''


@pytest.mark.parametrize('method', ['GET', 'HEAD'])
@pytest.mark.parametrize('form', ['tag', 'star', 'list'])
def test_a_get_whose_if_match_holds_is_the_whole_answer(client, uri, method, form):
    full = client.simulate_get(uri)
    etag = full.headers['ETag']
    header = {'tag': etag, 'star': '*', 'list': f'"older", {etag}'}[form]

    resp = client.simulate_request(method, uri, headers={'If-Match': header})

    assert resp.status_code == 200
    assert resp.headers['ETag'] == etag
    assert resp.content == (full.content if method == 'GET' else b'')


def test_if_match_is_judged_before_if_none_match(client, uri):
    etag = _etag(client, uri)

    failed = client.simulate_get(
        uri, headers={'If-Match': '"zzz"', 'If-None-Match': etag}
    )
    current = client.simulate_get(
        uri, headers={'If-Match': etag, 'If-None-Match': etag}
    )

    assert failed.status_code == 412
    assert current.status_code == 304


@pytest.mark.parametrize('kind', ['image', 'thumbnail'])
def test_if_unmodified_since(client, image, kind):
    uri = image['image'] if kind == 'image' else image['thumbnails'][0]

    earlier = client.simulate_get(uri, headers={'If-Unmodified-Since': _before(image)})
    same = client.simulate_get(uri, headers={'If-Unmodified-Since': image['modified']})
    ignored = client.simulate_get(
        uri, headers={'If-Match': '*', 'If-Unmodified-Since': _before(image)}
    )

    _assert_412(earlier)
    assert (same.status_code, ignored.status_code) == (200, 200)
    assert same.content == ignored.content != b''


def test_the_list_has_no_date_to_be_unmodified_since(client, image):
    resp = client.simulate_get(
        '/images', headers={'If-Unmodified-Since': _before(image, 3600)}
    )

    assert resp.status_code == 200
    assert resp.json == [image]


def test_the_lists_tag_names_one_representation(client, image):
    json_tag = _etag(client, '/images')
    msgpack_tag = client.simulate_get('/images', headers=MSGPACK).headers['ETag']

    other = client.simulate_get('/images', headers={**MSGPACK, 'If-Match': json_tag})
    same = client.simulate_get('/images', headers={**MSGPACK, 'If-Match': msgpack_tag})

    assert json_tag != msgpack_tag
    assert other.status_code == 412
    assert same.status_code == 200


async def test_a_hit_kept_in_memory_is_judged_too(config):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor)
        uri = image['thumbnails'][0]
        await conductor.simulate_get(uri)
        kept = await conductor.simulate_get(uri)
        failed = await conductor.simulate_get(uri, headers={'If-Match': '"zzz"'})
        held = await conductor.simulate_get(
            uri, headers={'If-Match': kept.headers['ETag']}
        )

    assert kept.headers['X-ASGILook-Cache'] == 'Hit'
    _assert_412(failed)
    assert failed.headers['X-ASGILook-Cache'] == 'Hit'
    assert (held.status_code, held.content) == (200, kept.content)


async def test_a_stream_whose_if_match_fails_is_412(config):
    async with (
        falcon.testing.ASGIConductor(create_served_app(config)) as conductor,
        asyncio.timeout(WAIT),
    ):
        resp = await conductor.simulate_get('/events', headers={'If-Match': '"zzz"'})

    assert resp.status_code == 412
    assert resp.json['title'] == 'Precondition failed'
