"""WebP and AVIF thumbnails: the JPEG ladder again, each format under its own URL."""

import math

import falcon.testing
import msgpack
import PIL.Image
import PIL.ImageChops
import PIL.ImageStat
import pytest

from asgilook.app import create_served_app

from .fakes import make_config, owner, redis_keys, upload_through
from .images import decode, encode, gradient, photo

# Each format: the field of the image object listing it, its type, Pillow's name.
FORMATS = {
    'jpeg': ('thumbnails', 'image/jpeg', 'JPEG'),
    'webp': ('thumbnails_webp', 'image/webp', 'WEBP'),
    'avif': ('thumbnails_avif', 'image/avif', 'AVIF'),
}
MODERN = ['webp', 'avif']


def as_format(uri: str, extension: str) -> str:
    return uri.removesuffix('.jpeg') + f'.{extension}'


@pytest.fixture
def uploaded(client):
    """A 640x400 gradient uploaded through the client, as the 201 shows it."""
    return client.simulate_post(
        '/images', body=encode(gradient((640, 400)), 'PNG')
    ).json


@pytest.mark.parametrize('extension', MODERN)
def test_the_image_lists_each_format_on_the_same_ladder(client, uploaded, extension):
    field = FORMATS[extension][0]
    listed = client.simulate_get('/images').json[0]
    packed = msgpack.unpackb(
        client.simulate_get(
            '/images', headers={'Accept': 'application/msgpack'}
        ).content
    )[0]

    assert uploaded['thumbnails'] == [
        f'/thumbnails/{uploaded["id"]}/320x200.jpeg',
        f'/thumbnails/{uploaded["id"]}/160x100.jpeg',
    ]
    assert uploaded[field] == [
        f'/thumbnails/{uploaded["id"]}/320x200.{extension}',
        f'/thumbnails/{uploaded["id"]}/160x100.{extension}',
    ]
    assert listed[field] == packed[field] == uploaded[field]


@pytest.mark.parametrize('extension', MODERN)
def test_a_thumbnail_is_the_picture_at_its_size_in_its_format(
    client, uploaded, extension
):
    field, media_type, pillow = FORMATS[extension]
    original = gradient((640, 400))

    for uri in uploaded[field]:
        resp = client.simulate_get(uri)
        thumbnail = decode(resp.content)
        assert resp.status_code == 200
        assert resp.headers['Content-Type'] == media_type
        assert resp.headers['Cache-Control'] == 'public, max-age=31536000, immutable'
        assert thumbnail.format == pillow
        assert thumbnail.size == tuple(
            map(int, uri.rpartition('/')[2].partition('.')[0].split('x'))
        )
        reference = original.resize(thumbnail.size, PIL.Image.Resampling.LANCZOS)
        assert _psnr(thumbnail.convert('RGB'), reference) >= 30, uri


def test_each_format_is_an_answer_of_its_own_with_its_own_tag(client, uploaded):
    uris = [as_format(uploaded['thumbnails'][0], extension) for extension in FORMATS]

    misses = [client.simulate_get(uri) for uri in uris]
    hits = [client.simulate_get(uri) for uri in uris]
    heads = [client.simulate_head(uri) for uri in uris]

    assert [resp.headers['X-ASGILook-Cache'] for resp in misses] == ['Miss'] * 3
    assert [resp.headers['X-ASGILook-Cache'] for resp in hits] == ['Hit'] * 3
    assert [resp.headers['Content-Type'] for resp in hits] == [
        media_type for _, media_type, _ in FORMATS.values()
    ]
    assert [resp.content for resp in hits] == [resp.content for resp in misses]
    assert len({resp.content for resp in hits}) == 3
    tags = [resp.headers['ETag'] for resp in misses]
    assert len(set(tags)) == 3
    assert [resp.headers['ETag'] for resp in heads] == tags
    assert [resp.content for resp in heads] == [b''] * 3
    # A tag names one format's file: no other format's URL is confirmed by it.
    for uri, tag in zip(uris, tags, strict=True):
        for other, other_tag in zip(uris, tags, strict=True):
            resp = client.simulate_get(other, headers={'If-None-Match': tag})
            assert resp.status_code == (304 if other_tag == tag else 200), (uri, other)


def test_the_other_formats_settings_leave_a_jpeg_thumbnails_tag(storage_path):
    def tag(uri: str, **settings: int) -> str:
        # A service of its own (its cache too) over the one storage directory.
        config = make_config(storage_path)
        for name, value in settings.items():
            setattr(config, name, value)
        client = falcon.testing.TestClient(create_served_app(config))
        return client.simulate_get(uri).headers['ETag']

    client = falcon.testing.TestClient(create_served_app(make_config(storage_path)))
    image = client.simulate_post('/images', body=encode(gradient((640, 400)), 'PNG'))
    uri = image.json['thumbnails'][0]

    first = tag(uri)
    assert tag(uri, webp_quality=50, avif_quality=40) == first
    assert tag(uri, jpeg_quality=70) != first
    assert tag(as_format(uri, 'webp'), webp_quality=50) != tag(as_format(uri, 'webp'))


@pytest.mark.parametrize('extension', MODERN)
async def test_each_format_has_its_cache_entry(config, extension):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor, (640, 400))
        jpeg = image['thumbnails'][0]
        other = as_format(jpeg, extension)
        await conductor.simulate_get(jpeg)
        await conductor.simulate_get(other)
        keys = await redis_keys(config)

    assert {key for key in keys if b'/thumbnails/' in key} == {
        f'asgilook:{jpeg}'.encode(),
        f'asgilook:{other}'.encode(),
    }


