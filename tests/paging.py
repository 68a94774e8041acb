"""Pages of the list in the tests: upload many, follow the Link headers."""

import re

from .fakes import upload_through

# What a page's Link header says: the next page, as a URL of this service.
LINK = re.compile(
    r'<(/images\?limit=([0-9]+)(?:&order=newest)?&after=([A-Za-z0-9_-]+))>; rel="next"'
)
# Small pictures: no thumbnails to render, quick to upload.
SMALL = (32, 24)


def next_page(resp) -> str | None:
    """The URL the Link header of a page names as the next one, or None."""
    link = resp.headers.get('Link')
    if link is None:
        return None
    match = LINK.fullmatch(link)
    assert match is not None, link
    return match[1]


async def upload_many(conductor, count: int) -> list[dict]:
    return [await upload_through(conductor, SMALL) for _ in range(count)]


async def walk(conductors, uri='/images?limit=3') -> list[list[dict]]:
    """Follow the Links from uri to the last page, asking each worker in turn."""
    pages = []
    while uri is not None:
        resp = await conductors[len(pages) % len(conductors)].simulate_get(uri)
        assert resp.status_code == 200
        pages.append(resp.json)
        uri = next_page(resp)
    return pages


def ids(images) -> list[str]:
    return [image['id'] for image in images]
