"""The shared catalog's work bounded in time, even when the database hangs; its faults.

A statement cut short by a timeout makes psycopg ask the server to cancel
it, then wait for its answer: ten seconds more at most, each. Against a
database that hangs (its machine stalled, its connections open and silent)
a request waited 12 s for its 503. Here the work runs in a task of its
own: past its time the request is answered at once, and the task, told to
stop, does its cleaning up on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Concatenate, ParamSpec, TypeVar

import psycopg
import psycopg_pool

from ..errors import CatalogError

P = ParamSpec('P')
T = TypeVar('T')


class Bounded:
    """Await work for `seconds` at most, letting go of what overruns."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        # Work that overran, still cleaning up: kept, so that it is not lost.
        self._overrun: set[asyncio.Task[Any]] = set()

    async def __call__(self, work: Coroutine[Any, Any, T]) -> T:
        task = asyncio.create_task(work)
        try:
            with faults():
                async with asyncio.timeout(self.seconds):
                    return await asyncio.shield(task)
        except BaseException:
            # Timed out, or the request itself was cancelled.
            if not task.done():
                task.cancel()
                self._overrun.add(task)
                task.add_done_callback(self._done)
            raise

    async def close(self) -> None:
        """Stop what overran, and wait until it has (told twice, psycopg quits)."""
        overrun = list(self._overrun)
        for task in overrun:
            task.cancel()
        await asyncio.gather(*overrun, return_exceptions=True)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._overrun.discard(task)
        # Its failure was answered already, as the request's timeout.
        if not task.cancelled():
            task.exception()


def bounded(
    method: Callable[Concatenate[Any, P], Coroutine[Any, Any, T]],
) -> Callable[Concatenate[Any, P], Coroutine[Any, Any, T]]:
    """Run a method of the catalog under its Bounded (`self.bounded`)."""

    @functools.wraps(method)
    async def run(self: Any, /, *args: P.args, **kwargs: P.kwargs) -> T:
        bounds: Bounded = self.bounded
        return await bounds(method(self, *args, **kwargs))

    return run


@contextlib.contextmanager
def faults() -> Iterator[None]:
    """Say a failing or silent database as CatalogError."""
    try:
        yield
    except (psycopg.Error, psycopg_pool.PoolTimeout, TimeoutError) as ex:
        raise CatalogError(f'the catalog database failed: {ex}') from ex