async def test_a_delete_drops_the_thumbnails_of_every_format(config):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor, (640, 400))
        uris = [uri for field, _, _ in FORMATS.values() for uri in image[field]]
        for uri in uris:
            assert (await conductor.simulate_get(uri)).status_code == 200
        kept = await redis_keys(config)
        deleted = await conductor.simulate_delete(image['image'], headers=owner(image))
        left = await redis_keys(config)
        after = [await conductor.simulate_get(uri) for uri in uris]

    assert {f'asgilook:{uri}'.encode() for uri in uris} <= set(kept)
    assert deleted.status_code == 204
    assert [key for key in left if b'/thumbnails/' in key] == []
    assert {resp.status_code for resp in after} == {404}
    assert {resp.json['title'] for resp in after} == {'No such image'}


@pytest.mark.parametrize('extension', MODERN)
def test_a_size_off_the_ladder_is_no_thumbnail_in_any_format(
    client, uploaded, extension
):
    resp = client.simulate_get(f'/thumbnails/{uploaded["id"]}/480x300.{extension}')

    assert resp.status_code == 404
    assert resp.json['title'] == 'No such thumbnail'
    assert '480x300' in resp.json['description']


@pytest.mark.parametrize('extension', ['png', 'jpg', 'gif', 'webp2', 'jpeg%20'])
def test_a_format_thumbnails_are_not_rendered_in_is_a_404(client, uploaded, extension):
    resp = client.simulate_get(f'/thumbnails/{uploaded["id"]}/320x200.{extension}')

    assert resp.status_code == 404
    assert resp.headers['Content-Type'] == 'application/json'
    assert resp.json['title'] == 'No such thumbnail'
    assert '.webp' in resp.json['description']
    assert '.avif' in resp.json['description']


@pytest.mark.parametrize('extension', MODERN)
def test_an_unknown_image_has_no_thumbnail_in_any_format(client, extension):
    resp = client.simulate_get(
        f'/thumbnails/1a256a8a-2063-46ff-b53f-d04d5bcf5eee/80x80.{extension}'
    )

    assert resp.status_code == 404
    assert resp.json['title'] == 'No such image'


@pytest.mark.parametrize(
    ('spelling', 'extension'),
    [
        ('{id}/320x200.WEBP', 'webp'),
        ('{id}/320x200.Avif', 'avif'),
        ('{ID}/320x200.webp', 'webp'),
        ('{id}/0320x200.avif', 'avif'),
        ('{id}/+320x200.AVIF', 'avif'),
    ],
)
async def test_another_spelling_of_a_format_redirects_and_is_never_cached(
    config, spelling, extension
):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        image = await upload_through(conductor, (640, 400))
        canonical = f'/thumbnails/{image["id"]}/320x200.{extension}'
        path = '/thumbnails/' + spelling.format(id=image['id'], ID=image['id'].upper())
        answers = [await conductor.simulate_get(path) for _ in range(2)]
        keys = await redis_keys(config)

    assert [resp.status_code for resp in answers] == [308, 308]
    assert {resp.headers['Location'] for resp in answers} == {canonical}
    assert [key for key in keys if b'/thumbnails/' in key] == []


def test_the_quality_settings_choose_each_formats_bytes(storage_path, config):
    body = photo((640, 480))
    sizes, tags = {}, {}
    for quality in (90, 30):
        config.webp_quality = config.avif_quality = quality
        # A service of its own (its cache too) for each setting.
        config.storage_path = storage_path / f'q{quality}'
        client = falcon.testing.TestClient(create_served_app(config))
        image = client.simulate_post('/images', body=body).json
        for extension in MODERN:
            resp = client.simulate_get(image[FORMATS[extension][0]][0])
            sizes[extension, quality] = len(resp.content)
            tags[extension, quality] = resp.headers['ETag']

    for extension in MODERN:
        assert sizes[extension, 30] < sizes[extension, 90] * 0.6
    assert len(set(tags.values())) == 4


def test_webp_and_avif_are_as_good_as_jpeg_in_fewer_bytes(client):
    """The defaults: within 1.5 dB of the JPEG thumbnail, in at most 60% of its bytes.

    Measured against the stored picture resized with LANCZOS, on a photo's
    whole ladder.
    """
    image = client.simulate_post('/images', body=photo((1920, 1080), seed=3)).json
    stored = decode(client.simulate_get(image['image']).content)

    for index, jpeg_uri in enumerate(image['thumbnails']):
        jpeg = client.simulate_get(jpeg_uri).content
        reference = stored.resize(decode(jpeg).size, PIL.Image.Resampling.LANCZOS)
        jpeg_psnr = _psnr(decode(jpeg), reference)
        for extension in MODERN:
            data = client.simulate_get(image[FORMATS[extension][0]][index]).content
            assert len(data) <= 0.6 * len(jpeg), (extension, index)
            psnr = _psnr(decode(data).convert('RGB'), reference)
            assert psnr >= jpeg_psnr - 1.5, (extension, index, psnr, jpeg_psnr)


def _psnr(image, reference) -> float:
    squared = PIL.ImageStat.Stat(PIL.ImageChops.difference(image, reference)).sum2
    mean = sum(squared) / (3 * image.width * image.height)
    return 10 * math.log10(255**2 / mean) if mean else math.inf
