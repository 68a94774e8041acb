"""Forged cache entries: whoever writes to Redis cannot choose what asgilook sends."""

import asyncio
import logging

import fakeredis
import falcon.asgi
import falcon.testing
import msgpack
import pytest

from asgilook.app import create_served_app
from asgilook.auth.signing import ServiceKey
from asgilook.cache import RedisCache, entries
from asgilook.cache.entries import Entry

from .fakes import make_config
from .images import encode, gradient


@pytest.fixture
def redis(redis_server):
    return fakeredis.FakeRedis(server=redis_server)


@pytest.fixture
def image(client):
    return client.simulate_post('/images', body=encode(gradient(), 'PNG')).json


def _loaded_key(config) -> ServiceKey:
    key = ServiceKey(config)
    asyncio.run(key.load())
    return key


def _another_worker(config) -> falcon.testing.TestClient:
    """A process that keeps nothing in memory yet: what it serves comes from Redis."""
    return falcon.testing.TestClient(create_served_app(config))


def test_an_entry_copied_to_another_path_is_not_served_there(
    client, config, redis, image, image_size
):
    full = client.simulate_get(image['image'])
    thumbnail = image['thumbnails'][0]
    redis.set(f'asgilook:{thumbnail}', redis.get(f'asgilook:{image["image"]}'))

    resp = _another_worker(config).simulate_get(thumbnail)

    assert resp.status_code == 200
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert resp.content != full.content
    assert list(image_size(resp.content)) == [
        int(side) for side in thumbnail.rsplit('/', 1)[1][: -len('.jpeg')].split('x')
    ]


@pytest.mark.parametrize(
    ('content_type', 'headers'),
    [
        ('text/html', {}),
        ('image/jpeg', {'Set-Cookie': 'session=stolen'}),
        ('image/jpeg', {'ETag': '"x"\r\nSet-Cookie: session=stolen'}),
        ('image/jpeg', {'ETag': '"\u20ac"'}),
        ('image/jpeg', {'ETag': '"caf\u00e9"'}),
        ('image/jpeg', {'Cache-Control': 'no-cache\x00'}),
    ],
    ids=['html', 'set-cookie', 'crlf', 'not-latin-1', 'not-ascii', 'nul'],
)
def test_a_signed_entry_asgilook_would_not_compute_is_never_sent(
    client, config, redis, image, content_type, headers
):
    """Even signed with the right key (a leaked ASGI_LOOK_SECRET), and current."""
    uri = image['thumbnails'][0]
    real = client.simulate_get(uri)
    version = msgpack.unpackb(redis.get(f'asgilook:{uri}'))[2]
    forged = Entry(content_type, b'<script>alert(1)</script>', version, headers)
    redis.set(f'asgilook:{uri}', entries.pack(forged, uri, _loaded_key(config)))

    worker = _another_worker(config)
    resp = worker.simulate_get(uri)

    assert resp.status_code == 200
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'
    assert resp.content == real.content
    assert resp.headers['Content-Type'] == 'image/jpeg'
    assert resp.headers['ETag'] == real.headers['ETag']
    assert 'Set-Cookie' not in resp.headers
    # What it computed took the forgery's place.
    assert _another_worker(config).simulate_get(uri).headers['X-ASGILook-Cache'] == (
        'Hit'
    )


def test_an_entry_signed_with_another_key_is_a_miss(
    client, config, redis, image, caplog, tmp_path
):
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    uris = ['/images', image['image'], *image['thumbnails']]
    real = {uri: client.simulate_get(uri) for uri in uris}
    other = make_config(tmp_path)
    other.secret = b'the secret of another service'
    other_key = _loaded_key(other)
    for uri in uris:
        _, body, version, headers, *_ = msgpack.unpackb(redis.get(f'asgilook:{uri}'))
        stored = Entry(real[uri].headers['Content-Type'], body, version, headers)
        redis.set(f'asgilook:{uri}', entries.pack(stored, uri, other_key))

    worker = _another_worker(config)
    first = {uri: worker.simulate_get(uri) for uri in uris}
    again = {uri: _another_worker(config).simulate_get(uri) for uri in uris}

    for uri in uris:
        assert first[uri].headers['X-ASGILook-Cache'] == 'Miss'
        assert again[uri].headers['X-ASGILook-Cache'] == 'Hit'
        assert first[uri].content == again[uri].content == real[uri].content
    messages = [r.getMessage() for r in caplog.records if r.name == 'asgilook.cache']
    # Said once by each process that met them, whatever their number.
    assert messages == [
        "Redis at redis://localhost holds entries not signed with this service's "
        'key (another ASGI_LOOK_SECRET, or forged); they are treated as misses'
    ]


@pytest.mark.parametrize(
    'garbage',
    [
        msgpack.packb(['application/json', b'[]', 'v', {}, 'not bytes']),
        msgpack.packb(['application/json', b'[]', 'v', {}]),
    ],
    ids=['str-signature', 'format-before-signatures'],
)
def test_an_unsigned_entry_is_a_miss(client, redis, garbage):
    redis.set('asgilook:/images', garbage)

    resp = client.simulate_get('/images')

    assert (resp.status_code, resp.json) == (200, [])
    assert resp.headers['X-ASGILook-Cache'] == 'Miss'


def test_a_response_of_another_type_is_not_stored(config, redis):
    class Page:
        async def on_get(self, req, resp):
            resp.content_type = falcon.MEDIA_HTML
            resp.text = '<p>not an answer of asgilook</p>'

        async def cache_version(self, req):
            return 'page-1'

    page = Page()
    app = falcon.asgi.App(
        middleware=[RedisCache(config, versions={'/page': page.cache_version})]
    )
    app.add_route('/page', page)
    client = falcon.testing.TestClient(app)

    states = [client.simulate_get('/page').headers['X-ASGILook-Cache'] for _ in '12']

    assert states == ['Miss', 'Miss']
    assert not redis.exists('asgilook:/page')


def test_an_entry_of_an_older_asgilook_is_replaced_without_a_word(
    client, config, redis, image, caplog
):
    # 0.8 signed the whole body with BLAKE2b, in an array of five.
    caplog.set_level(logging.WARNING, logger='asgilook.cache')
    uri = image['thumbnails'][0]
    rendered = client.simulate_get(uri)
    *older, _ = msgpack.unpackb(redis.get(f'asgilook:{uri}'))
    redis.set(f'asgilook:{uri}', msgpack.packb(older, use_bin_type=True))

    first = _another_worker(config).simulate_get(uri)
    again = _another_worker(config).simulate_get(uri)

    assert first.headers['X-ASGILook-Cache'] == 'Miss'
    assert again.headers['X-ASGILook-Cache'] == 'Hit'
    assert first.content == again.content == rendered.content
    assert [r for r in caplog.records if r.name == 'asgilook.cache'] == []
