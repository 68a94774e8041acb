"""The cache: answers to GET and HEAD kept in memory and in Redis.

Vocabulary (one word per idea):

- token: the catalog's change token; any process's upload or delete changes it.
- version: what an answer is computed from, as its route's Version says
  (declared in app.py, `RedisCache(versions=...)`): a digest of the catalog
  for the list, the stored file's name for an image and its thumbnails.
- key: the cache key, what an answer is kept under (`keys.cache_key`): its
  path[?query],
  preceded by a media type and a space when the request's Accept header
  negotiates another than the default, JSON (decided as `media.negotiate`
  decides it). Memory, Redis, flights and the fast path all go by the key:
  no request gets another representation's bytes (each also has its own
  ETag, so no 304 confirms the other's copy). Only the paths the app names
  (`RedisCache(varying=...)`: the list and its pages) vary; an image is one
  JPEG, and a thumbnail one file of the format its URL names, kept once
  under the bare path for every client.
- entry: an answer kept in Redis (`entries.Entry`), signed for its key with
  the service key, under the Redis key `asgilook:` + key.
- kept: an entry in a process's memory (`memory.Kept`), its Hit headers
  rendered once.
- lock: a key's cross-process render lock in Redis (the key holds the
  lock until the entry replaces it).
- flight: one computation in a process that its concurrent misses wait for.
- Hit / Miss / Bypass (`X-ASGILook-Cache`): sent from memory, Redis or a
  flight / computed now / computed without Redis, which did not answer.

The path of a GET: `FastPath` sends what memory keeps while the token is
the one it was kept under (fresh for `memory_ttl`, Redis alive within
`liveness`), and hands its key and token to the middleware otherwise;
Falcon routes it, and `RedisCache` asks the route's version, then memory
(same version), a flight of this process, and Redis: its entry, or its
lock and a render here whose entry is kept and stored. A change (POST,
PUT, DELETE) drops what is kept for its path and for those its route's
ShownAt names (`RedisCache(shown_at=...)`).

Modules: keys (the key of a request), entries (the entry and its encoding),
backend (Redis clients, bounded commands, the outage breaker), redis_tier
(entries in Redis, the lock), memory (the in-process tier), flights
(coalescing), tiers (the path above), middleware (the Falcon adapter),
fastpath (the ASGI wrapper).
"""

from .fastpath import FastPath
from .middleware import RedisCache

__all__ = ['FastPath', 'RedisCache']
