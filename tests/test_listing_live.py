"""The whole list of a catalog of 200 000 images, from a real uvicorn: sent in
bounded memory."""

import json
import pathlib
import threading
import time
import uuid

import httpx
import pytest

from asgilook.catalog import Catalog, Record
from asgilook.catalog import sql as catalog_sql

from . import servers

pytestmark = pytest.mark.live

IMAGES = 200_000


async def _fill(storage: pathlib.Path, count: int) -> list[str]:
    """List count images in the catalog, as another process's changes would."""
    ids = [str(uuid.UUID(int=number + 1)) for number in range(count)]
    now = time.time_ns()
    records = [Record(image_id, (640, 480), 1000, now) for image_id in ids]
    catalog = Catalog(storage)
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
