"""Storage directories changed by hand, and asgilook started over them."""

import contextlib
import datetime
import os
import pathlib
import subprocess
import sys
import uuid

import falcon
import falcon.testing

from asgilook.app import create_served_app
from asgilook.catalog.record import file_name

from .fakes import make_config
from .images import encode, gradient


@contextlib.asynccontextmanager
async def started(storage_path):
    """One start of asgilook over storage_path (a worker, until the block ends)."""
    app = create_served_app(make_config(storage_path))
    async with falcon.testing.ASGIConductor(app) as conductor:
        yield conductor


def jpeg(size=(320, 200)) -> bytes:
    return encode(gradient(size), 'JPEG')


def place(storage_path, data: bytes, size, image_id=None, modified=None) -> str:
    """Put a file in the storage directory as asgilook names images; its name."""
    name = file_name(image_id or str(uuid.uuid4()), size, len(data))
    path = pathlib.Path(storage_path) / name
    path.write_bytes(data)
    if modified is not None:
        os.utime(path, (modified, modified))
    return name


def messages(caplog) -> list[str]:
    return [record.getMessage() for record in caplog.records]


def summaries(caplog) -> list[str]:
    return [m for m in messages(caplog) if m.startswith('reindexed ')]


def dead_pid() -> int:
    process = subprocess.Popen(['true'])
    process.wait()
    return process.pid


def http_date(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime('%a, %d %b %Y %H:%M:%S GMT')


async def listed(conductor) -> list[dict]:
    resp = await conductor.simulate_get('/images')
    assert resp.status_code == 200
    return resp.json


def run_reindex(storage) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, '-m', 'asgilook', 'reindex'],
        env=dict(os.environ, ASGI_LOOK_STORAGE_PATH=str(storage)),
        capture_output=True,
        text=True,
        timeout=60,
    )
