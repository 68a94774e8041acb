"""GET /openapi.json: the OpenAPI 3.1 document of the HTTP API, built once.

components.py holds what the routes share (schemas, headers, error
answers), paths.py the routes; both read the settings that shape an
answer (the upload limit, the thumbnail ladder).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from typing import Any

import falcon
import falcon.asgi

from ..config import Config
from .components import THUMBNAIL_FORMATS, components
from .paths import paths

__all__ = ['THUMBNAIL_FORMATS', 'Document', 'document']


def document(config: Config) -> dict[str, Any]:
    """Return the OpenAPI document of the service config describes."""
    return {
        'openapi': '3.1.0',
        'info': {
            'title': 'asgilook',
            'version': importlib.metadata.version('asgilook'),
            'summary': 'An image-sharing HTTP API: uploads, JPEG images, '
            'thumbnails, live events.',
            'description': 'Every error is JSON {"title", "description"}; the '
            'description says what to do. Any route may also answer 408 or 431 '
            '(a request too slow or too large), 405 for a method it does not '
            'take, and 503 with Retry-After when the server is too busy.',
            'license': {'name': 'Apache-2.0', 'identifier': 'Apache-2.0'},
        },
        'paths': paths(config),
        'components': components(config),
    }


class Document:
    """Answer the document, as JSON with an ETag: the same bytes for every request."""

    def __init__(self, config: Config) -> None:
        self._body = json.dumps(document(config), separators=(',', ':')).encode()
        self._etag = hashlib.blake2b(self._body, digest_size=16).hexdigest()

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        resp.content_type = falcon.MEDIA_JSON
        resp.etag = self._etag
        # It changes with an upgrade or a setting: ask before reusing it.
        resp.cache_control = ['no-cache']
        resp.data = self._body

    on_head = on_get
