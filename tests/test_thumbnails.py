import math

import falcon.testing
import hypothesis
import hypothesis.strategies as st
import PIL.Image
import PIL.ImageChops
import PIL.ImageStat
import pytest

from asgilook.app import create_served_app

from .fakes import make_config
from .images import close_to, decode, encode, gradient, photo


def test_missing_in_store(client):
    resp = client.simulate_get(
        '/thumbnails/1a256a8a-2063-46ff-b53f-d04d5bcf5eee/80x80.jpeg'
    )
    assert resp.status_code == 404
    assert resp.json['title'] == 'No such image'


def test_thumbnails(client, png_image, image_size):
    resp1 = client.simulate_post('/images', body=png_image)
    assert resp1.status_code == 201

    thumbnails = resp1.json['thumbnails']
    assert set(thumbnails) == {
        '/thumbnails/36562622-48e5-4a61-be67-e426b11821ed/320x180.jpeg',
        '/thumbnails/36562622-48e5-4a61-be67-e426b11821ed/160x90.jpeg',
    }

    for uri in thumbnails:
        resp = client.simulate_get(uri)
        assert resp.headers['Content-Type'] == 'image/jpeg'
        assert resp.headers['X-ASGILook-Cache'] == 'Miss'
        assert image_size(resp.content) in ((320, 180), (160, 90))


def test_missing_size(client, png_image):
    client.simulate_post('/images', body=png_image)

    resp = client.simulate_get(
        '/thumbnails/36562622-48e5-4a61-be67-e426b11821ed/480x270.jpeg'
    )
    assert resp.status_code == 404
    assert resp.json['title'] == 'No such thumbnail'
    assert '480x270' in resp.json['description']


def test_thumbnail_caching(client, png_image):
    client.simulate_post('/images', body=png_image)

    for retry in range(4):
        resp = client.simulate_get(
            '/thumbnails/36562622-48e5-4a61-be67-e426b11821ed/160x90.jpeg'
        )
        assert resp.status_code == 200
        assert resp.headers.get('X-ASGILook-Cache') == ('Miss' if retry == 0 else 'Hit')


def test_thumbnail_is_the_picture_at_the_advertised_size(client):
    original = gradient((800, 600))
    image = client.simulate_post('/images', body=encode(original, 'PNG')).json

    assert image['thumbnails'][-1].endswith('/100x75.jpeg')
    for uri in image['thumbnails']:
        width, height = map(int, uri.rsplit('/', 1)[1][: -len('.jpeg')].split('x'))
        thumbnail = decode(client.simulate_get(uri).content)
        assert thumbnail.format == 'JPEG'
        assert thumbnail.size == (width, height)
        for fx, fy in [(0.25, 0.25), (0.75, 0.25), (0.25, 0.75), (0.75, 0.75)]:
            expected = original.getpixel((int(fx * 800), int(fy * 600)))
            actual = thumbnail.getpixel((int(fx * width), int(fy * height)))
            assert close_to(actual, expected)


def test_small_image_has_no_thumbnails(client):
    image = client.simulate_post('/images', body=encode(gradient((127, 500)), 'PNG'))

    assert image.json['thumbnails'] == []


def test_min_thumb_size_is_configurable(client, config):
    config.min_thumb_size = 16
    image = client.simulate_post('/images', body=encode(gradient((128, 64)), 'PNG'))

    assert [uri.rsplit('/', 1)[1] for uri in image.json['thumbnails']] == [
        '64x32.jpeg',
        '32x16.jpeg',
    ]


@hypothesis.settings(max_examples=25, deadline=None)
@hypothesis.given(
    width=st.integers(1, 300),
    height=st.integers(1, 300),
    min_size=st.integers(1, 40),
)
def test_ladder_halves_while_both_sides_reach_the_minimum(
    tmp_path_factory, width, height, min_size
):
    config = make_config(tmp_path_factory.mktemp('ladder'))
    config.min_thumb_size = min_size
    client = falcon.testing.TestClient(create_served_app(config))
    data = encode(PIL.Image.new('RGB', (width, height), 'teal'), 'PNG')

    image = client.simulate_post('/images', body=data).json

    expected = []
    factor = 2
    while width // factor >= min_size and height // factor >= min_size:
        expected.append(f'{width // factor}x{height // factor}.jpeg')
        factor *= 2
    assert [uri.rsplit('/', 1)[1] for uri in image['thumbnails']] == expected
    for uri in image['thumbnails'][-1:]:
        assert client.simulate_get(uri).status_code == 200
    beyond = f'/thumbnails/{image["id"]}/{width}x{height}.jpeg'
    assert client.simulate_get(beyond).status_code == 404


def _psnr(image, reference) -> float:
    squared = PIL.ImageStat.Stat(PIL.ImageChops.difference(image, reference)).sum2
    mean = sum(squared) / (3 * image.width * image.height)
    return 10 * math.log10(255**2 / mean) if mean else math.inf


@pytest.mark.parametrize('size', [(1920, 1080), (1999, 1333), (1024, 1024)])
def test_thumbnails_are_as_good_as_a_full_lanczos(client, config, size):
    """The quality bar: 35 dB PSNR against a full decode resized with LANCZOS.

    The reference is stored as JPEG at the same quality as the thumbnail, so
    that what is measured is how the thumbnail was scaled, not the JPEG
    encoding both go through.
    """
    image = client.simulate_post('/images', body=photo(size, seed=7)).json
    stored = decode(client.simulate_get(image['image']).content)

    for uri in image['thumbnails']:
        thumbnail = decode(client.simulate_get(uri).content)
        reference = stored.resize(thumbnail.size, PIL.Image.Resampling.LANCZOS)
        reference = decode(encode(reference, 'JPEG', quality=config.jpeg_quality))
        assert _psnr(thumbnail, reference) >= 35, uri
