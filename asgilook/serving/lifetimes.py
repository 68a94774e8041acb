"""Watch for another process's end: a render's worker, a worker's supervisor."""

from __future__ import annotations

import os
import select
import threading
import time
from collections.abc import Callable

# Linux 5.3 and later, Python 3.9 and later; elsewhere the watch polls.
_PIDFD_OPEN: Callable[[int], int] | None = getattr(os, 'pidfd_open', None)


def when_ended(
    pid: int,
    then: Callable[[], object],
    pidfd_open: Callable[[int], int] | None = _PIDFD_OPEN,
    poll_interval: float = 1.0,
) -> None:
    """Call then() in a thread of its own once the process pid has ended.

    A daemon thread waits for pid on a pidfd where the system has them (no
    polling, no pid taken for another's), else by asking every
    poll_interval seconds whether pid still exists. A pid already gone
    calls then() at once.
    """
    threading.Thread(
        target=_wait_for_end,
        args=(pid, then, pidfd_open, poll_interval),
        name=f'asgilook-when-ended-{pid}',
        daemon=True,
    ).start()


def _wait_for_end(
    pid: int,
    then: Callable[[], object],
    pidfd_open: Callable[[int], int] | None,
    poll_interval: float,
) -> None:
    try:
        pidfd = _open_pidfd(pid, pidfd_open)
        if pidfd is None:
            while True:
                os.kill(pid, 0)
                time.sleep(poll_interval)
        try:
            select.select([pidfd], [], [])
        finally:
            os.close(pidfd)
    except ProcessLookupError:
        pass  # Gone: now, or before we looked.
    then()


def _open_pidfd(pid: int, pidfd_open: Callable[[int], int] | None) -> int | None:
    if pidfd_open is None:
        return None
    try:
        return pidfd_open(pid)
    except ProcessLookupError:
        raise
    except OSError:
        return None  # A kernel without pidfds (ENOSYS), or one that refuses.
