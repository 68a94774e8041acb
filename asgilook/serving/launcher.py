"""`python -m asgilook`: run the service under uvicorn, with safe limits by default."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import pathlib
import resource
import signal
from collections.abc import Callable, Iterator, Sequence

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from .. import logs, store
from ..config import Config
from ..errors import ConfigError
from ..metrics.directory import shared_by_workers
from . import startup
from .protocol import (
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_HEADER_SIZE,
    LimitedHttpToolsProtocol,
    ServerConfig,
)

logger = logging.getLogger('asgilook.launcher')

APP = 'asgilook.asgi:app'

DESCRIPTION = """\
Serve asgilook (an image-sharing HTTP API) under uvicorn, with bounded
request heads, timeouts and concurrency. Settings of the service itself
(storage, Redis, limits of uploads) come from ASGI_LOOK_* environment
variables; see docs/configuration.md. Put a reverse proxy (TLS, body limits)
in front of it on a public network (docs/reverse-proxy.md).
"""


def main(
    argv: Sequence[str] | None = None,
    run: Callable[[ServerConfig], int] | None = None,
) -> int:
    """Run the server (`run`, by default `serve`) until it stops; its exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        config = Config()
    except ConfigError as ex:
        parser.exit(2, f'{parser.prog}: error: {ex}\n')
    logs.configure()
    logs.configure_libraries()
    # Said here for the whole server: its workers find it said.
    startup.warn_of_unknown_settings(os.environ, os.getpid())
    if args.command == 'reindex':
        return store.reindex_command(config)
    if args.command == 'migrate':
        return store.migrate_command(config)
    _say_where(config, args)
    _open_files()
    # Several workers' metrics, added up by whichever answers GET /metrics.
    with shared_by_workers(args.workers, config):
        return (run or serve)(_server_config(args))


def _server_config(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        APP,
        host=args.host,
        port=args.port,
        workers=args.workers,
        http=LimitedHttpToolsProtocol,
        lifespan='on',
        max_header_size=args.max_header_size,
        header_timeout=args.header_timeout,
        timeout_keep_alive=args.keep_alive_timeout,
        limit_concurrency=args.limit_concurrency,
        ws_max_size=args.ws_max_size,
        backlog=args.backlog,
        timeout_graceful_shutdown=args.shutdown_timeout,
        access_log=args.access_log,
        log_config=logs.uvicorn_config(),
        log_level=args.log_level,
    )


def serve(config: ServerConfig) -> int:
    """Run uvicorn as its command does; 3 if the service did not start."""
    if config.workers > 1:
        with config.bind_socket() as sock:
            supervisor = Multiprocess(config, sockets=[sock])
            supervisor.run()
        # uvicorn's supervisor stops when a worker fails its start, and exits 0.
        failed = any(
            process.exitcode == STARTUP_FAILURE for process in supervisor.processes
        )
        return STARTUP_FAILURE if failed else 0
    server = uvicorn.Server(config)
    with _stopped_by(server):
        # A failed start exits (status 3) from within; Ctrl-C during one returns.
        server.run()
    return 0 if server.started else STARTUP_FAILURE


@contextlib.contextmanager
def _stopped_by(server: uvicorn.Server) -> Iterator[None]:
    """Stop the server on SIGINT or SIGTERM, then return, not end by the signal.

    uvicorn stops gracefully on either (at once on a second SIGINT), then
    raises the signal again for the handler it found at its start: Python's
    would end the process with a traceback and status 130 (SIGINT) or by
    the signal, 143 (SIGTERM), neither a clean stop to systemd. The handler
    it finds is its own: it notes again a stop already made (and stops the
    server once started, should the signal come before uvicorn takes it).
    """
    stoppers = (signal.SIGINT, signal.SIGTERM)
    found = {sig: signal.signal(sig, server.handle_exit) for sig in stoppers}
    try:
        yield
    finally:
        for sig, handler in found.items():
            signal.signal(sig, handler)


