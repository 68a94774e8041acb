"""What never changes under its URL is served from the cache: the catalog away."""

import itertools

import falcon
import falcon.asgi
import falcon.testing
import pytest

from asgilook.cache import RedisCache
from asgilook.errors import StorageUnavailableError
from asgilook.http import errors


class _Picture:
    """A resource whose catalog goes away once asked (`away`)."""

    def __init__(self, redis_server=None):
        self.away = False
        self._redis_server = redis_server

    async def on_get(self, req, resp, name):
        if self.away:
            raise StorageUnavailableError
        resp.content_type = falcon.MEDIA_JPEG
        resp.data = f'picture of {name}'.encode()

    async def version(self, req, name):
        if self.away:
            if self._redis_server is not None:
                # Redis goes too, between the version and the look in Redis.
                self._redis_server.connected = False
            raise StorageUnavailableError
        return f'{name}-1'


def _client(config, picture, immutable):
    versions = {'/pictures/{name}': picture.version, '/lists/{name}': picture.version}
    # A token that moves at each request: memory never answers before the
    # version is asked.
    moves = itertools.count()
    cache = RedisCache(
        config,
        token=lambda: next(moves).to_bytes(8),
        versions=versions,
        immutable=immutable,
    )
    app = falcon.asgi.App(middleware=[cache])
    app.add_route('/pictures/{name}', picture)
    app.add_route('/lists/{name}', picture)
    errors.register(app)
    return falcon.testing.TestClient(app)


@pytest.mark.parametrize('memory', [64 * 1024, 0])
def test_a_kept_answer_is_served_whatever_its_version_while_the_catalog_is_away(
    config, memory
):
    config.memory_cache_size = memory
    picture = _Picture()
    client = _client(config, picture, frozenset({'/pictures/{name}'}))
    kept = client.simulate_get('/pictures/moon')

    picture.away = True
    served = client.simulate_get('/pictures/moon')
    never_kept = client.simulate_get('/pictures/sun')

    assert served.status_code == 200
    assert served.content == kept.content == b'picture of moon'
    assert served.headers['X-ASGILook-Cache'] == 'Hit'
    assert never_kept.status_code == 503


def test_an_answer_that_changes_is_not_served_while_the_catalog_is_away(config):
    picture = _Picture()
    client = _client(config, picture, frozenset({'/pictures/{name}'}))
    client.simulate_get('/lists/moon')

    picture.away = True
    resp = client.simulate_get('/lists/moon')

    assert resp.status_code == 503
    assert resp.json['title'] == 'Storage unavailable'


def test_a_redis_that_goes_too_serves_nothing_unchecked(config, redis_server):
    config.memory_cache_size = 0
    picture = _Picture(redis_server)
    client = _client(config, picture, frozenset({'/pictures/{name}'}))
    client.simulate_get('/pictures/moon')

    picture.away = True
    resp = client.simulate_get('/pictures/moon')

    assert resp.status_code == 503, resp.headers
