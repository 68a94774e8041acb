"""Every picture has a thumbnail small enough for a gallery tile."""

import falcon.testing
import hypothesis
import hypothesis.strategies as st
import PIL.Image
import pytest

from asgilook.app import create_served_app
from asgilook.config import Config
from asgilook.imaging.screening import TILE_BOUND
from asgilook.store import Image

from .images import close_to, decode, encode
from .test_gallery import get_page, parse, srcset, tiles

RED = (220, 30, 30)
BLUE = (30, 30, 220)


def _ladder(size, min_size=Config.DEFAULT_MIN_THUMB_SIZE):
    config = Config()
    config.min_thumb_size = min_size
    return Image(config, '36562622-48e5-4a61-be67-e426b11821ed', size).thumbnail_sizes()


def _halvings(size, min_size):
    """The tutorial's ladder: (w//2, h//2), (w//4, h//4), ... both sides >= min."""
    width, height = size
    sizes = []
    factor = 2
    while width // factor >= min_size and height // factor >= min_size:
        sizes.append((width // factor, height // factor))
        factor *= 2
    return sizes


@pytest.mark.parametrize(
    ('size', 'ladder'),
    [
        ((65500, 127), [(1024, 2)]),
        ((127, 65500), [(2, 1024)]),
        ((3000, 100), [(1024, 34)]),
        ((1025, 63), [(1024, 63)]),
        ((462, 462), [(231, 231), (115, 115)]),
        ((1024, 10), []),
        ((4000, 3000), [(2000, 1500), (1000, 750), (500, 375), (250, 187), (125, 93)]),
        ((5000, 130), [(2500, 65), (1024, 27)]),
    ],
)
def test_the_ladder_gains_a_tile_size_only_where_it_has_none(size, ladder):
    assert _ladder(size) == ladder


@hypothesis.settings(max_examples=500, deadline=None)
@hypothesis.given(
    width=st.integers(1, 65500),
    height=st.integers(1, 65500),
    min_size=st.integers(1, 4096),
)
def test_every_ladder_fits_a_tile_and_keeps_the_tutorials_sizes(
    width, height, min_size
):
    size = (width, height)
    halvings = _halvings(size, min_size)

    ladder = _ladder(size, min_size)

    assert ladder[: len(halvings)] == halvings
    assert min(max(side) for side in [size, *ladder]) <= TILE_BOUND
    if min(max(side) for side in [size, *halvings]) <= TILE_BOUND:
        assert ladder == halvings
    else:
        (tile,) = ladder[len(halvings) :]
        longer, shorter = max(size), min(size)
        assert max(tile) == TILE_BOUND
        assert (tile[0] == TILE_BOUND) == (width >= height)
        # The aspect kept, to the nearest pixel, and at least one.
        exact = shorter * TILE_BOUND / longer
        assert min(tile) == max(1, int(exact + 0.5))


def _two_halves(size) -> bytes:
    """A PNG of size: its left (or top) half red, the other half blue."""
    picture = PIL.Image.new('RGB', size, RED)
    width, height = size
    half = (width // 2, 0) if width >= height else (0, height // 2)
    picture.paste(BLUE, (*half, width, height))
    return encode(picture, 'PNG')


async def test_a_picture_with_no_halvings_is_shown_from_its_tile_thumbnail(config):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        created = await conductor.simulate_post(
            '/images', body=_two_halves((65500, 127))
        )
        image = created.json
        uri = f'/thumbnails/{image["id"]}/1024x2.jpeg'
        thumbnail = await conductor.simulate_get(uri)
        full = await conductor.simulate_head(image['image'])
        off_ladder = await conductor.simulate_get(uri.replace('x2.', 'x3.'))
        _, page = await get_page(conductor)

    assert created.status_code == 201
    assert image['size'] == [65500, 127]
    assert image['thumbnails'] == [uri]
    assert thumbnail.status_code == 200
    assert thumbnail.headers['Content-Type'] == 'image/jpeg'
    assert thumbnail.headers['ETag'] not in (None, full.headers['ETag'])
    picture = decode(thumbnail.content)
    assert (picture.format, picture.size) == ('JPEG', (1024, 2))
    assert close_to(picture.getpixel((128, 0)), RED)
    assert close_to(picture.getpixel((896, 1)), BLUE)
    # Only the sizes of the ladder are ever rendered.
    assert off_ladder.status_code == 404
    # The gallery's tile takes it, not the picture of 8 megapixels.
    (link,) = tiles(page)
    avif, webp, img = link.children[0].children
    assert (uri, 1024) in srcset(img)
    assert img.attrs['src'] == uri
    assert (uri.replace('.jpeg', '.avif'), 1024) in srcset(avif)
    assert (uri.replace('.jpeg', '.webp'), 1024) in srcset(webp)


def test_a_tall_picture_is_shown_from_its_tile_thumbnail(client):
    image = client.simulate_post('/images', body=_two_halves((127, 65500))).json

    (uri,) = image['thumbnails']
    picture = decode(client.simulate_get(uri).content)
    (link,) = tiles(parse(client.simulate_get('/').text))
    avif, webp, img = link.children[0].children

    # A browser picks by width: the picture itself (127 wide) is left out.
    assert srcset(img) == [(uri, 2)]
    assert srcset(avif) == [(uri.replace('.jpeg', '.avif'), 2)]
    assert srcset(webp) == [(uri.replace('.jpeg', '.webp'), 2)]
    assert img.attrs['src'] == uri
    assert uri.endswith('/2x1024.jpeg')
    assert picture.size == (2, 1024)
    assert close_to(picture.getpixel((0, 128)), RED)
    assert close_to(picture.getpixel((1, 896)), BLUE)
