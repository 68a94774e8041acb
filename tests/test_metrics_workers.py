"""GET /metrics under several workers: every worker's values, added up."""

import os
import subprocess
import sys
import textwrap

import falcon.testing
import httpx
import pytest

from asgilook.app import IMAGES, create_served_app
from asgilook.metrics.directory import VARIABLE, shared_by_workers
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
        scrapes = [httpx.get(f'{base}/metrics').text for _ in range(6)]
        files = {path.name for path in directory.iterdir()}
    finally:
        servers.stop(process)
    _, stderr = process.communicate()

    assert b'Traceback' not in stderr
    # Each scrape, whichever worker answered it, counts all of them.
    for text in scrapes:
        # (The launcher's own readiness check asked for the list too.)
        assert value(text, REQUESTS, route=IMAGES, method='GET', status='200') >= 40
    counts = {
        value(text, REQUESTS, route=IMAGES, method='GET', status='200')
        for text in scrapes
    }
    assert len(counts) == 1
    # Both workers counted some of them, each in a file of its own.
    assert len([name for name in files if name.startswith('counter_')]) == 2
    # Made for the server, gone with it.
    assert not directory.exists()
