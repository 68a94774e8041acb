"""The gallery's static files, `GET /gallery/{name}`; the page's weight and queries."""

import importlib.resources
import urllib.parse

import pytest

from asgilook.gallery.page import PAGE_SIZE

from .images import encode, gradient
from .paging import upload_many
from .test_gallery import LARGE, assert_policy, conductor, get_page, shown, uris
from .test_gallery import tiles as grid

__all__ = ['conductor']

ASSETS = [
    ('gallery.js', 'text/javascript; charset=utf-8'),
    ('gallery.css', 'text/css; charset=utf-8'),
    ('favicon.svg', 'image/svg+xml'),
]
FOREVER = 'public, max-age=31536000, immutable'
# The whole page without its pictures: HTML, stylesheet, script and icon
# (each picture offered in three formats, AVIF, WebP and JPEG: 65 KB).
PAGE_WEIGHT = 70_000


def package_file(name: str) -> bytes:
    return (
        importlib.resources.files('asgilook.gallery')
        .joinpath('static', name)
        .read_bytes()
    )


async def named_by_page(conductor) -> dict[str, str]:
    """The URLs the page loads its files under, by file name."""
    _, doc = await get_page(conductor)
    (icon,) = doc.all('link', rel='icon')
    (stylesheet,) = doc.all('link', rel='stylesheet')
    (script,) = doc.all('script')
    assert icon.attrs['type'] == 'image/svg+xml'
    assert script.attrs['type'] == 'module'
    urls = [icon.attrs['href'], stylesheet.attrs['href'], script.attrs['src']]
    return {urllib.parse.urlsplit(url).path.rpartition('/')[2]: url for url in urls}


@pytest.mark.parametrize(('name', 'content_type'), ASSETS)
async def test_a_file_is_served_as_shipped_and_revalidated(
    conductor, name, content_type
):
    resp = await conductor.simulate_get(f'/gallery/{name}')
    etag = resp.headers['ETag']
    again = await conductor.simulate_get(
        f'/gallery/{name}', headers={'If-None-Match': etag}
    )

    assert resp.status_code == 200
    assert resp.headers['Content-Type'] == content_type
    assert resp.content == package_file(name)
    assert_policy(resp.headers)
    assert resp.headers['Cache-Control'] == 'no-cache'
    assert again.status_code == 304
    assert again.content == b''


@pytest.mark.parametrize(('name', 'content_type'), ASSETS)
async def test_under_the_url_the_page_names_a_file_is_kept_a_year(
    conductor, name, content_type
):
    url = (await named_by_page(conductor))[name]
    path, _, query = url.partition('?')
    version = urllib.parse.parse_qs(query)['v'][0]

    named = await conductor.simulate_get(url)
    plain = await conductor.simulate_get(path)
    wrong = await conductor.simulate_get(path, query_string=f'v={version[::-1]}')
    head = await conductor.simulate_head(url)

    assert path == f'/gallery/{name}'
    assert list(urllib.parse.parse_qs(query)) == ['v']
    assert named.status_code == 200
    assert named.headers['Cache-Control'] == FOREVER
    assert named.content == package_file(name)
    assert named.headers['ETag'] == plain.headers['ETag']
    assert plain.headers['Cache-Control'] == 'no-cache'
    assert wrong.status_code == 200
    assert wrong.headers['Cache-Control'] == 'no-cache'
    assert head.status_code == 200
    assert head.content == b''
    assert head.headers['Content-Type'] == content_type
    assert head.headers['ETag'] == named.headers['ETag']
    assert head.headers['Cache-Control'] == FOREVER
    assert_policy(head.headers)


async def test_the_versions_are_of_the_files_the_page_loads(conductor):
    urls = await named_by_page(conductor)

    versions = {urllib.parse.urlsplit(url).query for url in urls.values()}

    assert sorted(urls) == sorted(name for name, _ in ASSETS)
    # Each file its own version: a change to one is fetched anew alone.
    assert len(versions) == len(ASSETS)


async def test_a_browser_asking_for_favicon_ico_gets_the_gallerys_icon(conductor):
    # As it does for a page that names no icon: a JPEG opened by itself.
    resp = await conductor.simulate_get('/favicon.ico')
    head = await conductor.simulate_head('/favicon.ico')

    assert resp.status_code == 200
    assert resp.headers['Content-Type'] == 'image/svg+xml'
    assert resp.content == package_file('favicon.svg')
    assert resp.headers['Cache-Control'] == 'no-cache'
    assert_policy(resp.headers)
    assert head.status_code == 200
    assert head.headers['ETag'] == resp.headers['ETag']


@pytest.mark.parametrize('name', ['nope.js', 'gallery.html', 'GALLERY.JS'])
async def test_a_file_the_gallery_has_not_is_a_404(conductor, name):
    resp = await conductor.simulate_get(f'/gallery/{name}')

    assert resp.status_code == 404
    assert resp.headers['Content-Type'] == 'application/json'
    assert resp.json['title'] == 'No such file'
    assert 'Open / to see the gallery' in resp.json['description']
    assert_policy(resp.headers)


async def test_the_page_without_its_pictures_is_light(conductor):
    # Every picture with its whole thumbnail ladder in the HTML.
    picture = encode(gradient(LARGE), 'PNG')
    for _ in range(PAGE_SIZE):
        created = await conductor.simulate_post('/images', body=picture)
        assert created.status_code == 201

    resp, doc = await get_page(conductor)
    urls = await named_by_page(conductor)
    files = [await conductor.simulate_get(url) for url in urls.values()]

    assert len(grid(doc)) == PAGE_SIZE
    # In each of three formats.
    assert all(
        [len(offer.attrs['srcset'].split(',')) for offer in link.children[0].children]
        == [5, 5, 5]
        for link in grid(doc)
    )
    weight = len(resp.content) + sum(len(file.content) for file in files)
    assert weight < PAGE_WEIGHT, weight


@pytest.mark.parametrize(
    ('query', 'title'),
    [
        ('x=1', 'Unknown parameter'),
        ('after=1&x=1', 'Unknown parameter'),
        ('after=1&after=2', 'Repeated parameter'),
        ('after=garbage', 'Invalid cursor'),
        ('after=', 'Invalid cursor'),
    ],
)
async def test_a_query_the_page_does_not_take_is_a_400(conductor, query, title):
    resp = await conductor.simulate_get('/', query_string=query)

    assert resp.status_code == 400
    assert resp.headers['Content-Type'] == 'application/json'
    assert resp.json['title'] == title
    assert resp.json['description']
    assert_policy(resp.headers)


async def test_an_empty_query_is_the_first_page(conductor):
    images = await upload_many(conductor, 2)

    _, doc = await get_page(conductor, '/?&')

    assert shown(doc) == uris(images[::-1])
