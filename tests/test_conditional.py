"""HTTP validators, 304 Not Modified and HEAD, on every GET route."""

import datetime

import fakeredis
import falcon
import falcon.testing
import pytest

from asgilook.app import create_served_app

from .fakes import as_listed, owner
from .images import encode, gradient, stored_file

# Headers that a cached answer repeats exactly.
MATTERS = ('Content-Type', 'ETag', 'Last-Modified', 'Cache-Control', 'Content-Length')
IMMUTABLE = 'public, max-age=31536000, immutable'


def _matters(resp):
    return {name: resp.headers.get(name) for name in MATTERS}


def test_a_hit_has_the_headers_of_the_miss_that_stored_it(client, uri):
    miss = client.simulate_get(uri)
    hit = client.simulate_get(uri)

    assert (miss.headers['X-ASGILook-Cache'], hit.headers['X-ASGILook-Cache']) == (
        'Miss',
        'Hit',
    )
    assert _matters(hit) == _matters(miss)
    assert miss.headers['ETag'].startswith('"')
    assert int(miss.headers['Content-Length']) == len(miss.content) > 0


def test_images_and_thumbnails_never_change_under_their_url(client, image):
    for uri in [image['image'], *image['thumbnails']]:
        resp = client.simulate_get(uri)
        assert resp.headers['Cache-Control'] == IMMUTABLE
        assert resp.headers['Last-Modified'] == image['modified']
        assert resp.headers['Content-Type'] == 'image/jpeg'
    tags = {client.simulate_get(uri).headers['ETag'] for uri in image['thumbnails']}
    assert len(tags) == len(image['thumbnails'])


def test_the_list_must_be_revalidated(client, image):
    resp = client.simulate_get('/images')

    assert resp.headers['Cache-Control'] == 'no-cache'
    assert 'Last-Modified' not in resp.headers


@pytest.mark.parametrize('state', ['Miss', 'Hit'])
def test_head_has_the_headers_of_get_and_no_body(client, uri, state):
    if state == 'Hit':
        get = client.simulate_get(uri)
        head = client.simulate_head(uri)
    else:
        head = client.simulate_head(uri)
        get = client.simulate_get(uri)

    assert head.status_code == 200
    assert head.content == b''
    assert head.headers['X-ASGILook-Cache'] == state
    assert _matters(head) == _matters(get)


def test_head_of_a_missing_image_is_a_404(client):
    uri = '/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg'

    assert client.simulate_head(uri).status_code == 404
    assert (
        client.simulate_head(uri.replace('images', 'thumbnails', 1)).status_code == 404
    )


@pytest.mark.parametrize('state', ['Miss', 'Hit'])
@pytest.mark.parametrize('method', ['GET', 'HEAD'])
def test_a_current_etag_is_not_modified(
    config, client, redis_server, uri, state, method
):
    etag = client.simulate_get(uri).headers['ETag']
    if state == 'Miss':
        # Another worker, with a cache that does not have it.
        fakeredis.FakeRedis(server=redis_server).flushall()
        client = falcon.testing.TestClient(create_served_app(config))

    resp = client.simulate_request(method, uri, headers={'If-None-Match': etag})

    assert resp.status_code == 304
    assert resp.content == b''
    assert resp.headers['X-ASGILook-Cache'] == state
    assert resp.headers['ETag'] == etag
    assert 'Content-Length' not in resp.headers
    assert 'Content-Type' not in resp.headers


@pytest.mark.parametrize(
    'header',
    [
        '"something-else"',
        'W/"something-else", "another"',
    ],
)
def test_another_etag_gets_the_whole_answer(client, uri, header):
    full = client.simulate_get(uri)

    resp = client.simulate_get(uri, headers={'If-None-Match': header})

    assert resp.status_code == 200
    assert resp.content == full.content


@pytest.mark.parametrize('form', ['weak', 'list', 'star'])
def test_if_none_match_forms(client, uri, form):
    etag = client.simulate_get(uri).headers['ETag']
    header = {
        'weak': f'W/{etag}',
        'list': f'"older", {etag}',
        'star': '*',
    }[form]

    assert (
        client.simulate_get(uri, headers={'If-None-Match': header}).status_code == 304
    )


def test_the_list_etag_changes_with_the_catalog(client, image):
    before = client.simulate_get('/images').headers['ETag']

    second = as_listed(
        client.simulate_post('/images', body=encode(gradient(), 'PNG')).json
    )
    after_upload = client.simulate_get('/images', headers={'If-None-Match': before})
    client.simulate_delete(second['image'], headers=owner(second))
    after_delete = client.simulate_get(
        '/images', headers={'If-None-Match': after_upload.headers['ETag']}
    )

    assert after_upload.status_code == after_delete.status_code == 200
    assert [item['id'] for item in after_upload.json] == [image['id'], second['id']]
    assert after_delete.json == [image]
    # The same images, the same list: the tag names the content.
    assert after_delete.headers['ETag'] == before != after_upload.headers['ETag']


@pytest.mark.parametrize('state', ['Miss', 'Hit'])
def test_if_modified_since(client, redis_server, image, state):
    uris = [image['image'], image['thumbnails'][0]]
    modified = falcon.http_date_to_dt(image['modified'])
    if state == 'Hit':
        for uri in uris:
            client.simulate_get(uri)

    for uri in uris:
        later = client.simulate_get(
            uri, headers={'If-Modified-Since': falcon.dt_to_http(modified)}
        )
        earlier = client.simulate_get(
            uri,
            headers={
                'If-Modified-Since': falcon.dt_to_http(
                    modified - datetime.timedelta(seconds=1)
                )
            },
        )
        assert later.status_code == 304
        assert later.headers['X-ASGILook-Cache'] == state
        assert earlier.status_code == 200
        assert earlier.content


def test_if_none_match_wins_over_if_modified_since(client, image):
    resp = client.simulate_get(
        image['image'],
        headers={'If-None-Match': '"older"', 'If-Modified-Since': image['modified']},
    )

    assert resp.status_code == 200


@pytest.mark.parametrize('since', ['yesterday', 'Tue, 99 Foo 2019 17:32:19 GMT'])
def test_a_date_that_does_not_parse_is_ignored(client, image, since):
    resp = client.simulate_get(image['image'], headers={'If-Modified-Since': since})

    assert resp.status_code == 200
    assert resp.content


def test_the_list_ignores_if_modified_since(client, image):
    resp = client.simulate_get(
        '/images', headers={'If-Modified-Since': 'Fri, 01 Jan 2100 00:00:00 GMT'}
    )

    assert resp.status_code == 200
    assert resp.json == [image]


def test_validators_without_redis(client, redis_server, image, storage_path):
    redis_server.connected = False
    stored = stored_file(storage_path, image['id']).read_bytes()

    full = client.simulate_get(image['image'])
    again = client.simulate_get(
        image['image'], headers={'If-None-Match': full.headers['ETag']}
    )
    head = client.simulate_head(image['image'])

    assert full.headers['X-ASGILook-Cache'] == 'Bypass'
    assert full.content == stored
    assert again.status_code == 304
    assert again.content == b''
    assert _matters(head) == _matters(full)


def test_errors_carry_no_validators(client):
    resp = client.simulate_get('/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg')

    assert resp.status_code == 404
    assert 'ETag' not in resp.headers
    assert 'Cache-Control' not in resp.headers
