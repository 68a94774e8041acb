"""End to end: a real uvicorn process serving asgilook against a real redis-server."""

import asyncio
import signal
import socket
import sqlite3
import threading
import time

import httpx
import pytest

from asgilook.catalog.database import CATALOG_DIRECTORY, DATABASE_NAME

from . import servers
from .fakes import as_listed, owner
from .images import decode, encode, gradient, image_files

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
            images.append(as_listed(resp.json()))

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


def test_a_stopped_server_leaves_no_render_process_behind(tmp_path, live_redis):
    port = servers.free_port()
    process = servers.start_uvicorn(tmp_path / 'images', live_redis, port)
    try:
        with httpx.Client(base_url=f'http://127.0.0.1:{port}', timeout=30) as http:
            image = http.post('/images', content=encode(gradient(), 'PNG')).json()
            assert http.get(image['thumbnails'][0]).status_code == 200
        started = servers.descendants(process.pid)
        assert started

        # SIGTERM to uvicorn alone, as a service manager stops it.
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(map(servers.alive, started)) and time.monotonic() < deadline:
            time.sleep(0.05)
        left = [pid for pid in started if servers.alive(pid)]
    finally:
        servers.stop(process)

    assert left == []


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


def _read_response(sock) -> bytes:
    response = b''
    while b'\r\n\r\n' not in response:
        data = sock.recv(65536)
        if not data:
            break
        response += data
    return response


def test_an_oversized_chunked_upload_is_refused_before_it_ends(tmp_path, live_redis):
    limit = 1_000_000
    with servers.uvicorn_server(
        tmp_path / 'images', live_redis, env={'ASGI_LOOK_MAX_UPLOAD_SIZE': str(limit)}
    ) as base_url:
        port = int(base_url.rsplit(':', 1)[1])
        with socket.create_connection(('127.0.0.1', port), timeout=10) as sock:
            sock.sendall(
                b'POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\n'
                b'Transfer-Encoding: chunked\r\n\r\n'
            )
            chunk = b'\x89PNG\r\n\x1a\n' + b'\x00' * 65528
            sent = 0
            # A little over the limit, and never the closing zero-length chunk:
            # the answer can only come from a server that stopped reading.
            while sent <= limit + len(chunk):
                sock.sendall(b'%x\r\n%s\r\n' % (len(chunk), chunk))
                sent += len(chunk)
            response = _read_response(sock)

        assert response.startswith(b'HTTP/1.1 413 ')
        assert httpx.get(f'{base_url}/images').json() == []
        assert image_files(tmp_path / 'images') == []


def test_a_declared_oversized_upload_is_refused_unread(tmp_path, live_redis):
    with (
        servers.uvicorn_server(tmp_path / 'images', live_redis) as base_url,
        socket.create_connection(
            ('127.0.0.1', int(base_url.rsplit(':', 1)[1])), timeout=10
        ) as sock,
    ):
        sock.sendall(
            b'POST /images HTTP/1.1\r\nHost: 127.0.0.1\r\n'
            b'Content-Length: 1073741824\r\n\r\n'
        )
        # The first 64 KiB of the promised GiB, and no more.
        sock.sendall(b'\x89PNG\r\n\x1a\n' + b'\x00' * 65528)

        assert _read_response(sock).startswith(b'HTTP/1.1 413 ')


def _get_fresh(base_url: str, uri: str) -> int:
    # A new connection each time, so that either worker process may answer.
    with httpx.Client(base_url=base_url, timeout=30) as http:
        return http.get(uri).status_code


def _upload_gradients(base_url: str, count: int) -> list[dict]:
    images = []
    for number in range(count):
        body = encode(gradient((256 + number, 192)), 'PNG')
        with httpx.Client(base_url=base_url, timeout=30) as http:
            resp = http.post('/images', content=body)
        assert resp.status_code == 201
        images.append(as_listed(resp.json()))
    return images


def _delete(base_url: str, image: dict, headers: dict[str, str]) -> int:
    # A new connection each time, so that either worker process may answer.
    with httpx.Client(base_url=base_url, timeout=30) as http:
        return http.delete(image['image'], headers=headers).status_code


def _refuses_all_but_the_uploader(base_url: str, image: dict, other: dict) -> None:
    """Anonymous and forged deletes are refused by every worker; then it goes."""
    assert {_delete(base_url, image, {}) for _ in range(4)} == {401}
    assert {_delete(base_url, image, owner(other)) for _ in range(4)} == {403}
    assert _delete(base_url, image, owner(image)) == 204


def _delete_every_other(base_url: str, images: list[dict]) -> list[dict]:
    """Delete every other image, check each worker tells; return those kept."""
    deleted, kept = images[::2], images[1::2]
    for image, other in zip(deleted, kept, strict=True):
        _refuses_all_but_the_uploader(base_url, image, other)
    for image in deleted:
        for uri in [image['image'], *image['thumbnails']]:
            assert {_get_fresh(base_url, uri) for _ in range(4)} == {404}
    for image in kept:
        for uri in [image['image'], *image['thumbnails']]:
            assert {_get_fresh(base_url, uri) for _ in range(4)} == {200}
    return kept


