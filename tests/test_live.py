"""End to end: a real uvicorn process serving asgilook against a real redis-server."""

import httpx
import pytest

from . import servers
from .images import decode, encode, gradient

pytestmark = pytest.mark.live


def test_upload_list_download_and_cached_thumbnails(live_server):
    uploads = {
        'png': encode(gradient((640, 480)), 'PNG'),
        'jpeg': encode(gradient((1024, 768)), 'JPEG', quality=90),
    }
    with httpx.Client(base_url=live_server, timeout=30) as http:
        images = []
        for body in uploads.values():
            resp = http.post('/images', content=body)
            assert resp.status_code == 201
            assert resp.headers['Location'] == resp.json()['image']
            images.append(resp.json())

        listing = http.get('/images')
        assert listing.status_code == 200
        assert listing.json() == images
        assert [image['size'] for image in images] == [[640, 480], [1024, 768]]

        for image in images:
            first = http.get(image['image'])
            second = http.get(image['image'])
            assert first.status_code == second.status_code == 200
            assert first.content == second.content
            assert decode(first.content).size == tuple(image['size'])
            assert (
                first.headers['X-ASGILook-Cache'],
                second.headers['X-ASGILook-Cache'],
            ) == ('Miss', 'Hit')

            assert len(image['thumbnails']) >= 2
            for uri in image['thumbnails']:
                miss = http.get(uri)
                hit = http.get(uri)
                assert miss.headers['X-ASGILook-Cache'] == 'Miss'
                assert hit.headers['X-ASGILook-Cache'] == 'Hit'
                assert miss.headers['Content-Type'] == 'image/jpeg'
                assert miss.content == hit.content
                size = uri.rsplit('/', 1)[1].removesuffix('.jpeg').split('x')
                assert decode(miss.content).size == tuple(map(int, size))


def test_without_redis_the_service_starts_and_bypasses(tmp_path):
    unused = f'redis://127.0.0.1:{servers.free_port()}'
    with (
        servers.uvicorn_server(tmp_path / 'images', unused) as base_url,
        httpx.Client(base_url=base_url, timeout=30) as http,
    ):
        upload = http.post('/images', content=encode(gradient(), 'PNG'))
        assert upload.status_code == 201
        for uri in ['/images', upload.json()['image'], upload.json()['thumbnails'][0]]:
            resp = http.get(uri)
            assert resp.status_code == 200
            assert resp.headers['X-ASGILook-Cache'] == 'Bypass'


def test_a_missing_redis_server_fails_loudly(monkeypatch):
    monkeypatch.delenv('ASGI_LOOK_TEST_REDIS_SERVER', raising=False)
    monkeypatch.setenv('PATH', '')

    with pytest.raises(RuntimeError, match='apt-get install redis-server'):
        servers.redis_server_binary()
