"""uvicorn --workers 2 serving asgilook: its workers, and connections placed on one."""

import asyncio
import contextlib
import os
import signal
import socket
import time

from . import servers, tcp

# The longest any client waits for what it expects: past it, a test fails.
WAIT = 10


# Each client is placed on the worker a test names: the other worker is
# frozen (SIGSTOP) while the connection is made, so the one left accepts it,
# and /proc tells which worker holds the server's end of it.


class Service:
    """uvicorn --workers 2 serving asgilook on a free loopback port."""

    def __init__(self, storage, redis_url: str, stderr=None) -> None:
        self.port = servers.free_port()
        self.url = f'http://127.0.0.1:{self.port}'
        self.process = servers.start_uvicorn(
            storage, redis_url, self.port, '--workers', '2', stderr=stderr
        )

    def workers(self) -> list[int]:
        """The worker processes: uvicorn's children that listen on its port."""
        listening = _inodes(lambda local, remote: local == self.port and not remote)
        return sorted(
            pid
            for pid in servers.descendants(self.process.pid)
            if _parent(pid) == self.process.pid and _sockets(pid) & listening
        )

    async def two_workers(self) -> list[int]:
        """Both workers, once both are forked (each listens before its start ends)."""
        return await eventually(lambda: (w := self.workers()) and len(w) == 2 and w)

    def holders(self) -> dict[int, int]:
        """For each client port connected to the service: the worker holding it."""
        clients = {}
        for local, remote, inode in tcp.lines():
            if local == self.port and remote:
                clients[inode] = remote
        held = {}
        for pid in self.workers():
            for inode in _sockets(pid) & set(clients):
                held[clients[inode]] = pid
        return held


def _inodes(keep) -> set[str]:
    return {inode for local, remote, inode in tcp.lines() if keep(local, remote)}


def _sockets(pid: int) -> set[str]:
    """The inodes of the sockets pid holds open."""
    found = set()
    with contextlib.suppress(OSError):
        for fd in os.listdir(f'/proc/{pid}/fd'):
            with contextlib.suppress(OSError):
                link = os.readlink(f'/proc/{pid}/fd/{fd}')
                if link.startswith('socket:['):
                    found.add(link[8:-1])
    return found


def _parent(pid: int) -> int:
    try:
        with open(f'/proc/{pid}/stat') as stat:
            return int(stat.read().rsplit(')', 1)[1].split()[1])
    except OSError:
        return 0


async def eventually(probe, wait: float = WAIT):
    """Return probe()'s first true answer, polling; fail past wait seconds."""
    deadline = time.monotonic() + wait
    while not (answer := probe()):
        assert time.monotonic() < deadline, f'not within {wait} s: {probe}'
        await asyncio.sleep(0.01)
    return answer


@contextlib.asynccontextmanager
async def only(service: Service, worker: int | None):
    """Freeze every other worker for the block: connections made go to worker."""
    others = [] if worker is None else [w for w in service.workers() if w != worker]
    for pid in others:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in others:
            os.kill(pid, signal.SIGCONT)


async def placed(service: Service, worker: int | None) -> socket.socket:
    """A connection to the service, accepted by worker (None: either)."""
    async with only(service, worker):
        sock = socket.create_connection(('127.0.0.1', service.port), timeout=WAIT)
        sock.setblocking(False)
        if worker is not None:
            port = sock.getsockname()[1]
            holder = await eventually(lambda: service.holders().get(port))
            assert holder == worker
    return sock