def test_two_workers_share_images_and_survive_sigkill(tmp_path, live_redis):
    storage = tmp_path / 'images'
    port = servers.free_port()
    base_url = f'http://127.0.0.1:{port}'
    process = servers.start_uvicorn(storage, live_redis, port, '--workers', '2')
    try:
        images = _upload_gradients(base_url, 20)
        uris = [
            uri for image in images for uri in [image['image'], *image['thumbnails']]
        ]
        statuses = [_get_fresh(base_url, uri) for uri in uris for _ in range(10)]
        assert set(statuses) == {200}
        kept = _delete_every_other(base_url, images)
        assert httpx.get(f'{base_url}/images').json() == kept
    finally:
        servers.stop(process, signal.SIGKILL)

    restarted = servers.start_uvicorn(storage, live_redis, port, '--workers', '2')
    try:
        assert httpx.get(f'{base_url}/images').json() == kept
        for image in kept:
            resp = httpx.get(f'{base_url}{image["image"]}')
            assert resp.status_code == 200
            assert list(decode(resp.content).size) == image['size']
        # The tokens issued before the restart still are the uploaders'.
        _refuses_all_but_the_uploader(base_url, kept[0], kept[1])
    finally:
        servers.stop(restarted)


def _open_and_read(database, stop: threading.Event, opened: list) -> None:
    """Open the catalog and read it, again and again, as a starting worker does."""
    while not stop.is_set():
        connection = sqlite3.connect(database)
        try:
            connection.execute('SELECT count(*) FROM images').fetchone()
        finally:
            connection.close()
        opened.append(True)


def test_another_process_opening_the_catalog_leaves_a_worker_serving(
    tmp_path, live_redis
):
    # Each worker starting, and each `asgilook reindex`, opens the catalog
    # while the running workers write to it. The first of them to open it
    # resets its shared memory; none of the later ones may take it for the
    # first (a running worker would die of it, answering nothing).
    storage = tmp_path / 'images'
    port = servers.free_port()
    process = servers.start_uvicorn(storage, live_redis, port)
    stop, opened = threading.Event(), []
    opener = threading.Thread(
        target=_open_and_read,
        args=(storage / CATALOG_DIRECTORY / DATABASE_NAME, stop, opened),
    )
    opener.start()
    try:
        images = _upload_gradients(f'http://127.0.0.1:{port}', 40)
    finally:
        stop.set()
        opener.join()
        running = process.poll() is None
        servers.stop(process)

    assert running
    assert len(opened) > len(images) == 40


async def _hammer(base_url: str, expected: dict, stop: asyncio.Event, results: list):
    """Ask for every URI in turn until told to stop; record what came back."""
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        while not stop.is_set():
            for uri, body in expected.items():
                started = time.monotonic()
                try:
                    resp = await http.get(uri)
                except httpx.HTTPError as ex:
                    results.append((uri, repr(ex), None, time.monotonic() - started))
                    continue
                ok = resp.status_code == 200 and resp.content == body
                state = resp.headers.get('X-ASGILook-Cache')
                results.append((uri, ok, state, time.monotonic() - started))


def _settled(results: list, state: str = 'Hit') -> bool:
    """Whether the last 20 answers all came from the cache in this state."""
    return len(results) >= 20 and {result[2] for result in results[-20:]} == {state}


async def _under_load(
    base_url: str, expected: dict, seconds: float, until=lambda results: True
) -> list:
    """Ask from four clients for seconds, and on until `until` (10 s at most)."""
    stop, results = asyncio.Event(), []
    workers = [
        asyncio.create_task(_hammer(base_url, expected, stop, results))
        for _ in range(4)
    ]
    await asyncio.sleep(seconds)
    for _ in range(100):
        if until(results):
            break
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.gather(*workers)
    return results


async def test_freezing_or_killing_redis_fails_no_request(tmp_path):
    port = servers.free_port()
    redis_url = f'redis://127.0.0.1:{port}'
    redis = await asyncio.to_thread(servers.start_redis, tmp_path, port)
    try:
        with servers.uvicorn_server(tmp_path / 'images', redis_url) as base_url:
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
                image = (
                    await http.post('/images', content=encode(gradient(), 'PNG'))
                ).json()
                uris = ['/images', image['image'], *image['thumbnails']]
                expected = {uri: (await http.get(uri)).content for uri in uris}

            phases = {'warm': await _under_load(base_url, expected, 1)}
            redis.send_signal(signal.SIGSTOP)
            phases['frozen'] = await _under_load(base_url, expected, 2.5)
            redis.send_signal(signal.SIGCONT)
            # Back to the cache within seconds, however busy the machine.
            phases['thawed'] = await _under_load(base_url, expected, 2, _settled)
            servers.stop(redis, signal.SIGKILL)
            phases['killed'] = await _under_load(
                base_url, expected, 2, lambda results: _settled(results, 'Bypass')
            )
            redis = await asyncio.to_thread(servers.start_redis, tmp_path, port)
            phases['restarted'] = await _under_load(base_url, expected, 2.5, _settled)
    finally:
        redis.send_signal(signal.SIGCONT)
        servers.stop(redis)

    _assert_no_request_failed(phases)


def _assert_no_request_failed(phases: dict[str, list]) -> None:
    for name, results in phases.items():
        failed = [result for result in results if result[1] is not True]
        assert results, name
        assert not failed, (name, failed[:5])
        # Nothing waits on Redis longer than the timeout, and a margin for load.
        assert max(result[3] for result in results) < 0.25 + 2.0, name

    def states(name, part=slice(None)):
        return {result[2] for result in phases[name][part]}

    def tail(name):
        return name, [(uri, state) for uri, _, state, _ in phases[name][-20:]]

    assert states('warm') == {'Hit'}, tail('warm')
    assert 'Bypass' in states('frozen')
    assert states('thawed', slice(-20, None)) == {'Hit'}, tail('thawed')
    assert states('killed', slice(-20, None)) == {'Bypass'}, tail('killed')
    assert states('restarted') >= {'Miss', 'Hit'}
    assert states('restarted', slice(-20, None)) == {'Hit'}, tail('restarted')
