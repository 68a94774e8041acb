"""One resource, one URL: other spellings redirect; errors are always JSON."""

import fakeredis
import falcon.testing
import pytest

from asgilook.app import create_served_app

from .fakes import owner, upload_through

SPELLINGS = [
    # (how the id is written, how the size is written)
    ('{id}', '0{w}x{h}'),
    ('{id}', '+{w}x{h}'),
    ('{id}', '{w_}x{h}'),
    ('{id}', '{w_arabic}x{h}'),
    ('{ID}', '{w}x{h}'),
    ('{{{id}}}', '{w}x{h}'),
    ('{hex}', '{w}x{h}'),
]


def spell(template: str, image: dict, size: tuple[int, int]) -> str:
    image_id = image['id']
    width, height = size
    arabic = ''.join(chr(0x660 + int(digit)) for digit in str(width))
    return template.format(
        id=image_id,
        ID=image_id.upper(),
        hex=image_id.replace('-', ''),
        w=width,
        h=height,
        w_=f'{str(width)[:1]}_{str(width)[1:]}',
        w_arabic=arabic,
    )


@pytest.fixture
def uploaded(config):
    """An app, a client of it, and an uploaded 640x400 image."""
    app = create_served_app(config)

    async def upload():
        async with falcon.testing.ASGIConductor(app) as conductor:
            return await upload_through(conductor, (640, 400))

    return app, falcon.testing.TestClient(app), falcon.async_to_sync(upload)


@pytest.mark.parametrize(('id_spelling', 'size_spelling'), SPELLINGS)
@pytest.mark.parametrize('method', ['GET', 'HEAD'])
def test_another_spelling_of_a_thumbnail_redirects_and_is_never_cached(
    uploaded, redis_server, id_spelling, size_spelling, method
):
    app, client, image = uploaded
    canonical = image['thumbnails'][0]
    path = (
        f'/thumbnails/{spell(id_spelling, image, (320, 200))}/'
        f'{spell(size_spelling, image, (320, 200))}.jpeg'
    )
    assert path != canonical

    for _ in range(2):
        resp = client.simulate_request(method, path)
        assert resp.status_code == 308
        assert resp.headers['location'] == canonical
        assert resp.headers['x-asgilook-cache'] == 'Miss'

    assert client.simulate_get(canonical).headers['x-asgilook-cache'] == 'Miss'
    assert client.simulate_get(canonical).headers['x-asgilook-cache'] == 'Hit'
    keys = falcon.async_to_sync(_cache_keys, redis_server)
    assert keys == {f'asgilook:{canonical}'}


async def _cache_keys(redis_server):
    redis = fakeredis.aioredis.FakeRedis(server=redis_server)
    keys = {key.decode() for key in await redis.keys('asgilook:*')}
    await redis.aclose()
    return keys


@pytest.mark.parametrize('method', ['GET', 'HEAD', 'DELETE'])
def test_another_spelling_of_an_image_redirects(uploaded, method):
    _, client, image = uploaded
    path = f'/images/{image["id"].upper()}.jpeg'

    # With its token: a DELETE is the uploader's.
    resp = client.simulate_request(method, path, headers=owner(image))

    assert resp.status_code == 308
    assert resp.headers['location'] == image['image']
    # A redirected DELETE deleted nothing.
    assert client.simulate_get(image['image']).status_code == 200


def test_a_redirect_names_only_the_canonical_url(uploaded):
    _, client, image = uploaded

    resp = client.simulate_get(
        f'/thumbnails/{image["id"].upper()}/0320x0200.jpeg', query_string='a=<b>'
    )

    assert resp.headers['location'] == image['thumbnails'][0]
    assert resp.content == b''


@pytest.mark.parametrize(
    'accept',
    ['application/xml', 'text/xml', 'text/html', 'application/msgpack', 'image/*', ''],
)
def test_errors_are_json_whatever_the_client_accepts(client, accept):
    resp = client.simulate_get('/nowhere', headers={'Accept': accept})

    assert resp.status_code == 404
    assert resp.headers['content-type'] == 'application/json'
    assert resp.json['title'] == 'No such resource'
    assert 'vary' not in resp.headers
