"""Which pages may open a WebSocket to /events: the service's own, and no other.

A browser lets a page of any site open a WebSocket to any server (sockets
know no CORS), sending the page's origin in the handshake's `Origin`. A
socket from a page of another site is refused before it is accepted, so
that its handshake is answered 403 and it reads nothing.
"""

from __future__ import annotations

import urllib.parse

import falcon.asgi

# The code a refused handshake is closed with (Falcon's for a 403: 3000 + the
# status); a server answers it with a bare 403 before any socket opens.
FORBIDDEN = 3403
# What an origin's netloc ends with when it names its scheme's default port.
_DEFAULT_PORTS = {'http': ':80', 'https': ':443'}


def allowed(req: falcon.asgi.Request, others: frozenset[str]) -> bool:
    """Whether the page a handshake comes from may read the events.

    One of the service's own pages (the origin's host and port are the
    request's `Host`), or one of others (origins as browsers send them, such
    as `https://example.com`). A handshake without `Origin` is no browser
    page's: allowed. `Origin: null` (a sandboxed frame, a file) is no origin
    the service has: refused.
    """
    origin = req.get_header('Origin')
    if origin is None:
        return True
    origin = origin.strip().lower()
    if origin in others:
        return True
    host = req.get_header('Host')
    return host is not None and _netloc(origin) == host.strip().lower()


def _netloc(origin: str) -> str | None:
    """Return the host[:port] of an origin, without its scheme's default port."""
    try:
        parts = urllib.parse.urlsplit(origin)
    except ValueError:
        return None
    suffix = _DEFAULT_PORTS.get(parts.scheme)
    netloc = parts.netloc
    if suffix is None or origin != f'{parts.scheme}://{netloc}' or '@' in netloc:
        # Not an origin a browser sends (`null` included): no host of its own.
        return None
    return netloc.removesuffix(suffix) or None
