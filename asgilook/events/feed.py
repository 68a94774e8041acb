"""The feed: one worker's view of the change log, for all its subscribers.

Every worker follows the catalog's change log on its own: the log is the
one place every process writes its changes to, in one order, so the
events and their ids are the same in every worker, with or without Redis.
From its first subscriber on, the worker reads the catalog's change token
every `poll_interval` (a read of shared memory: see catalog/watch.py) and,
when it moved, the new changes, in one query off the event loop. Their
events are encoded once and kept (the last `backlog` of them), and every
subscriber is woken.

A subscriber is a position in the feed (the id of the last event it took),
not a queue: a slow one costs no memory. One that falls more than
`backlog` events behind is ended, to resume from its last id (catching up
from the catalog); so is every one when the feed closes. What a worker
keeps is bounded: `backlog` events, and `catch_up_memory` bytes of the
batches read for subscribers catching up.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import contextlib
import enum
import logging

from ..config import Config
from ..errors import StorageError
from ..store import Change, Span, Store
from .messages import Event, change_event, reset_event

logger = logging.getLogger(__name__)


class Ending(enum.Enum):
    """Why a subscription ended."""

    # The server stops (or restarts).
    GOING_AWAY = 'the server is going away'
    # The subscriber fell more than the backlog behind.
    TOO_SLOW = 'too far behind'
    # The catalog cannot be read now.
    UNAVAILABLE = 'the catalog cannot be read now'
    # The client went.
    LEFT = 'the client went'


class SubscriptionEnded(Exception):
    """The feed ended a subscription: the client may resume from its last id."""

    def __init__(self, ending: Ending) -> None:
        super().__init__(ending)
        self.ending = ending


class Feed:
    """The events of the catalog, followed by one worker for its subscribers."""

    def __init__(self, store: Store, config: Config) -> None:
        self._store = store
        self._config = config
        self.settings = config.events
        self.start()

    def start(self) -> None:
        """Start empty: at each start of the server (of its event loop)."""
        # The newest events, oldest first (their serials beside them).
        self._recent: list[Event] = []
        self._serials: list[int] = []
        # The id of the newest event the feed knows.
        self.last = 0
        self.closed = False
        self.beats = 0
        # One future for each subscriber waiting: all are resolved at once.
        self._waiters: set[asyncio.Future[None]] = set()
        self._follower: asyncio.Task[None] | None = None
        self._starting = asyncio.Lock()
        self._failing = False
        # Batches read for subscribers catching up, by the id they follow,
        # the least recently read first, and the bytes they hold together.
        self._caught_up: collections.OrderedDict[int, list[Event]] = (
            collections.OrderedDict()
        )
        self._caught_up_size = 0

    async def subscribe(self, after: int | None) -> Subscription:
        """Return a subscription to the events after id `after` (None: from now).

        An id the change log no longer holds (older than what it keeps, or
        not yet given) is answered by a reset event, then what follows now.
        """
        await self._follow_from_now()
        span = await self.span()
        if after is None or span.holds(after):
            return Subscription(self, span.last if after is None else after)
        return Subscription(self, span.last, first=[reset_event(after, span)])

    async def span(self) -> Span:
        """Return which events the change log can tell now."""
        return await self._store.change_span()

    def close(self) -> None:
        """End every subscription and stop following the log."""
        self.closed = True
        if self._follower is not None:
            self._follower.cancel()
        self._wake_all()

    def recent(self, after: int) -> list[Event] | None:
        """Return the kept events after id `after` (None: some are not kept)."""
        serials = self._serials
        if not serials or after < serials[0] - 1:
            return None if after < self.last else []
        start = bisect.bisect_right(serials, after)
        return self._recent[start : start + self.settings.batch]

    async def read(self, after: int) -> list[Event]:
        """Return events after id `after` from the catalog (to catch up).

        The batches read last are kept, `catch_up_memory` bytes of them at
        most: clients that resume from the same id (every one from 0, say)
        read and encode them once.
        """
        kept = self._caught_up
        events = kept.get(after)
        if events is not None:
            kept.move_to_end(after)
            return events
        changes = await self._read_changes(after, self.settings.catch_up_batch)
        events = [change_event(self._config, change) for change in changes]
        size = sum(event.size for event in events)
        budget = self.settings.catch_up_memory
        if size <= budget and after not in kept:
            while kept and self._caught_up_size + size > budget:
                _, dropped = kept.popitem(last=False)
                self._caught_up_size -= sum(event.size for event in dropped)
            kept[after] = events
            self._caught_up_size += size
        return events

    @property
    def kept_size(self) -> int:
        """The bytes of the batches kept for subscribers catching up."""
        return self._caught_up_size

    def waiter(self) -> asyncio.Future[None]:
        """Return a future resolved at new events, a heartbeat or the close."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        return waiter

    async def _follow_from_now(self) -> None:
        async with self._starting:
            if self._follower is not None or self.closed:
                return
            self.last = (await self.span()).last
            self._follower = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        settings = self.settings
        clock = self._config.clock
        token: bytes | None = None
        next_beat = clock() + settings.heartbeat
        while True:
            await asyncio.sleep(settings.poll_interval)
            now_token = self._store.token()
            if now_token is None or now_token != token:
                # Read before the changes: one committed after shows next time.
                token = now_token if await self._read_new() else None
            if clock() >= next_beat:
                next_beat = clock() + settings.heartbeat
                self.beats += 1
                self._wake_all()

    async def _read_new(self) -> bool:
        """Publish the changes after the last known; False if the catalog failed."""
        try:
            changes = await self._read_changes(self.last, self.settings.batch)
        except StorageError as ex:
            if not self._failing:
                cause = ex.__cause__ or ex
                logger.warning('events: the change log cannot be read: %s', cause)
            self._failing = True
            return False
        if self._failing:
            logger.info('events: the change log can be read again')
        self._failing = False
        while changes:
            self._publish(changes)
            # Caught up next time, should this read fail.
            with contextlib.suppress(StorageError):
                changes = await self._read_changes(self.last, self.settings.batch)
                continue
            return False
        return True

    async def _read_changes(self, after: int, limit: int) -> list[Change]:
        return await self._store.changes(after, limit)

    def _publish(self, changes: list[Change]) -> None:
        events = [change_event(self._config, change) for change in changes]
        self._recent.extend(events)
        self._serials.extend(event.serial for event in events)
        self.last = events[-1].serial
        excess = len(self._serials) - self.settings.backlog
        if excess > self.settings.backlog // 4:
            # Trimmed in steps: each costs a copy of what stays.
            del self._recent[:excess]
            del self._serials[:excess]
        self._wake_all()

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, set()
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)


