import logging

import fakeredis
import falcon
import falcon.asgi
import falcon.testing
import msgpack
import pytest

from asgilook.app import create_served_app
from asgilook.cache import RedisCache

from .fakes import FakeClock, as_listed, make_config, owner
from .images import encode, gradient, stored_file


def test_entries_are_msgpack_under_the_path(client, redis, png_image):
    image = as_listed(client.simulate_post('/images', body=png_image).json)
    listing = client.simulate_get('/images')

    content_type, body, version, headers, signature, form = msgpack.unpackb(
        redis.get('asgilook:/images')
    )
    assert (content_type, body) == ('application/json', listing.content)
    assert version
    assert len(signature) == 32
    assert form == 2
    assert headers == {
        'ETag': listing.headers['ETag'],
        'Cache-Control': 'no-cache',
        'Vary': 'Accept',
    }
    assert 3590 < redis.ttl('asgilook:/images') <= 3600
    client.simulate_get(image['thumbnails'][0])
    assert redis.exists(f'asgilook:{image["thumbnails"][0]}')


def test_post_invalidates_the_list(client, png_image):
    assert client.simulate_get('/images').json == []
    assert client.simulate_get('/images').headers['X-ASGILook-Cache'] == 'Hit'

    image = as_listed(client.simulate_post('/images', body=png_image).json)

    resp = client.simulate_get('/images')
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert resp.json == [image]
    assert client.simulate_get('/images').headers['X-ASGILook-Cache'] == 'Hit'


def test_repeated_get_of_an_image_is_the_same_bytes(client, png_image, storage_path):
    image = as_listed(client.simulate_post('/images', body=png_image).json)
    stored = stored_file(storage_path, image['id']).read_bytes()

    first = client.simulate_get(image['image'])
    second = client.simulate_get(image['image'])

    assert first.headers['X-ASGILook-Cache'] == 'Miss'
    assert second.headers['X-ASGILook-Cache'] == 'Hit'
    assert first.content == second.content == stored
    for name in ('Content-Type', 'Content-Length'):
        assert first.headers[name] == second.headers[name]


def test_repeated_get_of_a_thumbnail_is_the_same_bytes(client, png_image):
    uri = client.simulate_post('/images', body=png_image).json['thumbnails'][0]

    first = client.simulate_get(uri)
    second = client.simulate_get(uri)

    assert (first.headers['X-ASGILook-Cache'], second.headers['X-ASGILook-Cache']) == (
        'Miss',
        'Hit',
    )
    assert first.content == second.content
    assert second.headers['Content-Type'] == 'image/jpeg'


def test_errors_are_not_cached(client, redis):
    uri = '/images/1a256a8a-2063-46ff-b53f-d04d5bcf5eee.jpeg'
    for _ in range(2):
        resp = client.simulate_get(uri)
        assert resp.status_code == 404
        assert resp.headers.get('X-ASGILook-Cache') != 'Hit'
    assert not redis.exists(f'asgilook:{uri}')


def test_redis_down_at_start_bypasses_the_cache(client, redis_server, caplog):
    redis_server.connected = False
    caplog.set_level(logging.WARNING, logger='asgilook.cache')

    upload = client.simulate_post('/images', body=encode(gradient(), 'PNG'))
    assert upload.status_code == 201
    image = as_listed(upload.json)
    for uri in ['/images', image['image'], image['thumbnails'][0]] * 2:
        resp = client.simulate_get(uri)
        assert resp.status_code == 200
        assert resp.headers['X-ASGILook-Cache'] == 'Bypass'
    assert client.simulate_get('/images').json == [image]

    warnings = [r for r in caplog.records if r.name == 'asgilook.cache']
    assert len(warnings) == 1
    assert 'redis://localhost' in warnings[0].getMessage()
    assert 'without the cache' in warnings[0].getMessage()


async def test_redis_lost_and_back_while_serving(config, redis_server, png_image):
    config.clock = clock = FakeClock()
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        upload = await conductor.simulate_post('/images', body=png_image)
        uri = upload.json['thumbnails'][0]
        first = await conductor.simulate_get(uri)
        assert first.headers['X-ASGILook-Cache'] == 'Miss'

        redis_server.connected = False
        # What this process keeps in memory is served while Redis answered
        # within liveness; after that, an outage shows.
        clock.advance(config.cache_timing.liveness)
        down = await conductor.simulate_get(uri)
        assert down.status_code == 200
        assert down.headers['X-ASGILook-Cache'] == 'Bypass'
        assert down.content == first.content

        again = await conductor.simulate_post('/images', body=png_image)
        assert again.status_code == 201

        redis_server.connected = True
        back = await conductor.simulate_get(uri)
        assert back.headers['X-ASGILook-Cache'] == 'Hit'
        assert back.content == first.content


