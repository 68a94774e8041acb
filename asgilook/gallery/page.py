"""`GET /`: the gallery's page, with the newest pictures in its HTML."""

from __future__ import annotations

import hashlib
import html
import string
from typing import Any

import falcon
import falcon.asgi

from ..events import Feed
from ..http import paging, queries
from ..imaging.screening import TILE_BOUND
from ..store import Image, Store
from .assets import Asset, load
from .policy import protect

# Pictures in the page's HTML, and in each page the script asks for after it.
PAGE_SIZE = 24
# How wide a picture is shown, for the browser to pick from srcset: the
# grid's columns (gallery.css) at each width of the window.
SIZES = (
    '(min-width: 1400px) 16vw, (min-width: 1000px) 20vw, (min-width: 600px) 33vw, 50vw'
)
# The formats a <picture> offers before JPEG, smallest files first, and the
# field of the image object that lists each one's thumbnails.
MODERN_SOURCES = (('image/avif', 'thumbnails_avif'), ('image/webp', 'thumbnails_webp'))
# The width the src of a browser that knows no srcset is picked for.
_PLAIN_WIDTH = 400
# The API's pages the script asks for: newest first, as the page shows them.
_NEWEST = paging.PageRequest(PAGE_SIZE, 0, newest=True)


class Gallery:
    """The HTML page: a grid of pictures, newest first, and the script's hooks.

    `GET /?after=<cursor>` is the page of pictures after another (a link at
    the bottom of each full page, for browsers without JavaScript).
    """

    def __init__(self, store: Store, feed: Feed, assets: dict[str, Asset]) -> None:
        self._store = store
        self._feed = feed
        self._assets = assets
        self._template = string.Template(load('gallery.html').body.decode())

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        # An error's answer too.
        protect(resp)
        after = _after(req.query_string)
        # The stream's position first: what changes after it is told to the
        # script, whether the page below shows it already or not.
        span = await self._feed.span()
        images, next_after = await self._store.page(after, PAGE_SIZE, newest=True)
        body = self._render(images, next_after, span.last).encode()
        resp.content_type = falcon.MEDIA_HTML
        resp.etag = hashlib.sha256(body).hexdigest()[:32]
        # Every upload and delete changes it: ask before reusing it.
        resp.cache_control = ['no-cache']
        resp.data = body

    on_head = on_get

    def _render(self, images: list[Image], next_after: int | None, serial: int) -> str:
        # The script's end of the list too: shown while there is more.
        next_api = ''
        more = '<a class="more" hidden>Older pictures</a>'
        if next_after is not None:
            cursor = paging.encode_cursor(next_after)
            more = (
                f'<a class="more" rel="next" href="/?after={cursor}">Older pictures</a>'
            )
            next_api = _NEWEST.next_uri(next_after)
        return self._template.substitute(
            stylesheet=self._assets['gallery.css'].url,
            script=self._assets['gallery.js'].url,
            icon=self._assets['favicon.svg'].url,
            tiles=''.join(tile(image) for image in images),
            empty=' hidden' if images else '',
            first=f'/images?{_NEWEST.query}',
            next=next_api,
            sizes=SIZES,
            more=more,
            events=f'/events?after={serial}',
        )


def _width(source: tuple[str, int]) -> int:
    return source[1]


def _tall(size: tuple[int, int]) -> bool:
    """Whether a picture is too tall to be a source of its tile.

    A browser picks from srcset by width alone: all the thumbnails of a
    picture taller than wide are narrower than it, and for a tile wider
    than they are it would take the picture itself (127x65500: 8 MP).
    """
    width, height = size
    return height > width and height > TILE_BOUND


def tile(image: Image) -> str:
    """Return the grid's item of an image (gallery.js makes the same ones).

    From the image as the API lists it, as the script does: a <picture> whose
    <source>s offer AVIF, then WebP, the first a browser shows taken, and
    whose <img> offers JPEG to every other.
    """
    listed = image.serialize()
    width, height = image.size
    modified = listed['modified']
    offered = _offered(image, listed)
    sources = offered['thumbnails']
    fitting = [source for source in sources if source[1] >= _PLAIN_WIDTH]
    # The narrowest that fills a plain browser's tile, else the widest there is.
    src = (min(fitting, key=_width) if fitting else max(sources, key=_width))[0]
    alt = f'Picture of {width} × {height} pixels, uploaded {modified}'
    attributes = {
        'src': src,
        'srcset': _srcset(sources),
        'sizes': SIZES,
        'width': width,
        'height': height,
        'alt': alt,
    }
    offers = ''.join(
        f'<source type="{media_type}" '
        f'srcset="{html.escape(_srcset(offered[field]))}" '
        f'sizes="{html.escape(SIZES)}">'
        for media_type, field in MODERN_SOURCES
    )
    img = ' '.join(
        f'{name}="{html.escape(str(value))}"' for name, value in attributes.items()
    )
    return (
        f'<li class="tile" id="image-{image.image_id}" data-modified="{modified}">'
        f'<a href="{image.uri}"><picture>{offers}<img {img} loading="lazy" '
        'decoding="async" elementtiming="thumbnail"></picture></a></li>\n'
    )


def _offered(image: Image, listed: dict[str, Any]) -> dict[str, list[tuple[str, int]]]:
    """Return each format's sources with their widths, by the image object's field.

    The picture itself is a source of its tile, as JPEG in every format's
    list (it is stored as JPEG only, which every browser shows): a tile
    wider than its largest thumbnail takes it.
    """
    widths = [size[0] for size in image.thumbnail_sizes()]
    whole = [(image.uri, image.size[0])] if not widths or not _tall(image.size) else []
    fields = ['thumbnails', *(field for _, field in MODERN_SOURCES)]
    return {
        field: whole + list(zip(listed[field], widths, strict=True)) for field in fields
    }


def _srcset(sources: list[tuple[str, int]]) -> str:
    return ', '.join(f'{uri} {width}w' for uri, width in sources)


def _after(query: str) -> int:
    """The cursor the page starts after (0: the newest picture)."""
    if not query:
        return 0
    given = queries.parameters(
        query,
        frozenset({'after'}),
        lambda name: f'The gallery takes after, not {name}. Open / to see it.',
        'Give after once, as the gallery\'s "Older pictures" link does.',
    )
    return paging.decode_cursor(given['after']) if 'after' in given else 0
