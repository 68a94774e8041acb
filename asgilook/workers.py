"""What the workers of one server tell one another: who reports for all, who serves.

Through names in Linux's abstract socket namespace, tied to the pid of
their supervisor (uvicorn's, or the launcher's): a name is held by the
process that bound it until it ends, and seen by every process of the host.
Where there is no such namespace, each worker reports, and none is seen.
"""

from __future__ import annotations

import atexit
import errno
import logging
import multiprocessing
import os
import socket


def supervisor_pid() -> int | None:
    """The process that started this one through multiprocessing, if any.

    uvicorn's supervisor and its reloader, the launcher's: a server's workers.
    """
    return getattr(multiprocessing.parent_process(), 'pid', None)


def warn_once(
    logger: logging.Logger,
    what: str,
    message: str,
    *args: object,
    supervisor: int | None = None,
) -> None:
    """Log a warning once for the workers of a server that all find it so.

    The server: the workers of supervisor (by default this one's); a process
    of none says it itself.
    """
    if first_to_report(supervisor or supervisor_pid(), what):
        logger.warning(message, *args)


# The names this process holds (its claims and its mark), until it ends.
_CLAIMS: list[socket.socket] = []


@atexit.register
def let_go() -> None:
    """Give up this process's claims and marks, as its exit does.

    Closed at the exit rather than found unclosed by the collector.
    """
    while _CLAIMS:
        _CLAIMS.pop().close()


def first_to_report(supervisor_pid: int | None, what: str = 'failed-start') -> bool:
    """Whether this process is the first of its supervisor's workers to report.

    Every worker of a server fails its start the same way (or finds the same
    settings: what is reported); one line says it. The first claims a name
    in Linux's abstract socket namespace, tied to the supervisor's pid and
    to what, and holds it until it exits. Where there is no such namespace,
    each worker reports.
    """
    if supervisor_pid is None:
        return True
    claim = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        claim.bind(f'\0asgilook-{what}-{supervisor_pid}')
    except (OSError, ValueError) as ex:
        claim.close()
        return getattr(ex, 'errno', None) != errno.EADDRINUSE
    _CLAIMS.append(claim)
    return True


def mark_serving(supervisor_pid: int) -> None:
    """Say to the other workers of a supervisor that this one serves (others_serve).

    A name in Linux's abstract socket namespace, held until the process ends.
    """
    mark = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        mark.bind(f'{_SERVING}{supervisor_pid}-{os.getpid()}')
    except OSError:
        mark.close()
        return
    _CLAIMS.append(mark)


def others_serve(supervisor_pid: int | None, unix: str = '/proc/net/unix') -> bool:
    """Whether another worker of a supervisor serves now (see mark_serving).

    Read from the system's table of Unix sockets (blocking); False where
    there is none, or no supervisor.
    """
    if supervisor_pid is None:
        return False
    # Shown with '@' for the NUL of the abstract namespace, last on its line.
    prefix = '@' + f'{_SERVING}{supervisor_pid}-'.removeprefix('\0')
    try:
        with open(unix) as table:
            return any(prefix in line for line in table)
    except OSError:
        return False


# The names of the marks of the workers that serve: this, the supervisor's
# pid, a dash and the worker's.
_SERVING = '\0asgilook-serving-'