@pytest.mark.parametrize(
    'garbage',
    [
        b'\xc1\xc1 not msgpack',
        msgpack.packb(5),
        msgpack.packb(['image/jpeg', 'text, not bytes']),
        msgpack.packb(['a', b'b', 'c', 'd']),
        msgpack.packb({'content_type': b'', 'body': b'', 'version': b''}),
        msgpack.packb(['application/json', b'[]']),
        msgpack.packb(['application/json', b'[]', 7, {}]),
        msgpack.packb(['application/json', b'[]', 'v']),
        msgpack.packb(['application/json', b'[]', 'v', {'ETag': 7}]),
        # An entry of an older asgilook (signed over its whole body).
        msgpack.packb(['application/json', b'[]', 'v', {}, b'signature', 1]),
        msgpack.packb(['application/json', b'[]', 'v', {}, 'not bytes', 2]),
    ],
    ids=[
        'not-msgpack',
        'int',
        'str-body',
        'four',
        'map',
        'two-elements',
        'int-version',
        'three-elements',
        'int-header',
        'older-format',
        'str-signature',
    ],
)
def test_an_entry_that_cannot_be_decoded_is_a_miss(client, redis, garbage):
    redis.set('asgilook:/images', garbage)

    resp = client.simulate_get('/images')

    assert resp.status_code == 200
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert resp.json == []
    assert msgpack.unpackb(redis.get('asgilook:/images'))[:2] == [
        'application/json',
        b'[]',
    ]


@pytest.mark.parametrize('redis_version', [(7, 0), (6, 2)])
@pytest.mark.parametrize(
    'put', [lambda r, k: r.rpush(k, 'a'), lambda r, k: r.hset(k, 'a', 'b')]
)
def test_a_key_holding_no_string_is_replaced_and_keeps_the_cache_on(
    storage_path, caplog, redis_version, put
):
    server = fakeredis.FakeServer(version=redis_version)
    redis = fakeredis.FakeRedis(server=server)
    put(redis, 'asgilook:/images')
    client = falcon.testing.TestClient(
        create_served_app(make_config(storage_path, server))
    )

    answers = [client.simulate_get('/images') for _ in range(3)]
    other = client.simulate_get('/images?limit=5')

    assert [resp.headers['X-ASGILook-Cache'] for resp in answers] == [
        'Miss',
        'Hit',
        'Hit',
    ]
    assert all(resp.json == [] for resp in answers)
    assert redis.type('asgilook:/images') == b'string'
    assert other.headers['X-ASGILook-Cache'] == 'Miss'
    assert caplog.records == []


class _Streamed:
    async def on_get(self, req, resp):
        async def chunks():
            for number in range(100):
                yield f'chunk {number};'.encode()

        resp.content_type = falcon.MEDIA_JSON
        resp.stream = chunks()

    async def cache_version(self, req):
        return 'streamed-1'


def test_a_streamed_body_is_cached_byte_for_byte(config):
    streamed = _Streamed()
    versions = {'/streamed': streamed.cache_version}
    app = falcon.asgi.App(middleware=[RedisCache(config, versions=versions)])
    app.add_route('/streamed', streamed)
    client = falcon.testing.TestClient(app)
    expected = b''.join(f'chunk {number};'.encode() for number in range(100))

    first = client.simulate_get('/streamed')
    second = client.simulate_get('/streamed')

    assert first.content == second.content == expected
    assert second.headers['X-ASGILook-Cache'] == 'Hit'
    assert second.headers['Content-Type'] == first.headers['Content-Type']


def test_an_entry_from_before_a_change_is_not_served(config, redis_server):
    """Another worker stored the list just before an upload it did not see."""
    client = falcon.testing.TestClient(create_served_app(config))
    stale = client.simulate_get('/images')
    entry = fakeredis.FakeRedis(server=redis_server).get('asgilook:/images')

    image = as_listed(
        client.simulate_post('/images', body=encode(gradient(), 'PNG')).json
    )
    fakeredis.FakeRedis(server=redis_server).set('asgilook:/images', entry)

    resp = client.simulate_get('/images')
    assert stale.json == []
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert resp.json == [image]


def test_a_delete_while_redis_was_away_is_not_undone(client, redis_server):
    image = as_listed(
        client.simulate_post('/images', body=encode(gradient(), 'PNG')).json
    )
    uris = ['/images', image['image'], *image['thumbnails']]
    for uri in uris:
        client.simulate_get(uri)

    redis_server.connected = False
    assert (
        client.simulate_delete(image['image'], headers=owner(image)).status_code == 204
    )
    redis_server.connected = True

    assert client.simulate_get('/images').json == []
    for uri in uris[1:]:
        resp = client.simulate_get(uri)
        assert resp.status_code == 404
        assert resp.headers['X-ASGILook-Cache'] != 'Hit'