class Subscription:
    """One subscriber's place in the feed: the id of the last event it took."""

    def __init__(self, feed: Feed, cursor: int, first: list[Event] | None = None):
        self._feed = feed
        self.cursor = cursor
        self._first = first
        # Whether it reads from the events the feed keeps (else it catches up).
        self._live = False
        self._ended = False
        self._waiter: asyncio.Future[None] | None = None

    def end(self) -> None:
        """End it now (its client went): a waiting next() returns at once."""
        self._ended = True
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def next(self) -> list[Event] | None:
        """Return the next events; None for a heartbeat (nothing new meanwhile).

        SubscriptionEnded when the feed ends the subscription (or end() did).
        """
        if self._first is not None:
            first, self._first = self._first, None
            return first
        feed = self._feed
        beats = feed.beats
        while not (feed.closed or self._ended):
            if self.cursor < feed.last and (events := await self._take()):
                self.cursor = events[-1].serial
                return events
            if feed.beats != beats:
                return None
            self._waiter = feed.waiter()
            await self._waiter
        raise SubscriptionEnded(Ending.LEFT if self._ended else Ending.GOING_AWAY)

    async def _take(self) -> list[Event]:
        feed = self._feed
        if self._live and feed.last - self.cursor > feed.settings.backlog:
            raise SubscriptionEnded(Ending.TOO_SLOW)
        events = feed.recent(self.cursor)
        if events is not None:
            self._live = True
            return events
        try:
            events = await feed.read(self.cursor)
        except StorageError as ex:
            raise SubscriptionEnded(Ending.UNAVAILABLE) from ex
        if events and events[0].serial != self.cursor + 1:
            # Trimmed from the log while this subscriber caught up.
            return [reset_event(self.cursor, await feed.span())]
        return events
