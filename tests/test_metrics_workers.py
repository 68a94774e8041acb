"""GET /metrics under several workers: every worker's values, added up."""

import asyncio
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time

import falcon.testing
import httpx
import pytest

from asgilook.app import IMAGES, create_served_app
from asgilook.metrics.directory import VARIABLE, shared_by_workers
from asgilook.metrics.shared import WRITE_SECONDS
from asgilook.serving import launcher

from . import servers
from .scrape import value

REQUESTS = 'asgilook_http_requests_total'

# What a worker that served, held an event stream and died leaves behind.
_WORKER = textwrap.dedent(
    """
    from prometheus_client import CollectorRegistry, Counter, Gauge

    registry = CollectorRegistry()
    Counter('asgilook_uploads', 'uploads', ['status'], registry=registry).labels(
        '201'
    ).inc(3)
    Gauge(
        'asgilook_event_subscribers',
        'streams',
        registry=registry,
        multiprocess_mode='livesum',
    ).inc()
    """
)


def test_a_dead_workers_counts_stay_and_its_streams_go(config, tmp_path):
    directory = tmp_path / 'metrics'
    directory.mkdir()
    subprocess.run(
        [sys.executable, '-c', _WORKER],
        env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(directory)),
        check=True,
    )
    [dead] = directory.glob('gauge_livesum_*.db')
    # A worker alive (this process, as far as the files say) keeps its streams.
    alive = directory / f'gauge_livesum_{os.getpid()}.db'
    alive.write_bytes(dead.read_bytes())
    left = sorted(path.name for path in directory.iterdir())
    config.metrics_directory = str(directory)
    client = falcon.testing.TestClient(create_served_app(config))

    text = client.simulate_get('/metrics').text

    assert sum(name.startswith('gauge_livesum_') for name in left) == 2
    assert value(text, 'asgilook_uploads_total', status='201') == 3
    assert value(text, 'asgilook_event_subscribers') == 1
    assert [path.name for path in directory.iterdir() if 'gauge' in path.name] == [
        f'gauge_livesum_{os.getpid()}.db'
    ]


async def test_a_worker_counts_the_answers_of_the_others(config, tmp_path):
    config.metrics_directory = _directory(tmp_path)
    one, other = create_served_app(config), create_served_app(config)
    async with falcon.testing.ASGIConductor(other) as elsewhere:
        async with falcon.testing.ASGIConductor(one) as conductor:
            for _ in range(3):
                await conductor.simulate_get('/images')
            # Written within a second, while it serves.
            seen = await _until_scraped(elsewhere, WRITE_SECONDS + 4, answers=3)
        # Gone: what it counted stays.
        await elsewhere.simulate_get('/images')
        after = (await elsewhere.simulate_get('/metrics')).text

    assert value(seen, 'asgilook_cache_lookups_total', tier='memory') >= 2
    assert value(after, REQUESTS, route=IMAGES, method='GET', status='200') == 4


async def test_a_worker_stopping_writes_what_it_counted_last(config, tmp_path):
    config.metrics_directory = _directory(tmp_path)
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        await conductor.simulate_get('/images')
        await conductor.simulate_get('/no/such/path')
    other = create_served_app(config)
    async with falcon.testing.ASGIConductor(other) as conductor:
        text = (await conductor.simulate_get('/metrics')).text

    assert value(text, REQUESTS, route=IMAGES, method='GET', status='200') == 1
    assert value(text, REQUESTS, route='unmatched', status='404') == 1
    assert (
        value(
            text,
            'asgilook_http_request_duration_seconds_count',
            route=IMAGES,
        )
        == 1
    )


