"""Where a run's CPU goes: the seconds each part of the machine spent, from /proc.

The parts are asgilook (the process groups of its servers: workers and
render processes), each engine by its program's name (PostgreSQL,
SeaweedFS, Redis), the kernel's own threads, and the load (the benchmark's
process, with the wrk runs it waited for). Another process that ends
between two readings takes its time with it: servers and engines live
through a run.
"""

from __future__ import annotations

import collections
import os

from . import processes

# Engines, by the name the kernel gives their processes.
ENGINES = {'postgres': 'PostgreSQL', 'weed': 'SeaweedFS', 'redis-server': 'Redis'}
PARTS = ('asgilook', *ENGINES.values(), 'kernel', 'load')
# The kernel's threads are the children of kthreadd.
_KTHREADD = 2

Spent = dict[str, float]


def spent(servers: list[int]) -> Spent:
    """The CPU seconds each part has used so far; servers: asgilook's group leaders."""
    parts: Spent = collections.defaultdict(float)
    ticks = os.sysconf('SC_CLK_TCK')
    me = os.getpid()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        fields = processes.stat(entry)
        name = _name(entry)
        if fields is None or name is None:
            continue
        pid = int(entry)
        part = _part(pid, name, int(fields[1]), int(fields[2]), servers, me)
        if part is not None:
            # Its own time; and, for the benchmark, its children's that ended.
            times = fields[11:15] if pid == me else fields[11:13]
            parts[part] += sum(map(int, times)) / ticks
    return parts


def per_operation(before: Spent, after: Spent, operations: int) -> dict[str, float]:
    """Milliseconds of CPU each part spent an operation between two readings."""
    return {
        part: 1000 * (after.get(part, 0) - before.get(part, 0)) / operations
        for part in PARTS
    }


def _part(
    pid: int, name: str, parent: int, group: int, servers: list[int], me: int
) -> str | None:
    """The part a process is of; None: none of the run's.

    The load's wrk runs are counted in the benchmark's own process once they
    have ended (as children it waited for), so readings go between runs.
    """
    if group in servers:
        return 'asgilook'
    if name in ENGINES:
        return ENGINES[name]
    if parent == _KTHREADD:
        return 'kernel'
    if pid == me:
        return 'load'
    return None


def _name(pid: str) -> str | None:
    try:
        with open(f'/proc/{pid}/comm') as comm:
            return comm.read().strip()
    except OSError:
        return None
