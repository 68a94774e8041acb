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
import time
from pathlib import Path

import httpx

STARTUP_SECONDS = 600
_POLL_SECONDS = 0.005


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def redis_server(workdir: Path):
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


class Uvicorn:
    """`uvicorn asgilook.asgi:app` on a free port, and when it first answered."""

    def __init__(
        self, storage: Path, redis_url: str, workers: int, log: Path, ready_path: str
    ) -> None:
        self.port = free_port()
        self.base_url = f'http://127.0.0.1:{self.port}'
        self.log = log
        env = dict(
            os.environ,
            ASGI_LOOK_STORAGE_PATH=str(storage),
            ASGI_LOOK_REDIS_HOST=redis_url,
        )
        command = [sys.executable, '-m', 'uvicorn', 'asgilook.asgi:app']
        command += ['--host', '127.0.0.1', '--port', str(self.port)]
        command += ['--no-access-log', '--loop', 'uvloop', '--http', 'httptools']
        command += ['--workers', str(workers)]
        with open(log, 'wb') as output:
            started = time.perf_counter()
            self.process = subprocess.Popen(
                command,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_until(
                lambda: _answers(self.base_url + ready_path),
                self.process,
                f'uvicorn on {self.port} (log: {log})',
                STARTUP_SECONDS,
            )
        except BaseException:
            stop(self.process)
            raise
        self.startup_seconds = time.perf_counter() - started

    def workers(self, count: int) -> list[int]:
        """The pids of the worker processes: the process itself, or its children."""
        if count == 1:
            return [self.process.pid]
        deadline = time.monotonic() + 60
        while True:
            pids = [
                pid
                for pid in children(self.process.pid)
                if 'spawn_main' in _command_line(pid)
            ]
            if len(pids) >= count or time.monotonic() > deadline:
                return pids
            time.sleep(0.1)

    def stop(self) -> None:
        stop(self.process)


def stop(process: subprocess.Popen) -> None:
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


def children(pid: int) -> list[int]:
    """The processes pid started, as /proc tells now."""
    found = []
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f'/proc/{entry}/stat').read_text()
        except OSError:
            continue  # Gone meanwhile.
        if int(stat.rsplit(')', 1)[1].split()[1]) == pid:
            found.append(int(entry))
    return found


def peak_rss_mib(pid: int) -> float:
    """The most resident memory a process has held (VmHWM), in MiB."""
    status = Path(f'/proc/{pid}/status').read_text()
    return int(re.search(r'VmHWM:\s+(\d+) kB', status)[1]) / 1024


def log_mentions(log: Path, text: str) -> bool:
    return text in log.read_text(errors='replace')


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


def _wait_until(ready, process: subprocess.Popen, what: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f'{what} exited with {process.returncode} at start')
        if ready():
            return
        time.sleep(_POLL_SECONDS)
    raise RuntimeError(f'{what} did not answer within {seconds} s')
