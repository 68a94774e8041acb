"""Real redis-server and uvicorn processes on free loopback ports, for live tests."""

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx

REDIS_SERVER_HELP = (
    'The live tests need a real redis-server on PATH (or its path in '
    'ASGI_LOOK_TEST_REDIS_SERVER). On Debian or Ubuntu: '
    'sudo apt-get install redis-server; on macOS: brew install redis.'
)

STARTUP_SECONDS = 20

# The CPUs the tests may use, read before conftest keeps the test process on
# one of them under coverage: the servers they start get them all back.
CPUS = os.sched_getaffinity(0)


def on_every_cpu() -> None:
    os.sched_setaffinity(0, CPUS)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def redis_server_binary() -> str:
    binary = os.environ.get('ASGI_LOOK_TEST_REDIS_SERVER') or shutil.which(
        'redis-server'
    )
    if not binary:
        raise RuntimeError(REDIS_SERVER_HELP)
    return binary


def start_redis(workdir, port: int) -> subprocess.Popen:
    """Start redis-server on 127.0.0.1:port; return once it answers PING."""
    process = subprocess.Popen(
        [
            redis_server_binary(),
            '--bind',
            '127.0.0.1',
            '--port',
            str(port),
            '--save',
            '',
            '--appendonly',
            'no',
            # As the README says to run it.
            '--maxmemory',
            '256mb',
            '--maxmemory-policy',
            'allkeys-lru',
            '--dir',
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        preexec_fn=on_every_cpu,
    )
    _wait_until(lambda: _redis_answers(port), process, f'redis-server on {port}')
    return process


@contextlib.contextmanager
def redis_server(workdir):
    """Run a redis-server for the duration of the block; yield its URL."""
    port = free_port()
    process = start_redis(workdir, port)
    try:
        yield f'redis://127.0.0.1:{port}'
    finally:
        stop(process)


def start_uvicorn(
    storage,
    redis_url: str,
    port: int,
    *args: str,
    env=None,
    app='asgilook.asgi:app',
    ready_path='/images',
    stderr=None,
) -> subprocess.Popen:
    """Start uvicorn serving asgilook; return once it answers GET ready_path.

    stderr: as subprocess.Popen takes it (subprocess.PIPE to read its log).
    """
    env = dict(
        os.environ,
        ASGI_LOOK_STORAGE_PATH=str(storage),
        ASGI_LOOK_REDIS_HOST=redis_url,
        **(env or {}),
    )
    process = subprocess.Popen(
        [
            sys.executable,
            '-m',
            'uvicorn',
            app,
            '--host',
            '127.0.0.1',
            '--port',
            str(port),
            '--no-access-log',
            *args,
        ],
        env=env,
        stderr=stderr,
        # Its own process group, so that stop() reaches uvicorn's worker
        # processes too, and nothing else.
        start_new_session=True,
        preexec_fn=on_every_cpu,
    )
    process.leads_group = True
    base_url = f'http://127.0.0.1:{port}'
    _wait_until(
        lambda: _http_answers(base_url + ready_path), process, f'uvicorn on {port}'
    )
    return process


@contextlib.contextmanager
def uvicorn_server(storage, redis_url: str, *args: str, env=None):
    """Run uvicorn serving asgilook for the duration of the block; yield its URL."""
    port = free_port()
    process = start_uvicorn(storage, redis_url, port, *args, env=env)
    try:
        yield f'http://127.0.0.1:{port}'
    finally:
        stop(process)


def stop(process: subprocess.Popen, sig=signal.SIGTERM) -> None:
    """Stop a process this module started, by its pid (its group, if it leads one)."""
    leads_group = getattr(process, 'leads_group', False)

    def send(signum) -> None:
        if leads_group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)

    if process.poll() is None:
        send(sig)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            send(signal.SIGKILL)
            process.wait(timeout=10)
    if leads_group:
        # uvicorn's worker processes, should their supervisor have gone first.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    """The processes pid started, and those they started, as /proc tells now."""
    parents = _parents()
    found, frontier = [], {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found += frontier
    return found


def alive(pid: int) -> bool:
    """Whether pid runs (a zombie waiting for its parent does not)."""
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return stat.read().rsplit(')', 1)[1].split()[0] != 'Z'
    except FileNotFoundError:
        return False


def _parents() -> dict[int, int]:
    parents = {}
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat') as stat:
                parents[int(entry)] = int(stat.read().rsplit(')', 1)[1].split()[1])
        except OSError:
            continue  # Gone meanwhile.
    return parents


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1) as sock:
            sock.sendall(b'PING\r\n')
            return sock.recv(16).startswith(b'+PONG')
    except OSError:
        return False


def _http_answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _wait_until(ready, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f'{what} exited with {process.returncode} at start')
        if ready():
            return
        time.sleep(0.05)
    stop(process)
    raise RuntimeError(f'{what} did not answer within {STARTUP_SECONDS} s')


def start_launcher(storage, redis_url: str, port: int, *args: str, env=None):
    """Start `python -m asgilook`; return once it answers GET /images."""
    process = subprocess.Popen(
        [
            sys.executable,
            '-m',
            'asgilook',
            '--port',
            str(port),
            '--no-access-log',
            *args,
        ],
        env=dict(
            os.environ,
            ASGI_LOOK_STORAGE_PATH=str(storage),
            ASGI_LOOK_REDIS_HOST=redis_url,
            **(env or {}),
        ),
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=on_every_cpu,
    )
    process.leads_group = True
    _wait_until(
        lambda: _http_answers(f'http://127.0.0.1:{port}/images'),
        process,
        f'python -m asgilook on {port}',
    )
    return process


def run_until_exit(command: list[str], env=None, timeout: float = 15):
    """Run a server command expected to stop by itself; return (status, stderr, s).

    Past timeout it is stopped (with the processes it started) and the
    status is None.
    """
    process = subprocess.Popen(
        command,
        env=dict(os.environ, **(env or {})),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=on_every_cpu,
    )
    process.leads_group = True
    started = time.monotonic()
    try:
        _, stderr = process.communicate(timeout=timeout)
        status = process.returncode
    except subprocess.TimeoutExpired:
        stop(process)
        _, stderr = process.communicate()
        status = None
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # Anything it left behind.
    return status, stderr, time.monotonic() - started


def rss_kib(pid: int, field: str = 'VmRSS') -> int:
    """The resident memory of a process in KiB, as /proc tells now.

    field='VmHWM': the most it has ever held.
    """
    with open(f'/proc/{pid}/status') as status:
        for line in status:
            if line.startswith(f'{field}:'):
                return int(line.split()[1])
    raise AssertionError(f'no {field} for {pid}')


def wait_until_answers(url: str, process: subprocess.Popen, what: str) -> None:
    """Return once url answers 200; raise if process exits or time runs out."""
    _wait_until(lambda: _http_answers(url), process, what)