def _say_where(config: Config, args: argparse.Namespace) -> None:
    storage = pathlib.Path(os.path.abspath(os.fspath(config.storage_path)))
    host = f'[{args.host}]' if ':' in args.host else args.host
    logger.info('serving http://%s:%d with %d worker(s)', host, args.port, args.workers)
    if config.storage_url is not None:
        # Shared by several hosts: the directory holds only files on their way in.
        logger.info(
            'images are kept in %s, listed in the database of ASGI_LOOK_DATABASE_URL',
            config.storage_url,
        )
    elif storage.is_relative_to('/tmp'):
        logger.warning(
            'images are kept in %s, under /tmp, which many systems empty at '
            'boot: set ASGI_LOOK_STORAGE_PATH to a lasting directory',
            storage,
        )
    else:
        logger.info('images are kept in %s', storage)


def _open_files() -> None:
    """Let the server open as many files as the system allows its user.

    Each connection is a file descriptor: a soft limit of 1024, the default
    of many systems, would refuse connections long before the event streams'
    budget is reached. The workers inherit it.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    # (An unlimited hard limit, RLIM_INFINITY, is -1: Linux takes no such soft
    # one for open files, and is left alone.)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog='python -m asgilook', description=DESCRIPTION)
    parser.add_argument(
        'command',
        nargs='?',
        default='serve',
        choices=['serve', 'reindex', 'migrate'],
        help='serve (the default); reindex: reconcile the catalog with the '
        'files of the storage directory (files copied in or removed by hand), '
        'or with the bucket of several hosts, then exit; safe while the service '
        'runs; migrate: copy the images of ASGI_LOOK_STORAGE_PATH into '
        'ASGI_LOOK_DATABASE_URL and ASGI_LOOK_STORAGE_URL, then exit',
    )
    for flag, kind, default, metavar, text in _OPTIONS:
        parser.add_argument(
            flag,
            type=kind,
            default=default,
            metavar=metavar,
            help=f'{text} (default: %(default)s)',
        )
    parser.add_argument(
        '--log-level',
        default='info',
        choices=['critical', 'error', 'warning', 'info', 'debug'],
        help="uvicorn's log level (default: %(default)s)",
    )
    parser.add_argument(
        '--no-access-log',
        dest='access_log',
        action='store_false',
        help='do not log each request',
    )
    return parser


def _whole(minimum: int) -> Callable[[str], int]:
    def whole(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f'must be a whole number from {minimum}, not {text!r}'
            )
        return value

    return whole


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float('inf'):
        raise argparse.ArgumentTypeError(
            f'must be a number of seconds above 0, not {text!r}'
        )
    return value


# Each option's flag, type, default, metavar and help.
_OPTIONS: list[tuple[str, Callable[[str], object], object, str, str]] = [
    ('--host', str, '127.0.0.1', 'ADDRESS', 'address to listen on'),
    ('--port', _whole(0), 8000, 'PORT', 'TCP port to listen on'),
    ('--workers', _whole(1), 1, 'N', 'worker processes'),
    (
        '--max-header-size',
        _whole(1024),
        DEFAULT_MAX_HEADER_SIZE,
        'BYTES',
        'largest request line and headers; larger ones get 431',
    ),
    (
        '--header-timeout',
        _seconds,
        DEFAULT_HEADER_TIMEOUT,
        'SECONDS',
        'time a request line and headers have to arrive; then 408',
    ),
    (
        '--keep-alive-timeout',
        _seconds,
        5.0,
        'SECONDS',
        'time an idle kept-alive connection stays open',
    ),
    (
        '--limit-concurrency',
        _whole(1),
        512,
        'N',
        'requests a worker answers at once, event streams apart (see '
        'ASGI_LOOK_EVENTS_MAX_STREAMS); beyond, 503',
    ),
    (
        '--ws-max-size',
        _whole(125),
        4096,
        'BYTES',
        'largest WebSocket message a client may send (the event stream reads '
        'one of at most 100 characters); larger ones close the socket with 1009',
    ),
    ('--backlog', _whole(1), 1024, 'N', 'connections waiting to be accepted'),
    (
        '--shutdown-timeout',
        _seconds,
        30.0,
        'SECONDS',
        'time requests in flight have to finish at shutdown',
    ),
]