async def test_a_directory_gone_costs_the_counts_not_the_service(
    config, tmp_path, caplog
):
    config.metrics_directory = directory = _directory(tmp_path)
    app = create_served_app(config)
    async with falcon.testing.ASGIConductor(app) as conductor:
        await conductor.simulate_get('/images')
        shutil.rmtree(directory)
        answer = await conductor.simulate_get('/images')
        scraped = await conductor.simulate_get('/metrics')

    assert answer.status_code == 200
    assert scraped.status_code == 503
    assert scraped.json['title'] == 'Metrics unavailable'
    assert 'PROMETHEUS_MULTIPROC_DIR' in scraped.json['description']
    assert 'could not write the metrics' in caplog.text


def _directory(tmp_path) -> str:
    """A directory for the metrics of a server's workers, made empty."""
    directory = tmp_path / 'metrics'
    directory.mkdir()
    return str(directory)


async def _until_scraped(conductor, seconds: float, answers: int) -> str:
    """Scrape until the list's answers counted reach answers; the last scrape."""
    deadline = time.monotonic() + seconds
    while True:
        text = (await conductor.simulate_get('/metrics')).text
        counted = value(text, REQUESTS, route=IMAGES, method='GET', status='200')
        if counted >= answers or time.monotonic() > deadline:
            assert counted == answers
            return text
        await asyncio.sleep(0.05)


def test_the_launcher_gives_several_workers_one_directory(monkeypatch, tmp_path):
    monkeypatch.delenv(VARIABLE, raising=False)
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', str(tmp_path / 'images'))
    seen = []

    def run(server_config):
        directory = os.environ.get(VARIABLE)
        seen.append((server_config.workers, directory))
        assert directory is None or os.path.isdir(directory)
        return 0

    assert launcher.main(['--workers', '2'], run=run) == 0
    assert launcher.main(['--workers', '1'], run=run) == 0

    [(two, directory), (one, none)] = seen
    assert (two, one, none) == (2, 1, None)
    # Removed once the server stopped; the variable too.
    assert not os.path.exists(directory)
    assert VARIABLE not in os.environ


def test_an_operators_directory_is_theirs(config, tmp_path):
    config.metrics_directory = str(tmp_path)
    environ = {VARIABLE: str(tmp_path)}

    with shared_by_workers(2, config, environ) as made:
        assert made is None
    assert environ == {VARIABLE: str(tmp_path)}
    assert tmp_path.exists()


@pytest.mark.live
def test_two_workers_counters_add_up(tmp_path, live_redis):
    temporary = tmp_path / 'tmp'
    temporary.mkdir()
    port = servers.free_port()
    base = f'http://127.0.0.1:{port}'
    process = servers.start_launcher(
        tmp_path / 'images',
        live_redis,
        port,
        '--workers',
        '2',
        env={'TMPDIR': str(temporary)},
    )
    try:
        [directory] = list(temporary.iterdir())
        # A connection each: the kernel hands them to either worker.
        for _ in range(40):
            assert httpx.get(f'{base}/images').status_code == 200
        # Each worker writes what it counted within a second.
        _until_every_scrape_counts(40, f'{base}/metrics', WRITE_SECONDS + 4)
        written = [
            json.loads(path.read_text()) for path in directory.glob('tallies_*.json')
        ]
    finally:
        servers.stop(process)
    _, stderr = process.communicate()

    assert b'Traceback' not in stderr
    # Both workers counted some of them, each in a file of its own.
    assert len(written) == 2
    for tallies in written:
        assert any(answer[:3] == [IMAGES, 'GET', 200] for answer in tallies['answers'])
    # Made for the server, gone with it.
    assert not directory.exists()


def _until_every_scrape_counts(answers: int, url: str, seconds: float) -> None:
    """Scrape until six in a row (either worker's) count the same answers of the list.

    At least answers of them; within seconds, or the test fails.
    """
    deadline = time.monotonic() + seconds
    while True:
        scrapes = [httpx.get(url).text for _ in range(6)]
        counts = {
            value(text, REQUESTS, route=IMAGES, method='GET', status='200')
            for text in scrapes
        }
        # (The launcher's own readiness check asked for the list too.)
        agree = len(counts) == 1 and min(counts) >= answers
        if agree or time.monotonic() > deadline:
            assert agree, counts
            return
