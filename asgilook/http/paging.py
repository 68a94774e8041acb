"""Pages of the image list: `GET /images?limit=N&after=<cursor>`.

A page holds up to `limit` images in upload order (or newest first, with
`order=newest`), starting after the one its cursor names; the
`Link: <...>; rel="next"` header of a full page carries the cursor of its
last image. The cursor is opaque to clients (a
number of the catalog's upload order, encoded), so a page never moves when
images are added (they come last) or removed: paging through a changing
catalog skips and repeats nothing that stayed.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses

import falcon

from ..store import MAX_INTEGER
from . import queries

MAX_LIMIT = 1000
# What a cursor encodes: this version byte, then the number, 8 bytes.
_CURSOR_VERSION = b'\x01'
_CURSOR_SIZE = 9


@dataclasses.dataclass(frozen=True)
class PageRequest:
    """What a query of the list asks for: a page size, and where it starts."""

    limit: int
    after: int
    # Newest first, rather than in upload order.
    newest: bool = False

    @property
    def query(self) -> str:
        """The one spelling of this page's query."""
        query = f'limit={self.limit}'
        if self.newest:
            query += '&order=newest'
        if self.after:
            query += f'&after={encode_cursor(self.after)}'
        return query

    def next_uri(self, after: int) -> str:
        return f'/images?{dataclasses.replace(self, after=after).query}'


def encode_cursor(after: int) -> str:
    data = _CURSOR_VERSION + after.to_bytes(_CURSOR_SIZE - 1, 'big')
    return base64.urlsafe_b64encode(data).rstrip(b'=').decode()


def decode_cursor(cursor: str) -> int:
    """Return the number a cursor encodes; HTTPBadRequest if it is no cursor."""
    try:
        data = base64.urlsafe_b64decode(cursor + '=' * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        data = b''
    after = int.from_bytes(data[1:], 'big')
    if (
        len(data) != _CURSOR_SIZE
        or not data.startswith(_CURSOR_VERSION)
        or after > MAX_INTEGER
        or encode_cursor(after) != cursor
    ):
        raise _invalid_cursor()
    return after


def page_request(req: falcon.asgi.Request) -> PageRequest | None:
    """Return the page a request of the list asks for; None for the whole list.

    HTTPBadRequest for a query the list does not take; a 308 to the one
    spelling of a page asked for in another (`limit=010`, parameters in
    another order), so that each page is computed and kept once.
    """
    query = req.query_string
    if not query:
        return None
    given = queries.parameters(
        query,
        frozenset({'limit', 'order', 'after'}),
        lambda name: (
            f'GET /images takes limit, order and after, not {name}. '
            'Ask for /images?limit=100 and follow the Link header for more.'
        ),
        'Give limit, order and after once each, as in /images?limit=100.',
    )
    if 'limit' not in given:
        raise _invalid_limit()
    limit = _limit(given['limit'])
    after = decode_cursor(given['after']) if 'after' in given else 0
    page = PageRequest(limit, after, _newest(given.get('order', 'oldest')))
    if query != page.query:
        raise falcon.HTTPPermanentRedirect(f'/images?{page.query}')
    return page


def _limit(text: str) -> int:
    limit = queries.whole_number(text, 4)
    if limit is None or not 1 <= limit <= MAX_LIMIT:
        raise _invalid_limit()
    return limit


def _newest(order: str) -> bool:
    if order not in ('oldest', 'newest'):
        raise falcon.HTTPBadRequest(
            title='Invalid order',
            description='order must be oldest (the default: upload order) or '
            'newest, as in /images?limit=100&order=newest.',
        )
    return order == 'newest'


def _invalid_limit() -> falcon.HTTPBadRequest:
    return falcon.HTTPBadRequest(
        title='Invalid page size',
        description=f'limit must be a whole number from 1 to {MAX_LIMIT}, as in '
        '/images?limit=100 (after, if given, needs it too).',
    )


def _invalid_cursor() -> falcon.HTTPBadRequest:
    return falcon.HTTPBadRequest(
        title='Invalid cursor',
        description='after must be a cursor from the Link header of a page of '
        'GET /images?limit=N. Start again from /images?limit=N.',
    )
