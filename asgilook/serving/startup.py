"""The app a server runs: built when the server starts; a failed start stops it."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any, cast

import falcon

from .. import logs, workers
from ..errors import ConfigError, ServiceKeyError, StorageUnavailableError
from ..events.exits import ExitSignals
from ..http.gate import send_error
from ..workers import first_to_report, mark_serving, others_serve
from . import lifetimes
from .settings import unknown_settings

logger = logging.getLogger('asgilook.startup')

# Failures a person fixes outside the code (a setting, a directory): their own
# message says it all, a traceback would only hide it.
EXPECTED_FAILURES = (ConfigError, StorageUnavailableError, ServiceKeyError)


class AppAtStartup:
    """An ASGI app that builds the real one, `factory()`, when the server starts.

    Importing it reads no setting: a bad one cannot make a server import,
    fail and restart a worker in a loop. The app is built at the lifespan's
    startup or, under a server that runs no lifespan, at the first request
    (which then runs the app's lifespan startup itself).

    A start that fails (a bad setting, a storage directory that takes no
    files) is logged in one line that names its cause, one line for the
    whole server however many workers fail, and stops the server. In the
    lifespan it is a `lifespan.startup.failed`: the uvicorn worker exits with
    status 3, on which uvicorn's supervisor (0.54 and later) stops every
    worker and itself instead of starting another. At a first request it is
    a 503, and `stop()` (by default, SIGTERM to the worker's supervisor or,
    where there is none, to this process). The worker that reported holds its
    claim to the report (see first_to_report) report_hold seconds before it
    exits, while the others fail too.

    But a worker that starts while others of its server serve (one started
    again in place of one that died) never stops them: should its start fail
    (the storage turned read-only since they started, say, where SQLite
    cannot open the catalog anew), it does not finish its start, so that the
    server takes no connection on it (the others answer every request); it
    tries again every retry_interval seconds, and says so once.

    At its start, the server's first worker warns of each `ASGI_LOOK_*`
    variable of environ (os.environ) that is no setting. Once started, a
    worker of a supervisor watches it: should the supervisor end first
    (killed with `kill -9`), the worker stops as on SIGTERM, gracefully,
    rather than serve on, orphaned, on the supervisor's port.
    """

    def __init__(
        self,
        factory: Callable[[], Any],
        stop: Callable[[], None] | None = None,
        supervisor_pid: Callable[[], int | None] | None = None,
        report_hold: float = 1.0,
        environ: Mapping[str, str] | None = None,
        others_serving: Callable[[int | None], bool] | None = None,
        retry_interval: float = 5.0,
    ) -> None:
        self._factory = factory
        self._report_hold = report_hold
        self._supervisor_pid = supervisor_pid or workers.supervisor_pid
        self._stop = stop or (lambda: stop_server(self._supervisor_pid))
        self._environ = os.environ if environ is None else environ
        self._others_serving = others_serving or others_serve
        self._retry_interval = retry_interval
        self._stopping = asyncio.Event()
        self._app: Any = None
        self._lifespan: _Lifespan | None = None
        self._failure: str | None = None
        self._starting = asyncio.Lock()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope['type'] == 'lifespan':
            await self._serve_lifespan(scope, receive, send)
            return
        if self._app is None and self._failure is None:
            async with self._starting:
                if self._app is None and self._failure is None:
                    failure = await self._start(_lifespan_scope())
                    if failure is not None:
                        await self._fail(failure)
                        self._stop()
        if self._app is None:
            await _unavailable(scope, send)
            return
        await self._app(scope, receive, send)

    async def _serve_lifespan(
        self, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        await receive()  # lifespan.startup
        failure = await self._start(scope)
        if failure is not None:
            if not await asyncio.to_thread(
                self._others_serving, self._supervisor_pid()
            ):
                await self._fail(failure)
                # No message: the line is logged once for all workers, already.
                await send({'type': 'lifespan.startup.failed'})
                return
            await self._retry(scope, failure)
        await send({'type': 'lifespan.startup.complete'})
        await receive()  # lifespan.shutdown
        if self._lifespan is None:
            await send({'type': 'lifespan.shutdown.complete'})
            return
        failure = await self._lifespan.shutdown()
        if failure is not None:
            await send({'type': 'lifespan.shutdown.failed', 'message': failure})
            return
        await send({'type': 'lifespan.shutdown.complete'})

    async def _start(self, scope: dict[str, Any]) -> str | None:
        """Build the app and start it; None, or why it did not start."""
        logs.configure()
        logs.configure_libraries()
        logs.quiet_client_noise()
        supervisor = self._supervisor_pid()
        warn_of_unknown_settings(self._environ, supervisor or os.getpid())
        try:
            app = self._factory()
        except Exception as ex:
            return describe(ex)
        lifespan = _Lifespan(app, scope)
        failure = await lifespan.startup()
        if failure is not None:
            return failure
        self._app, self._lifespan, self._failure = app, lifespan, None
        if supervisor is not None:
            lifetimes.when_ended(supervisor, _stop_this_worker)
            mark_serving(supervisor)
        return None

    async def _retry(self, scope: dict[str, Any], failure: str) -> None:
        """Start again every retry_interval seconds, until started or stopped.

        Unstarted, the server takes no connection on this worker: the others
        answer them all. Stopped (SIGINT, SIGTERM), it returns unstarted,
        and the server goes on to its shutdown.
        """
        logger.warning(
            'cannot start: %s; the other workers of this server serve: this one '
            'takes no request and tries again every %g s',
            failure,
            self._retry_interval,
        )
        # Answered 503, should a request come (a server without a lifespan).
        self._failure = failure
        signals = ExitSignals(self.stop_retrying)
        signals.install()
        try:
            while not await self._stopped_within(self._retry_interval):
                if await self._start(scope) is None:
                    logger.warning('started at last: this worker serves too')
                    return
        finally:
            signals.uninstall()

    def stop_retrying(self) -> None:
        """Give up starting (the server is stopping)."""
        self._stopping.set()

    async def _stopped_within(self, seconds: float) -> bool:
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait([stopping], timeout=seconds)
        stopping.cancel()
        return self._stopping.is_set()

    async def _fail(self, failure: str) -> None:
        self._failure = failure
        supervisor = self._supervisor_pid()
        if first_to_report(supervisor):
            logger.error('cannot start: %s', failure)
            if supervisor is not None:
                # The other workers fail at about the same time: hold the
                # claim while they do, rather than exit and free it.
                await asyncio.sleep(self._report_hold)


class _Lifespan:
    """Run an ASGI app's lifespan from here: its startup now, its shutdown later."""

    def __init__(self, app: Any, scope: dict[str, Any]) -> None:
        self._events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._answers: asyncio.Queue[str | None] = asyncio.Queue()
        self._task = asyncio.create_task(self._run(app, scope))

    async def startup(self) -> str | None:
        """Return None once the app has started, or why it did not."""
        return await self._ask('lifespan.startup')

    async def shutdown(self) -> str | None:
        """Return None once the app has shut down, or why it did not."""
        failure = await self._ask('lifespan.shutdown')
        await self._task
        return failure

    async def _ask(self, event_type: str) -> str | None:
        await self._events.put({'type': event_type})
        return await self._answers.get()

    async def _run(self, app: Any, scope: dict[str, Any]) -> None:
        try:
            await app(scope, self._events.get, self._answer)
            failure = 'the application ended its lifespan without an answer'
        except Exception as ex:
            failure = describe(ex)
        # For whoever still waits for an answer; nobody reads it otherwise.
        await self._answers.put(failure)

    async def _answer(self, event: dict[str, Any]) -> None:
        if not event['type'].endswith('.failed'):
            await self._answers.put(None)
            return
        # Falcon sends a middleware's failure from within its `except`, with
        # the traceback as the message; the exception is still at hand here.
        ex = sys.exc_info()[1]
        if isinstance(ex, EXPECTED_FAILURES):
            await self._answers.put(str(ex))
        else:
            await self._answers.put(event.get('message') or 'no reason given')


def describe(ex: BaseException) -> str:
    """Say why a start failed: the message of an expected failure, else all of it."""
    if isinstance(ex, EXPECTED_FAILURES):
        return str(ex)
    return ''.join(traceback.format_exception(ex)).rstrip()


def warn_of_unknown_settings(environ: Mapping[str, str], server_pid: int) -> None:
    """Log a warning for each ASGI_LOOK_* variable of environ that is no setting.

    Once for the server server_pid (the supervisor of the workers, else the
    one process that serves): the launcher says it before its workers start,
    and they, finding it said, do not.
    """
    if first_to_report(server_pid, 'unknown-settings'):
        for warning in unknown_settings(environ):
            logger.warning('%s', warning)


def stop_server(
    supervisor_pid: Callable[[], int | None],
    kill: Callable[[int, int], None] = os.kill,
) -> None:
    """Ask the server to stop: the supervisor of this worker, else this process."""
    pid = supervisor_pid()
    kill(os.getpid() if pid is None else pid, signal.SIGTERM)


def _stop_this_worker() -> None:
    logger.warning('the supervisor of this worker has gone: stopping as on SIGTERM')
    # To the main thread, where the server handles signals: one that waits
    # is woken at once.
    main = cast(int, threading.main_thread().ident)
    signal.pthread_kill(main, signal.SIGTERM)


def _lifespan_scope() -> dict[str, Any]:
    return {
        'type': 'lifespan',
        'asgi': {'version': '3.0', 'spec_version': '2.0'},
        'state': {},
    }


async def _unavailable(scope: dict[str, Any], send: Any) -> None:
    if scope['type'] != 'http':
        await send({'type': 'websocket.close', 'code': 1011})
        return
    await send_error(send, _NOT_STARTED)


_NOT_STARTED = falcon.HTTPServiceUnavailable(
    title='Service unavailable',
    description='The server could not start; its log says why.',
)
