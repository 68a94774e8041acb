"""Events as they are sent: encoded once, for every subscriber of the worker."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import falcon.asgi

from ..config import Config
from ..store import Change, Span, image_from

IMAGE_CREATED = 'image.created'
IMAGE_DELETED = 'image.deleted'
RESET = 'reset'


@dataclasses.dataclass(frozen=True, slots=True)
class Event:
    """One event: its id (the change's serial) and name, encoded once.

    As Server-Sent Event and as WebSocket message; its data is kept only
    encoded, in both (a worker keeps many events: see feed.py).
    """

    serial: int
    name: str
    sse: falcon.asgi.SSEvent
    text: str

    @property
    def size(self) -> int:
        """About how many bytes it holds (its encodings, and the objects)."""
        return 2 * len(self.text) + _OVERHEAD


# What an event's objects take besides its encodings, in bytes: with
# tracemalloc on CPython 3.11, an image.created of 544 characters took
# 1 350 bytes (2 460 while its data was kept decoded too).
_OVERHEAD = 300


def event(serial: int, name: str, data: Any) -> Event:
    """Return an event, encoded."""
    encoded = json.dumps(data, separators=(',', ':'))
    return Event(
        serial,
        name,
        falcon.asgi.SSEvent(data=encoded.encode(), event=name, event_id=str(serial)),
        f'{{"id":{serial},"event":"{name}","data":{encoded}}}',
    )


def change_event(config: Config, change: Change) -> Event:
    """Return the event of a change of the catalog."""
    if change.record is None:
        return event(change.serial, IMAGE_DELETED, change.image_id)
    image = image_from(config, change.record)
    return event(change.serial, IMAGE_CREATED, image.serialize())


def reset_event(requested: int, span: Span) -> Event:
    """Return the event that tells a client its events are no longer kept."""
    first_after, last = span.first_after, span.last
    if requested > last:
        gone = f'There is no event {requested} (the last is {last})'
    else:
        gone = (
            f'The events after {requested} are no longer kept (the service '
            f'keeps those after {first_after})'
        )
    return event(
        last,
        RESET,
        {
            'requested': requested,
            'oldest': first_after,
            'last': last,
            'description': f'{gone}. Read the list again (GET /images): the '
            f'events after {last} follow.',
        },
    )
