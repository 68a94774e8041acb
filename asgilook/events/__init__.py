"""Live events: every upload and delete, streamed to whoever listens.

`GET /events` answers Server-Sent Events, and WebSocket connections on the
same path; both carry the same events, in the same order, with the same
ids in every worker. Words used throughout:

- change log: the catalog's table of changes (catalog/log.py), written in
  the transaction of each change by whichever worker made it;
- event: one change of the log as a client sees it (`image.created` with
  the image's JSON, `image.deleted` with its id), or a `reset`; its id is
  the change's serial;
- feed: one worker's reader of the change log, which keeps its newest
  events and wakes its subscribers (feed.py);
- subscription: one client's position in the feed, the id of the last
  event it took; a client resumes after an id it names;
- span: the ids the log can still tell (it keeps the newest changes); a
  client that resumes outside it gets a `reset`.

Modules: `messages` (events, encoded once), `feed`, `resource` (the route,
and SSE), `sockets` (WebSocket), `origins` (which pages may open one),
`exits` (the server's stop ends streams).
"""

from .exits import FeedLifespan
from .feed import Feed
from .resource import Events

__all__ = ['Events', 'Feed', 'FeedLifespan']
