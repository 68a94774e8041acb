"""deploy/asgilook.service: a unit systemd takes, whose stop and restarts
match what `python -m asgilook` does."""

import pathlib
import signal
import subprocess
import sys

import httpx
import pytest

from . import recipes, servers


def _installed_here(tmp_path: pathlib.Path) -> pathlib.Path:
    """Return the unit, its virtualenv's Python this one (as if installed)."""
    unit = tmp_path / 'asgilook.service'
    unit.write_text(
        recipes.UNIT.read_text().replace(recipes.INSTALLED_PYTHON, sys.executable)
    )
    return unit


def test_systemd_takes_the_unit_without_a_word(tmp_path):
    verified = subprocess.run(
        ['systemd-analyze', 'verify', str(_installed_here(tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )

    # A key systemd does not know, or a value it cannot read, is only a
    # warning: it must say nothing at all.
    assert (verified.returncode, verified.stderr, verified.stdout) == (0, '', '')


def test_the_unit_keeps_images_in_its_state_directory():
    settings = recipes.unit_settings()

    assert settings['StateDirectory'] == ['asgilook']
    assert recipes.unit_environment()['ASGI_LOOK_STORAGE_PATH'] == '/var/lib/asgilook'


def test_systemd_waits_for_the_requests_in_flight_before_it_kills():
    settings = recipes.unit_settings()
    shutdown = float(recipes.option(recipes.unit_command(), '--shutdown-timeout'))

    # SIGTERM to the launcher alone, which stops its workers itself.
    assert recipes.unit_kill_signal() == signal.SIGTERM
    assert settings['KillMode'] == ['mixed']
    assert recipes.unit_stop_timeout() > shutdown


def _unit_command_on(port: int) -> list[str]:
    command = recipes.unit_command()
    command[0] = sys.executable
    command[command.index('--port') + 1] = str(port)
    return command


@pytest.mark.live
def test_a_bad_setting_exits_with_a_status_systemd_does_not_restart(tmp_path):
    environment = dict(
        recipes.unit_environment(),
        ASGI_LOOK_STORAGE_PATH=str(tmp_path / 'images'),
        ASGI_LOOK_JPEG_QUALITY='101',
    )
    status, stderr, _ = servers.run_until_exit(
        _unit_command_on(servers.free_port()), env=environment
    )

    assert 'ASGI_LOOK_JPEG_QUALITY' in stderr
    assert str(status) in recipes.unit_settings()['RestartPreventExitStatus']


@pytest.mark.live
def test_the_kill_signal_stops_the_service_cleanly_in_time(tmp_path, live_redis):
    port = servers.free_port()
    # The unit's command and settings, but for where the images and Redis are.
    arguments = _unit_command_on(port)[3:]
    environment = recipes.unit_environment()
    del environment['ASGI_LOOK_STORAGE_PATH'], environment['ASGI_LOOK_REDIS_HOST']
    process = servers.start_launcher(
        tmp_path / 'images', live_redis, port, *arguments, env=environment
    )
    try:
        health = httpx.get(f'http://127.0.0.1:{port}/health').status_code
        process.send_signal(recipes.unit_kill_signal())
        status = process.wait(timeout=recipes.unit_stop_timeout())
    finally:
        servers.stop(process)
        _, log = process.communicate()

    assert health == 200
    # 0: a clean stop, which Restart=on-failure leaves stopped.
    assert status == 0, log.decode()
