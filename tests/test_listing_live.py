"""The whole list of a catalog of 200 000 images, from a real uvicorn: sent in
bounded memory."""

import asyncio
import json
import pathlib
import socket
import threading
import time
import uuid

import httpx
import pytest

from asgilook.catalog import Record, SqliteCatalog
from asgilook.catalog import sql as catalog_sql

from . import servers

pytestmark = pytest.mark.live

IMAGES = 200_000


async def _fill(storage: pathlib.Path, count: int) -> list[str]:
    """List count images in the catalog, as another process's changes would."""
    ids = [str(uuid.UUID(int=number + 1)) for number in range(count)]
    now = time.time_ns()
    records = [Record(image_id, (640, 480), 1000, now) for image_id in ids]
    catalog = SqliteCatalog(storage)
    try:
        await catalog.open()
        await catalog.locked(
            lambda writer: catalog_sql.insert_rows(writer, records) or 1
        )
    finally:
        await catalog.close()
        catalog.shutdown()
    return ids


class _PeakRSS(threading.Thread):
    """The most resident memory a process held while the block ran, in KiB."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self._pid = pid
        self.peak = 0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.01):
            self.peak = max(self.peak, servers.rss_kib(self._pid))

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        self.join()


async def test_the_whole_list_of_200_000_images_takes_bounded_memory(
    tmp_path, live_redis
):
    storage = tmp_path / 'images'
    port = servers.free_port()
    process = servers.start_uvicorn(storage, live_redis, port)
    try:
        ids = await _fill(storage, IMAGES)
        worker = process.pid
        before = servers.rss_kib(worker)
        with (
            _PeakRSS(worker) as peak,
            httpx.stream('GET', f'http://127.0.0.1:{port}/images', timeout=120) as resp,
        ):
            body = b''.join(resp.iter_bytes())
    finally:
        servers.stop(process)

    assert resp.status_code == 200
    assert 'content-length' not in resp.headers
    listed = json.loads(body)
    assert [image['id'] for image in listed] == ids
    # In one piece (asgilook 0.8), the list took 541 MiB more: 2.8 KiB an image.
    assert (peak.peak - before) / 1024 < 64


async def test_a_whole_list_whose_client_reads_nothing_is_cut(tmp_path, live_redis):
    # Its snapshot of the catalog, held open while the client stayed, kept
    # SQLite from moving the WAL into the database: the WAL grew with every
    # upload (89 MB after 3 900 uploads), for as long as the client liked.
    storage = tmp_path / 'images'
    port = servers.free_port()
    process = servers.start_launcher(
        storage, live_redis, port, env={'ASGI_LOOK_BODY_TIMEOUT': '1'}
    )
    try:
        ids = await _fill(storage, 30_000)
        stalled = [_read_nothing(port) for _ in range(3)]
        # Clients that stay, reading nothing, three times as long as allowed.
        await asyncio.sleep(3)
        cut = [_read_to_end(client) for client in stalled]
        whole = await asyncio.to_thread(
            httpx.get, f'http://127.0.0.1:{port}/images', timeout=60
        )
    finally:
        servers.stop(process)
    with process.stderr:
        log = process.stderr.read().decode()

    assert all(sent.startswith(b'HTTP/1.1 200 OK') for sent in cut)
    assert not any(sent.endswith(b']') for sent in cut)
    assert [image['id'] for image in whole.json()] == ids
    assert log.count('ASGI callable returned without completing response.') == 1
    assert 'Traceback' not in log


def _read_nothing(port: int) -> socket.socket:
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect(('127.0.0.1', port))
    client.sendall(b'GET /images HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
    return client


def _read_to_end(client: socket.socket) -> bytes:
    """What the server sent before it closed the connection (it must, within 30 s)."""
    client.settimeout(30)
    sent = b''
    with client:
        while chunk := client.recv(65536):
            sent += chunk
    return sent.rstrip(b'\r\n0')
