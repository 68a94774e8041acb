"""A real PostgreSQL on free loopback ports; what starting any engine takes."""

import contextlib
import glob
import itertools
import os
import pathlib
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import psycopg
from psycopg import sql

from . import servers

POSTGRES_HELP = (
    "The PostgreSQL tests need PostgreSQL's server programs (initdb and "
    'postgres) on PATH, in /usr/lib/postgresql/<version>/bin (where Debian '
    'puts them), or in the directory ASGI_LOOK_TEST_POSTGRES_BIN names. '
    'On Debian or Ubuntu: sudo apt-get install postgresql; '
    'on macOS: brew install postgresql.'
)

STARTUP_SECONDS = 30
# What a stop waits for before it forces one: weed's graceful stop takes
# 25 s (its filer waits 15 s for streams, its volume server 10 s more).
POSTGRES_STOP_SECONDS = 10
LOG_TAIL_LINES = 20


class Postgres:
    """A PostgreSQL server of its own: a data directory, a loopback port, a pid."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or servers.free_port()
        self._initdb, self._postgres = postgres_binaries()
        self._home = pathlib.Path(tempfile.mkdtemp(prefix='asgilook-postgres-'))
        self._data = self._home / 'data'
        self._log = self._home / 'postgres.log'
        self._process: subprocess.Popen | None = None
        self._names = itertools.count(1)
        # PostgreSQL refuses to run as root: root runs it as the postgres user.
        self._user = _postgres_user() if os.geteuid() == 0 else None
        (self._home / 'sockets').mkdir()
        if self._user:
            for path in (self._home, self._home / 'sockets'):
                os.chown(path, self._user.pw_uid, self._user.pw_gid)

    def url(self, database: str = 'postgres') -> str:
        return f'postgresql://postgres@127.0.0.1:{self.port}/{database}'

    def start(self) -> None:
        """Start the server on its port; return once it takes connections."""
        if not self._data.exists():
            self._run_initdb()
        with open(self._log, 'ab') as log:
            self._process = subprocess.Popen(
                [
                    self._postgres,
                    '-D',
                    self._data,
                    '-p',
                    str(self.port),
                    '-k',
                    self._home / 'sockets',
                    '-c',
                    'listen_addresses=127.0.0.1',
                    '-c',
                    'fsync=off',
                    '-c',
                    'max_connections=200',
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._as_user(),
            )
        wait_until(self._accepts, self._process, self._log, f'postgres on {self.port}')

    def stop(self) -> None:
        """Stop the server this object started, by its pid."""
        if self._process:
            # SIGINT is the fast shutdown: SIGTERM's smart one waits for every
            # client to leave, which a pool's idle connections never do.
            # SIGQUIT, the immediate one, stops its children too.
            end(
                self._process,
                (signal.SIGINT, POSTGRES_STOP_SECONDS),
                (signal.SIGQUIT, POSTGRES_STOP_SECONDS),
                (signal.SIGKILL, None),
            )
            self._process = None

    @contextlib.contextmanager
    def stopped(self):
        """Stop the server for the duration of the block; start it again after."""
        self.stop()
        try:
            yield
        finally:
            self.start()

    @contextlib.contextmanager
    def hung(self):
        """Freeze the server and its backends (SIGSTOP) for the block: a hang.

        Its connections stay open and its port takes connections, but
        nothing is answered, as of a machine that stalls.
        """
        assert self._process is not None
        frozen = [self._process.pid, *servers.descendants(self._process.pid)]
        with frozen_processes(frozen):
            yield

    def create_database(self) -> str:
        """Create a database no test has used; return its URL."""
        name = f'test_{next(self._names)}'
        self._execute(sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name)))
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database create_database made, with any connection left to it."""
        name = url.rsplit('/', 1)[1]
        self._execute(
            sql.SQL('DROP DATABASE {} WITH (FORCE)').format(sql.Identifier(name))
        )

    @contextlib.contextmanager
    def database(self):
        """A fresh database for the duration of the block; yield its URL."""
        url = self.create_database()
        try:
            yield url
        finally:
            self.drop_database(url)

    def close(self) -> None:
        """Stop the server and remove its data."""
        self.stop()
        shutil.rmtree(self._home)

    def _run_initdb(self) -> None:
        done = subprocess.run(
            [
                self._initdb,
                '-D',
                self._data,
                '--auth=trust',
                '-U',
                'postgres',
                '-E',
                'UTF8',
                '--no-locale',
                '--no-sync',
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            **self._as_user(),
        )
        if done.returncode:
            raise RuntimeError(f'initdb exited with {done.returncode}:\n{done.stdout}')

    def _as_user(self) -> dict:
        options = {'preexec_fn': servers.on_every_cpu}
        if self._user:
            options.update(
                user=self._user.pw_uid, group=self._user.pw_gid, extra_groups=[]
            )
        return options

    def _accepts(self) -> bool:
        # Through its socket file, which only this server has: another server
        # already on the port would answer on 127.0.0.1 too.
        try:
            psycopg.connect(
                host=str(self._home / 'sockets'),
                port=self.port,
                user='postgres',
                dbname='postgres',
                connect_timeout=1,
            ).close()
        except psycopg.OperationalError:
            return False
        return True

    def _execute(self, statement: sql.Composable) -> None:
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(statement)


@contextlib.contextmanager
def postgres_server():
    """Run a PostgreSQL server for the duration of the block; yield it."""
    server = Postgres()
    try:
        server.start()
        yield server
    finally:
        server.close()


def postgres_binaries() -> tuple[str, str]:
    """initdb and postgres: from ASGI_LOOK_TEST_POSTGRES_BIN, PATH or Debian's."""
    named = os.environ.get('ASGI_LOOK_TEST_POSTGRES_BIN')
    if named:
        places = [named]
    elif shutil.which('initdb') and shutil.which('postgres'):
        places = [os.path.dirname(shutil.which('postgres'))]
    else:
        places = sorted(
            glob.glob('/usr/lib/postgresql/*/bin'),
            key=lambda path: int(path.split('/')[-2]),
            reverse=True,  # The newest first.
        )
    for place in places:
        initdb = os.path.join(place, 'initdb')
        postgres = os.path.join(place, 'postgres')
        if os.access(initdb, os.X_OK) and os.access(postgres, os.X_OK):
            return initdb, postgres
    raise RuntimeError(POSTGRES_HELP)


def _postgres_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam('postgres')
    except KeyError:
        raise RuntimeError(
            'Run as root, the PostgreSQL tests run the server as the postgres '
            "user, which this machine lacks (Debian's postgresql package "
            'makes it).'
        ) from None


@contextlib.contextmanager
def frozen_processes(pids: list[int]):
    """SIGSTOP the processes (started by the tests) for the block, then SIGCONT."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


def wait_until(ready, process: subprocess.Popen, log: pathlib.Path, what: str):
    """Return once ready() holds; else stop process and fail with its log's tail."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not ready():
        if process.poll() is not None:
            _fail(f'{what} exited with {process.returncode} at start', log)
        if time.monotonic() > deadline:
            end(process, (signal.SIGKILL, None))
            _fail(f'{what} did not answer within {STARTUP_SECONDS} s', log)
        time.sleep(0.05)


def _fail(problem: str, log: pathlib.Path):
    tail = log.read_text(errors='replace').splitlines()[-LOG_TAIL_LINES:]
    raise RuntimeError('\n'.join([f'{problem}; its log ends:', *tail]))


def end(process: subprocess.Popen, *steps: tuple[int, float | None]) -> None:
    """Send each (signal, seconds to wait for the exit) in turn, till it exits."""
    for signum, seconds in steps:
        if process.poll() is not None:
            return
        process.send_signal(signum)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=seconds)
