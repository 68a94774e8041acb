"""Fixtures: the tutorial's (fakeredis, temporary storage, predictable UUIDs)
and real servers for the live tests."""

import dataclasses
import io
import logging
import os
import random
import socket
import sys
import uuid

import fakeredis
import falcon.asgi
import falcon.testing
import PIL.Image
import PIL.ImageDraw
import pytest

from asgilook import workers
from asgilook.app import create_served_app

from . import browser, engines, seaweed, servers
from .fakes import as_listed, make_config
from .images import encode, gradient, image_files
from .paging import upload_many
from .service import Service

# falcon.testing waits for a lifespan's start by spinning the event loop
# (sleep(0) in a loop), which holds the GIL; the start's work runs in threads
# (the catalog's, the file pool's), which then wait a whole switch interval (5 ms)
# at each hand-over of the GIL, and under coverage's tracer a request of the
# TestClient (a start each) took a second. A shorter interval hands it over
# sooner. (uvicorn awaits the start without spinning.)
sys.setswitchinterval(0.0005)
# On some machines a thread woken on another CPU still loses every race for
# the GIL to the spinning one (a request took seconds under coverage): with
# the tests' threads on one CPU, a thread that lets the GIL go hands it over.
# The servers the live tests start get every CPU back (see servers.py).
if sys.gettrace() is not None and hasattr(os, 'sched_setaffinity'):
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


@pytest.fixture(autouse=True)
def asyncio_notes_apart(monkeypatch):
    """Keep asyncio's debug notes out of the log records tests look at.

    The suite runs asyncio in debug mode, which notes every step of a task
    that took over 0.1 s: on a busy machine, steps that only waited for a CPU.
    Those notes go to stderr (shown with a failing test), not among the lines
    asgilook logs.
    """
    monkeypatch.setattr(logging.getLogger('asyncio'), 'propagate', False)


@pytest.fixture
def pillow_opens(monkeypatch):
    """Every file Pillow is asked to open, from now on."""
    opened = []
    real_open = PIL.Image.open

    def watched_open(*args, **kwargs):
        opened.append(args)
        return real_open(*args, **kwargs)

    monkeypatch.setattr(PIL.Image, 'open', watched_open)
    return opened


@pytest.fixture
def predictable_uuid():
    fixtures = (
        uuid.UUID('36562622-48e5-4a61-be67-e426b11821ed'),
        uuid.UUID('3bc731ac-8cd8-4f39-b6fe-1a195d3b4e74'),
        uuid.UUID('ba1c4951-73bc-45a4-a1f6-aa2b958dafa4'),
    )

    def uuid_func():
        try:
            return next(fixtures_it)
        except StopIteration:
            return uuid.uuid4()

    fixtures_it = iter(fixtures)
    return uuid_func


@pytest.fixture
def storage_path(tmpdir):
    # The tutorial shares one directory across the session; images now persist
    # in it, so each test gets its own, as every stateful fixture here does.
    return tmpdir


@pytest.fixture
def redis_server():
    """A fresh fake Redis server, so that no test sees another's cache."""
    return fakeredis.FakeServer()


@pytest.fixture
def config(predictable_uuid, storage_path, redis_server):
    return make_config(storage_path, redis_server, predictable_uuid)


@pytest.fixture
def events_config(config):
    """The config fixture's, its workers reading the change log every 1 ms."""
    config.events = dataclasses.replace(config.events, poll_interval=0.001)
    return config


@pytest.fixture
def client(config):
    app = create_served_app(config)
    return falcon.testing.TestClient(app)


@pytest.fixture
def image(client):
    """An image uploaded through the client, as the list shows it."""
    return as_listed(
        client.simulate_post('/images', body=encode(gradient(), 'PNG')).json
    )


@pytest.fixture
async def stored(storage_path, redis_server):
    """Seven images, uploaded through an app that lists them in one piece."""
    app = create_served_app(make_config(storage_path, redis_server))
    async with falcon.testing.ASGIConductor(app) as conductor:
        return await upload_many(conductor, 7)


@pytest.fixture(params=['list', 'image', 'thumbnail'])
def uri(request, image):
    """Each kind of answer the cache keeps: the list, an image, a thumbnail."""
    return {
        'list': '/images',
        'image': image['image'],
        'thumbnail': image['thumbnails'][0],
    }[request.param]


