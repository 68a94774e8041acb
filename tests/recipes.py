"""The deployment recipes of deploy/, read as systemd and nginx read them."""

import os
import pathlib
import shlex
import shutil
import signal

DEPLOY = pathlib.Path(__file__).parents[1] / 'deploy'
UNIT = DEPLOY / 'asgilook.service'
NGINX = DEPLOY / 'nginx.conf'
# Where the unit expects asgilook's virtualenv, and the proxy its server.
INSTALLED_PYTHON = '/opt/asgilook/.venv/bin/python'
SERVICE_ADDRESS = '127.0.0.1:8000'

NGINX_HELP = (
    'The tests of the nginx recipe need a real nginx on PATH or in /usr/sbin '
    '(or its path in ASGI_LOOK_TEST_NGINX). On Debian or Ubuntu: '
    'sudo apt-get install nginx.'
)


def unit_settings() -> dict[str, list[str]]:
    """Return the [Service] section of the unit: each key with its values."""
    settings: dict[str, list[str]] = {}
    section = None
    for line in UNIT.read_text().splitlines():
        if line.startswith('['):
            section = line
        elif section == '[Service]' and '=' in line and not line.startswith('#'):
            key, value = line.split('=', 1)
            settings.setdefault(key, []).append(value)
    return settings


def unit_command() -> list[str]:
    [command] = unit_settings()['ExecStart']
    return shlex.split(command)


def unit_kill_signal() -> signal.Signals:
    [name] = unit_settings()['KillSignal']
    return signal.Signals[name]


def unit_stop_timeout() -> float:
    """Return the seconds systemd waits for a stop before it kills."""
    [seconds] = unit_settings()['TimeoutStopSec']
    return float(seconds.removesuffix('s'))


def unit_environment() -> dict[str, str]:
    return dict(value.split('=', 1) for value in unit_settings().get('Environment', []))


def option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def nginx_binary() -> str:
    binary = (
        os.environ.get('ASGI_LOOK_TEST_NGINX')
        or shutil.which('nginx')
        or shutil.which('nginx', path='/usr/sbin')
    )
    if not binary:
        raise RuntimeError(NGINX_HELP)
    return binary
