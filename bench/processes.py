"""A benchmark's own redis-server and uvicorn processes, and what they use.

Every process is started here in a session of its own and stopped by its
pid (its process group: uvicorn's workers and their render processes).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import httpx

ASGILOOK = 'asgilook.asgi:app'
# No access log: the benchmarks measure asgilook, not its log lines.
_UVICORN_FLAGS = '--host 127.0.0.1 --no-access-log --loop uvloop --http httptools'
_POLL_SECONDS = 0.005


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port: int = sock.getsockname()[1]
        return port


def redis_url(port: int, database: int = 0) -> str:
    """Return the URL of a database of the redis-server on port of 127.0.0.1."""
    return f'redis://127.0.0.1:{port}/{database}'


@contextlib.contextmanager
def redis_server(workdir: Path) -> Iterator[int]:
    """Run a redis-server of its own for the block; yield its port."""
    binary = shutil.which('redis-server')
    if binary is None:
        sys.exit('this benchmark needs redis-server: sudo apt-get install redis-server')
    port = free_port()
    command = [binary, '--bind', '127.0.0.1', '--port', str(port), '--save', '']
    command += ['--appendonly', 'no', '--dir', str(workdir)]
    process = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_until(lambda: _redis_answers(port), process, 'redis-server', 20)
        yield port
    finally:
        stop(process)


@contextlib.contextmanager
def temporary_redis() -> Iterator[tuple[Path, str]]:
    """Run a redis-server in a new temporary directory for the block.

    Yield the directory (for the benchmark's files too) and the server's URL.
    """
    with tempfile.TemporaryDirectory() as tmp, redis_server(Path(tmp)) as port:
        yield Path(tmp), redis_url(port)


class Uvicorn:
    """uvicorn serving an app (asgilook) on a free port, and when it first answered.

    Its workers run uvloop and httptools and log no access; the server's
    output goes to log, or to this process's own without one.
    """

    def __init__(
        self,
        storage: Path,
        redis_url: str,
        *,
        workers: int = 1,
        log: Path | None = None,
        ready_path: str = '/images',
        app: str = ASGILOOK,
        env: dict[str, str] | None = None,
        startup_seconds: float = 60,
        launcher: bool = False,
    ) -> None:
        self.port = free_port()
        self.base_url = f'http://127.0.0.1:{self.port}'
        env = dict(
            os.environ,
            ASGI_LOOK_STORAGE_PATH=str(storage),
            ASGI_LOOK_REDIS_HOST=redis_url,
            **(env or {}),
        )
        if launcher:
            # `python -m asgilook`, as the README says to run it.
            command = [sys.executable, '-m', 'asgilook', '--no-access-log']
        else:
            command = [sys.executable, '-m', 'uvicorn', app, *_UVICORN_FLAGS.split()]
        command += ['--port', str(self.port), '--workers', str(workers)]
        with contextlib.ExitStack() as stack:
            output = None if log is None else stack.enter_context(open(log, 'wb'))
            started = time.perf_counter()
            self.process = _start(command, env, output)
        try:
            _wait_until(
                lambda: _answers(self.base_url + ready_path),
                self.process,
                f'uvicorn serving {app} on {self.port}'
                + ('' if log is None else f' (log: {log})'),
                startup_seconds,
            )
        except BaseException:
            stop(self.process)
            raise
        self.startup_seconds = time.perf_counter() - started

    @property
    def pid(self) -> int:
        return self.process.pid

    def workers(self, count: int) -> list[int]:
        """The pids of the worker processes: the process itself, or its children."""
        if count == 1:
            return [self.pid]
        deadline = time.monotonic() + 60
        while True:
            pids = [
                pid for pid in children(self.pid) if 'spawn_main' in _command_line(pid)
            ]
            if len(pids) >= count or time.monotonic() > deadline:
                return pids
            time.sleep(0.1)

    def stop(self) -> None:
        stop(self.process)

    def __enter__(self) -> Uvicorn:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def stop(process: subprocess.Popen[bytes]) -> None:
    """Stop a process started here, and its process group, by its pid."""
    with contextlib.suppress(ProcessLookupError):
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)
        # Workers or render processes its leader left behind.
        os.killpg(process.pid, signal.SIGKILL)


def stat(pid: int | str) -> list[str] | None:
    """The fields of /proc/pid/stat after the name, from the state on; None if gone."""
    try:
        text = Path(f'/proc/{pid}/stat').read_text()
    except OSError:
        return None
    # The name, in parentheses, may hold spaces and parentheses itself.
    return text.rsplit(')', 1)[1].split()


def children(pid: int) -> list[int]:
    """The processes pid started, as /proc tells now."""
    found = []
    for entry in os.listdir('/proc'):
        if entry.isdigit() and (fields := stat(entry)) and int(fields[1]) == pid:
            found.append(int(entry))
    return found


def running(pid: int) -> bool:
    """Whether pid runs (is neither gone nor a zombie)."""
    fields = stat(pid)
    return fields is not None and fields[0] != 'Z'


def cpu_seconds(pid: int) -> float:
    """The CPU time (user and system) a process has used, from /proc."""
    fields = stat(pid)
    if fields is None:
        raise ProcessLookupError(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def descendants(pid: int) -> list[int]:
    """The processes pid started, and those they started, as /proc tells now."""
    found: list[int] = []
    frontier = [pid]
    while frontier:
        frontier = [child for parent in frontier for child in children(parent)]
        found += frontier
    return found


def memory_mib(pid: int, field: str = 'VmHWM') -> float:
    """A process's resident memory in MiB: the most it has held (VmHWM), or VmRSS."""
    status = Path(f'/proc/{pid}/status').read_text()
    found = re.search(rf'^{field}:\s+(\d+) kB', status, re.MULTILINE)
    if found is None:
        raise LookupError(f'no {field} in /proc/{pid}/status')
    return int(found[1]) / 1024


def log_mentions(log: Path, text: str) -> bool:
    return text in log.read_text(errors='replace')


def _start(
    command: list[str], env: dict[str, str], output: IO[bytes] | None
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        env=env,
        stdout=output,
        stderr=None if output is None else subprocess.STDOUT,
        start_new_session=True,
    )


def _command_line(pid: int) -> str:
    try:
        return Path(f'/proc/{pid}/cmdline').read_bytes().decode(errors='replace')
    except OSError:
        return ''


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1) as sock:
            sock.sendall(b'PING\r\n')
            return sock.recv(16).startswith(b'+PONG')
    except OSError:
        return False


def _wait_until(
    ready: Callable[[], bool],
    process: subprocess.Popen[bytes],
    what: str,
    seconds: float,
) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f'{what} exited with {process.returncode} at start')
        if ready():
            return
        time.sleep(_POLL_SECONDS)
    raise RuntimeError(f'{what} did not answer within {seconds} s')
