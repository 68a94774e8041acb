"""The gallery's page, `GET /`, as a browser gets it: its HTML and headers."""

from __future__ import annotations

import dataclasses
import html.parser

import falcon.testing
import pytest

from asgilook.app import create_served_app
from asgilook.gallery import policy
from asgilook.gallery.page import PAGE_SIZE, SIZES

from .fakes import owner, upload_through
from .paging import SMALL, upload_many
from .streams import SSEReader

# The pictures of the page's grid: a thumbnail ladder (800, 400, 200, 100).
LARGE = (1600, 1200)
# Elements with no end tag.
_VOID = frozenset({'br', 'hr', 'img', 'input', 'link', 'meta', 'source'})
# What a picture's <source>s offer before its <img>'s JPEG, in order.
MODERN_SOURCES = [('image/avif', 'thumbnails_avif'), ('image/webp', 'thumbnails_webp')]


@dataclasses.dataclass(eq=False)
class Element:
    """An element of a parsed page: its attributes, children and own text."""

    tag: str
    attrs: dict[str, str | None]
    parent: Element | None = None
    children: list[Element] = dataclasses.field(default_factory=list)
    text: str = ''

    def walk(self):
        for child in self.children:
            yield child
            yield from child.walk()

    def all(self, tag: str, **attrs: str) -> list[Element]:
        return [
            element
            for element in self.walk()
            if element.tag == tag
            and all(element.attrs.get(name) == value for name, value in attrs.items())
        ]

    def by_id(self, element_id: str) -> Element:
        (found,) = [e for e in self.walk() if e.attrs.get('id') == element_id]
        return found


