"""Timings and limits the tests tune: the cache's, the catalog's, the event feed's.

Plain values, set on a Config (`config.cache_timing`, `catalog_limits`,
`events`); two of them are also settings (see config.py).
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class CacheTiming:
    """How long the cache keeps, waits for and trusts things, in seconds."""

    # How long Redis keeps an entry.
    entry_ttl: int = 3600
    # How long a render may hold the lock of its path; a process waiting for
    # another's render computes the answer itself after this long.
    lock_ttl: float = 5.0
    # How often a waiting process looks for the entry another one renders.
    poll_interval: float = 0.01
    # After a timed-out command, how long before Redis is asked again (a
    # refused connection costs nothing to retry: the next request does).
    retry_interval: float = 1.0
    # An entry kept in a process's memory is served without asking Redis or
    # the catalog while the catalog's token is the one it was kept under,
    # for memory_ttl at most (a change behind asgilook's back shows after
    # that), and while Redis has answered within liveness (an outage shows).
    memory_ttl: float = 1.0
    liveness: float = 0.5
    # How long an entry may take to be written to Redis (several megabytes
    # on a busy machine); the answer waits for it redis_timeout at most.
    store_timeout: float = 2.0
    # A Redis that answers but refuses the cache's commands (its memory
    # full, a read-only replica) is logged at most this often, each kind.
    refusal_log_interval: float = 60.0
    # The bytes a second an entry is counted on to be read back from Redis:
    # larger than redis_timeout x this (8 MiB by default), an answer is not
    # kept. (A GET of 8 MiB took 28 ms, 64 MiB 157 ms, on an idle 2-CPU
    # machine, redis-py with hiredis; a busy worker reads slower.)
    entry_read_rate: int = 32 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class CatalogLimits:
    """How much the catalog keeps and remembers, and how long it waits."""

    # Changes kept in the change log (the source of the service's events).
    retained_changes: int = 100_000
    # How long a change waits for another process's change to commit.
    write_wait: float = 60.0
    # Records remembered between two changes (an image's lookup is free then).
    remembered_records: int = 10_000
    # Files a reindex reads in one batch, and rows it removes or adopts in
    # one transaction.
    reindex_batch: int = 10_000
    # The unpaged list is read and answered in one piece (and cached) up to
    # this many images (about 5 MB of JSON); a longer one is read from a
    # snapshot and sent list_batch images at a time (about 64 KB), in
    # bounded memory, at most long_lists of them at once a worker.
    listed_at_once: int = 10_000
    list_batch: int = 200
    long_lists: int = 4
    # Bytes of disk kept for removals (a DELETE, an image whose file is
    # gone) when the disk is full (0: none): see catalog/reserve.py.
    reserve: int = 256 * 1024


@dataclasses.dataclass(frozen=True)
class EventSettings:
    """How a worker follows the change log and streams it to its subscribers."""

    # Seconds between two heartbeats (an SSE comment) on a quiet stream.
    heartbeat: float = 15.0
    # The reconnection delay an SSE client is told (`retry:`), in milliseconds.
    retry_ms: int = 3000
    # How often a worker with subscribers reads the catalog's change token.
    poll_interval: float = 0.02
    # How far behind the newest event a subscriber may fall before it is
    # closed (to resume from its last id); as many are kept in memory.
    backlog: int = 1000
    # New changes read from the catalog at once by the worker; kept events
    # handed to a subscriber at once.
    batch: int = 500
    # Changes read at once for a subscriber that resumes, held while it
    # sends them (50 image.created events take about 70 KB).
    catch_up_batch: int = 50
    # The batches read for subscribers that resume, kept for others that
    # resume from the same id, take at most this many bytes a worker.
    catch_up_memory: int = 4 * 1024 * 1024
    # Event streams (SSE and WebSocket) a worker holds at once; one more is
    # refused with a 503 (http/admission.py). About 15 KiB and a file descriptor
    # each.
    max_streams: int = 2000