@pytest.fixture(scope='session')
def png_image():
    image = PIL.Image.new('RGBA', (640, 360), color='black')

    draw = PIL.ImageDraw.Draw(image)
    # The tutorial's picture of random ellipses, the same in every run.
    chosen = random.Random(2026)
    for _ in range(32):
        x0 = chosen.randint(20, 620)
        y0 = chosen.randint(20, 340)
        x1 = chosen.randint(20, 620)
        y1 = chosen.randint(20, 340)
        if x0 > x1:
            x0, x1 = x1, x0
        if y0 > y1:
            y0, y1 = y1, y0
        draw.ellipse([(x0, y0), (x1, y1)], fill='yellow', outline='red')

    output = io.BytesIO()
    image.save(output, 'PNG')
    return output.getvalue()


@pytest.fixture(scope='session')
def image_size():
    def report_size(data):
        image = PIL.Image.open(io.BytesIO(data))
        return image.size

    return report_size


@pytest.fixture
def live_redis(tmp_path):
    """A real redis-server on a free loopback port; yields its URL."""
    with servers.redis_server(tmp_path) as url:
        yield url


@pytest.fixture
def live_server(tmp_path, live_redis):
    """A real uvicorn process serving asgilook.asgi:app; yields its base URL."""
    storage = tmp_path / 'images'
    with servers.uvicorn_server(storage, live_redis) as base_url:
        yield base_url


@pytest.fixture
def service(tmp_path, live_redis):
    """uvicorn --workers 2 serving asgilook over a real Redis (see service.py)."""
    running = Service(tmp_path / 'images', live_redis)
    try:
        yield running
    finally:
        servers.stop(running.process)


# Whether a test's own steps failed (not its set-up or tear-down).
CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if report.when == 'call':
        item.stash[CALL_FAILED] = report.failed
    return report


@pytest.fixture
def browsers(request):
    """Start headless Chromiums (each a browser of its own) with browsers().

    When the test fails, each one's screen is saved in artifacts/ first.
    """
    started = []

    def start(**options):
        started.append(browser.start(**options))
        return started[-1]

    yield start
    for number, driver in enumerate(started):
        if request.node.stash.get(CALL_FAILED, False):
            browser.screenshot(driver, f'{request.node.name}-{number}')
        driver.quit()


@pytest.fixture
def claims():
    """Let go of the claims a test's workers make (a worker holds its own)."""
    yield
    workers.let_go()


@pytest.fixture
def redis(redis_server):
    """A synchronous client on the fake server the app's cache uses."""
    return fakeredis.FakeRedis(server=redis_server)


@pytest.fixture
def storage(storage_path):
    """The names in the storage directory, to compare before and after."""
    return lambda: image_files(storage_path)


@pytest.fixture
def silent_redis():
    """A loopback port that takes connections and never answers: a frozen Redis."""
    with socket.socket() as listener:
        listener.bind(('127.0.0.1', 0))
        listener.listen(64)
        yield f'redis://127.0.0.1:{listener.getsockname()[1]}'


@pytest.fixture
def logged(caplog):
    """caplog, taking asgilook's INFO lines too."""
    caplog.set_level(logging.INFO, logger='asgilook')
    return caplog


@pytest.fixture(scope='session')
def postgres_server():
    """A real PostgreSQL server on a free loopback port, for the whole session."""
    with engines.postgres_server() as server:
        yield server


@pytest.fixture
def database_url(postgres_server):
    """A fresh database on the session's PostgreSQL; yields its URL."""
    with postgres_server.database() as url:
        yield url


@pytest.fixture(scope='session')
def seaweed_server():
    """A real SeaweedFS (S3) server on free loopback ports, for the whole session."""
    with seaweed.seaweed_server() as server:
        yield server


@pytest.fixture
def bucket(seaweed_server):
    """A fresh bucket on the session's SeaweedFS; yields its name."""
    with seaweed_server.bucket() as name:
        yield name


@pytest.fixture
def s3_environ(seaweed_server):
    """AWS_ENDPOINT_URL, credentials and region for the session's SeaweedFS."""
    return dict(seaweed_server.environ)


@pytest.fixture
def storage_url(bucket):
    """ASGI_LOOK_STORAGE_URL of a fresh bucket, under a prefix as most are."""
    return f's3://{bucket}/images'