class _Builder(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.current = Element('#document', {})

    def handle_starttag(self, tag, attrs):
        assert len(dict(attrs)) == len(attrs), (tag, attrs)
        element = Element(tag, dict(attrs), self.current)
        self.current.children.append(element)
        if tag not in _VOID:
            self.current = element

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Element(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        assert self.current.tag == tag, f'</{tag}> closes <{self.current.tag}>'
        self.current = self.current.parent

    def handle_data(self, data):
        self.current.text += data


def parse(text: str) -> Element:
    """The page's tree (html.parser's events); every element is closed."""
    builder = _Builder()
    builder.feed(text)
    builder.close()
    assert builder.current is builder.root
    return builder.root


def srcset(element: Element) -> list[tuple[str, int]]:
    candidates = [c.strip().split(' ') for c in element.attrs['srcset'].split(',')]
    assert all(len(c) == 2 and c[1].endswith('w') for c in candidates), candidates
    return [(uri, int(width[:-1])) for uri, width in candidates]


def sources(image: dict, field: str = 'thumbnails') -> list[tuple[str, int]]:
    """What an image object of the API says a srcset of a format must list."""
    thumbnails = [
        (uri, int(uri.rpartition('/')[2].partition('x')[0])) for uri in image[field]
    ]
    width, height = image['size']
    if thumbnails and height > max(width, 1024):
        # Tall, and taller than a tile: its thumbnails only.
        return thumbnails
    return [(image['image'], image['size'][0]), *thumbnails]


def tiles(doc: Element) -> list[Element]:
    """The `<a>` of each item of the grid, in order."""
    items = doc.by_id('gallery').children
    assert all(item.tag == 'li' for item in items)
    links = [item.children[0] for item in items]
    assert all(link.tag == 'a' for link in links)
    return links


def shown(doc: Element) -> list[str]:
    """The full images the grid's items link to, in order."""
    return [link.attrs['href'] for link in tiles(doc)]


def uris(images: list[dict]) -> list[str]:
    return [image['image'] for image in images]


@pytest.fixture
async def conductor(config):
    async with falcon.testing.ASGIConductor(create_served_app(config)) as conductor:
        yield conductor


async def get_page(conductor, uri='/') -> tuple[falcon.testing.Result, Element]:
    resp = await conductor.simulate_get(uri)
    assert resp.status_code == 200, resp.text
    return resp, parse(resp.text)


def assert_policy(headers) -> None:
    csp = headers['Content-Security-Policy']
    assert csp == policy.CONTENT_SECURITY_POLICY
    directives = [directive.strip() for directive in csp.split(';')]
    assert "default-src 'self'" in directives
    assert "object-src 'none'" in directives
    assert not [d for d in directives if d.startswith(('script-src', 'style-src'))]
    assert "'unsafe-" not in csp
    assert headers['X-Content-Type-Options'] == 'nosniff'
    assert headers['Referrer-Policy'] == 'same-origin'


async def test_an_empty_gallery_says_so_under_a_strict_policy(conductor):
    resp, doc = await get_page(conductor)

    assert resp.headers['Content-Type'] == 'text/html; charset=utf-8'
    assert_policy(resp.headers)
    assert resp.headers['Cache-Control'] == 'no-cache'
    assert resp.headers['ETag']
    assert doc.all('title')[0].text == 'asgilook'
    assert 'hidden' not in doc.by_id('empty').attrs
    assert tiles(doc) == []
    (more,) = doc.all('a', **{'class': 'more'})
    assert 'hidden' in more.attrs
    assert 'href' not in more.attrs
    gallery = doc.by_id('gallery').attrs
    assert gallery['data-next'] == ''
    assert gallery['data-events'] == '/events?after=0'
    assert gallery['data-first'] == '/images?limit=24&order=newest'
    assert gallery['data-sizes'] == SIZES


async def test_the_page_is_revalidated_and_changes_with_the_catalog(conductor):
    first = await conductor.simulate_get('/')
    etag = first.headers['ETag']

    again = await conductor.simulate_get('/', headers={'If-None-Match': etag})
    head = await conductor.simulate_head('/')
    await upload_through(conductor, SMALL)
    changed = await conductor.simulate_get('/', headers={'If-None-Match': etag})
    new_etag = changed.headers['ETag']
    unchanged = await conductor.simulate_get('/', headers={'If-None-Match': new_etag})

    assert again.status_code == 304
    assert again.content == b''
    assert head.status_code == 200
    assert head.content == b''
    assert head.headers['ETag'] == etag
    assert head.headers['Content-Type'] == 'text/html; charset=utf-8'
    assert_policy(head.headers)
    assert changed.status_code == 200
    assert new_etag != etag
    assert len(shown(parse(changed.text))) == 1
    assert unchanged.status_code == 304


async def test_the_page_has_no_inline_script_or_style(conductor):
    await upload_through(conductor, LARGE)
    await upload_through(conductor, SMALL)

    _, doc = await get_page(conductor)

    elements = list(doc.walk())
    scripts = doc.all('script')
    assert scripts
    assert all(script.attrs.get('src') for script in scripts)
    assert all(not script.text.strip() for script in scripts)
    assert doc.all('style') == []
    assert not [
        (element.tag, name)
        for element in elements
        for name in element.attrs
        if name == 'style' or name.startswith('on')
    ]
    assert len(doc.all('img', loading='lazy')) == 2


async def test_each_picture_offers_its_thumbnail_ladder_newest_first(conductor):
    small = await upload_through(conductor, SMALL)
    large = await upload_through(conductor, LARGE)
    medium = await upload_through(conductor, (640, 480))

    _, doc = await get_page(conductor)

    assert 'hidden' in doc.by_id('empty').attrs
    links = tiles(doc)
    assert shown(doc) == uris([medium, large, small])
    for link, image in zip(links, [medium, large, small], strict=True):
        (picture,) = link.children
        *offers, img = picture.children
        assert (picture.tag, img.tag) == ('picture', 'img')
        assert [offer.tag for offer in offers] == ['source', 'source']
        for offer, (media_type, field) in zip(offers, MODERN_SOURCES, strict=True):
            assert offer.attrs['type'] == media_type
            assert srcset(offer) == sources(image, field)
            assert offer.attrs['sizes'] == SIZES
        assert srcset(img) == sources(image)
        assert img.attrs['sizes'] == SIZES
        assert [int(img.attrs['width']), int(img.attrs['height'])] == image['size']
        assert img.attrs['loading'] == 'lazy'
        assert img.attrs['alt'].strip()
        assert img.attrs['src'] in [uri for uri, _ in srcset(img)]
    avif, webp, large_img = links[1].children[0].children
    assert f'/thumbnails/{large["id"]}/800x600.jpeg 800w' in large_img.attrs['srcset']
    assert f'{large["image"]} 1600w' in large_img.attrs['srcset']
    assert f'/thumbnails/{large["id"]}/800x600.avif 800w' in avif.attrs['srcset']
    assert f'/thumbnails/{large["id"]}/800x600.webp 800w' in webp.attrs['srcset']
    # Stored as JPEG only: the picture itself, for a tile wider than 800.
    assert f'{large["image"]} 1600w' in avif.attrs['srcset']
    # The smallest source at least 400 pixels wide, for a browser without srcset.
    assert large_img.attrs['src'] == f'/thumbnails/{large["id"]}/400x300.jpeg'
    # 640 wide: its thumbnails are all narrower, the picture itself is.
    assert links[0].children[0].children[-1].attrs['src'] == medium['image']
    # Too small for thumbnails: the picture itself.
    small_img = links[2].children[0].children[-1]
    assert small_img.attrs['src'] == small['image']
    assert srcset(small_img) == [(small['image'], SMALL[0])]
    thumbnail = await conductor.simulate_get(large_img.attrs['src'])
    assert thumbnail.status_code == 200
    assert thumbnail.headers['Content-Type'] == 'image/jpeg'


async def test_a_long_catalog_is_shown_page_by_page(conductor):
    images = await upload_many(conductor, PAGE_SIZE + 6)
    newest = images[::-1]

    _, doc = await get_page(conductor)
    (more,) = doc.all('a', **{'class': 'more'})
    older_resp, older = await get_page(conductor, more.attrs['href'])
    next_api = doc.by_id('gallery').attrs['data-next']
    api = await conductor.simulate_get(next_api)
    first_api = await conductor.simulate_get(doc.by_id('gallery').attrs['data-first'])

    assert shown(doc) == uris(newest[:PAGE_SIZE])
    assert 'hidden' not in more.attrs
    assert more.attrs['rel'] == 'next'
    assert more.attrs['href'].startswith('/?after=')
    assert more.text == 'Older pictures'
    assert shown(older) == uris(newest[PAGE_SIZE:])
    assert 'hidden' in older.all('a', **{'class': 'more'})[0].attrs
    assert older.by_id('gallery').attrs['data-next'] == ''
    assert 'hidden' in older.by_id('empty').attrs
    assert next_api.startswith('/images?limit=24&order=newest&after=')
    assert api.status_code == 200
    assert api.json == newest[PAGE_SIZE:]
    assert first_api.json == newest[:PAGE_SIZE]


async def test_a_catalog_of_exactly_one_page_has_no_older_pictures(conductor):
    images = await upload_many(conductor, PAGE_SIZE)

    _, doc = await get_page(conductor)

    assert shown(doc) == uris(images[::-1])
    assert 'hidden' in doc.all('a', **{'class': 'more'})[0].attrs
    assert doc.by_id('gallery').attrs['data-next'] == ''


async def test_the_page_tells_the_script_where_the_events_stream_stands(
    events_config,
):
    async with falcon.testing.ASGIConductor(
        create_served_app(events_config)
    ) as conductor:
        images = await upload_many(conductor, 3)
        _, after_uploads = await get_page(conductor)
        async with conductor.get_stream('/events') as stream:
            first = await SSEReader(stream.stream).message()
        await conductor.simulate_delete(images[0]['image'], headers=owner(images[0]))
        _, after_delete = await get_page(conductor)

    assert after_uploads.by_id('gallery').attrs['data-events'] == (
        f'/events?after={first["id"]}'
    )
    assert first['id'] == '3'
    assert after_delete.by_id('gallery').attrs['data-events'] == '/events?after=4'
    assert shown(after_delete) == uris(images[:0:-1])
