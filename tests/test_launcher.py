"""`python -m asgilook` and any server of asgilook.asgi:app: safely, or not at all."""

import logging
import resource
import runpy
import signal
import subprocess
import sys
import time

import pytest
from uvicorn.supervisors.multiprocess import SIGNALS

from asgilook.app import create_served_app
from asgilook.config import Config
from asgilook.serving import launcher
from asgilook.serving.protocol import LimitedHttpToolsProtocol, ServerConfig
from asgilook.serving.startup import AppAtStartup

from . import servers

BAD_SETTING = {'ASGI_LOOK_MIN_THUMB_SIZE': 'abc'}


@pytest.fixture
def signal_handlers():
    """Put back the handlers uvicorn's supervisor replaces and leaves."""
    saved = {sig: signal.getsignal(sig) for sig in SIGNALS}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def test_help_lists_the_options_and_their_defaults():
    done = subprocess.run(
        [sys.executable, '-m', 'asgilook', '--help'],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )

    assert done.returncode == 0
    for option in (
        '--host',
        '--port',
        '--workers',
        '--max-header-size',
        '--header-timeout',
        '--keep-alive-timeout',
        '--limit-concurrency',
        '--backlog',
        '--shutdown-timeout',
    ):
        assert option in done.stdout
    assert '(default: 127.0.0.1)' in done.stdout


def test_python_dash_m_asgilook_runs_the_launcher(monkeypatch, capsys):
    monkeypatch.setattr(sys, 'argv', ['asgilook', '--help'])

    with pytest.raises(SystemExit) as ex:
        runpy.run_module('asgilook', run_name='__main__')

    assert ex.value.code == 0
    assert '--max-header-size' in capsys.readouterr().out


def test_a_bad_setting_exits_2_with_one_line(monkeypatch, capsys):
    monkeypatch.setenv('ASGI_LOOK_MIN_THUMB_SIZE', 'abc')

    with pytest.raises(SystemExit) as exited:
        launcher.main([], run=pytest.fail)

    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        'python -m asgilook: error: ASGI_LOOK_MIN_THUMB_SIZE must be a whole '
        "number from 1, not 'abc'"
    ]


@pytest.mark.parametrize(
    'option',
    ['--port=x', '--workers=0', '--header-timeout=0', '--keep-alive-timeout=x'],
)
def test_a_bad_option_exits_2(option, capsys):
    with pytest.raises(SystemExit) as exited:
        launcher.main([option], run=pytest.fail)

    assert exited.value.code == 2
    assert option.split('=')[0] in capsys.readouterr().err


def test_the_launcher_says_where_images_are_kept_and_passes_its_limits(
    monkeypatch, caplog
):
    caplog.set_level(logging.INFO, logger='asgilook')
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', '/srv/asgilook')
    served = []

    status = launcher.main(
        ['--port', '8123', '--max-header-size', '20000', '--header-timeout', '3'],
        run=lambda config: served.append(config) or 0,
    )

    assert status == 0
    [config] = served
    assert (config.max_header_size, config.header_timeout) == (20000, 3.0)
    assert config.http is LimitedHttpToolsProtocol
    assert 'serving http://127.0.0.1:8123 with 1 worker(s)' in caplog.messages
    assert 'images are kept in /srv/asgilook' in caplog.messages


def test_the_launcher_says_where_several_hosts_keep_their_images(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger='asgilook')
    monkeypatch.setenv('ASGI_LOOK_DATABASE_URL', 'postgresql://look:pw@db/look')
    monkeypatch.setenv('ASGI_LOOK_STORAGE_URL', 's3://pictures/look')

    assert launcher.main([], run=lambda config: 0) == 0

    said = (
        'images are kept in s3://pictures/look, listed in the database of '
        'ASGI_LOOK_DATABASE_URL'
    )
    assert said in caplog.messages
    assert not [line for line in caplog.messages if 'pw' in line]


def test_the_launcher_passes_its_websocket_limit_and_opens_every_file_it_may(
    monkeypatch,
):
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', '/srv/asgilook')
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    served = []
    try:
        launcher.main(
            ['--ws-max-size', '2048', '--limit-concurrency', '9'],
            run=lambda config: (
                served.append((config, resource.getrlimit(resource.RLIMIT_NOFILE))) or 0
            ),
        )
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))

    [(config, during)] = served
    assert (config.ws_max_size, config.limit_concurrency) == (2048, 9)
    # The workers inherit it: as many connections as the system allows.
    assert during == (hard, hard)


def test_reindex_runs_instead_of_the_server(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', str(tmp_path / 'missing'))
    served = []

    status = launcher.main(['reindex'], run=served.append)

    assert status == 1
    assert served == []
    assert any(
        message.startswith(f'cannot reindex {tmp_path / "missing"}')
        for message in caplog.messages
    )


def test_the_launcher_warns_of_storage_under_tmp(monkeypatch, caplog):
    caplog.set_level(logging.INFO, logger='asgilook')
    monkeypatch.setenv('ASGI_LOOK_STORAGE_PATH', '/tmp/asgilook-launcher-test')

    launcher.main(['--host', '::1'], run=lambda config: 0)

    assert 'serving http://[::1]:8000 with 1 worker(s)' in caplog.messages
    [warning] = [r for r in caplog.records if r.levelname == 'WARNING']
    assert '/tmp/asgilook-launcher-test' in warning.getMessage()
    assert 'empty at boot' in warning.getMessage()


def test_a_server_whose_start_fails_exits_3(caplog):
    config = ServerConfig(
        AppAtStartup(lambda: create_served_app(Config(BAD_SETTING))),
        port=servers.free_port(),
        lifespan='on',
        log_level='warning',
    )

    with pytest.raises(SystemExit) as exited:
        launcher.serve(config)

    assert exited.value.code == 3


@pytest.mark.parametrize('sig', [signal.SIGINT, signal.SIGTERM], ids=['INT', 'TERM'])
def test_a_server_stopped_by_a_signal_exits_0(signal_handlers, sig):
    received = []

    def found(signum, frame):
        received.append(signum)

    signal.signal(sig, found)

    async def app(scope, receive, send):
        await receive()
        signal.raise_signal(sig)  # As Ctrl-C or `kill` would, once started.
        await send({'type': 'lifespan.startup.complete'})
        await receive()
        await send({'type': 'lifespan.shutdown.complete'})

    config = ServerConfig(
        app, port=servers.free_port(), lifespan='on', log_level='warning'
    )

    assert launcher.serve(config) == 0
    # uvicorn raises the signal again once stopped, for the handler it
    # found: the launcher's, not this one, which is then put back.
    assert received == []
    assert signal.getsignal(sig) is found


@pytest.mark.live
def test_workers_whose_start_fails_stop_the_launcher_with_3(
    monkeypatch, signal_handlers
):
    monkeypatch.setenv('ASGI_LOOK_MIN_THUMB_SIZE', 'abc')
    config = ServerConfig(
        launcher.APP, port=servers.free_port(), workers=2, log_level='warning'
    )

    started = time.monotonic()
    assert launcher.serve(config) == 3
    assert time.monotonic() - started < 15
