"""The gallery's static files, served from memory with their validators."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.resources

import falcon
import falcon.asgi

from .policy import protect

_TYPES = {
    'css': 'text/css; charset=utf-8',
    'js': 'text/javascript; charset=utf-8',
    'svg': 'image/svg+xml',
    'html': 'text/html; charset=utf-8',
}
# What a browser may keep without asking: a versioned URL names one content.
_FOREVER = ('public', 'max-age=31536000', 'immutable')


@dataclasses.dataclass(frozen=True)
class Asset:
    """One static file: its bytes, type and version (a digest of the bytes)."""

    name: str
    body: bytes
    content_type: str
    version: str

    @property
    def url(self) -> str:
        """The URL under which this content may be kept for a year."""
        return f'/gallery/{self.name}?v={self.version}'


def load(name: str) -> Asset:
    """Read a file of static/ (at start-up: a few kilobytes)."""
    body = importlib.resources.files(__package__).joinpath('static', name).read_bytes()
    version = hashlib.sha256(body).hexdigest()[:16]
    return Asset(name, body, _TYPES[name.rpartition('.')[2]], version)


class Assets:
    """`GET /gallery/{name}`: the stylesheet, the script and the icon.

    Under the URL the page names (`?v=` the version) a file may be kept for
    a year; under any other it must be checked (`no-cache`) against its ETag.
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        self.files = {name: load(name) for name in names}

    async def on_get_favicon(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response
    ) -> None:
        """`GET /favicon.ico`: where a browser looks for the icon of a page that
        names none (a JPEG opened by itself): the gallery's icon."""
        await self.on_get(req, resp, 'favicon.svg')

    on_head_favicon = on_get_favicon

    async def on_get(
        self, req: falcon.asgi.Request, resp: falcon.asgi.Response, name: str
    ) -> None:
        # An error's answer too.
        protect(resp)
        asset = self.files.get(name)
        if asset is None:
            raise falcon.HTTPNotFound(
                title='No such file',
                description=f'The gallery has no file {name!r}. Open / to see '
                'the gallery.',
            )
        resp.content_type = asset.content_type
        resp.etag = asset.version
        versioned = req.get_param('v') == asset.version
        resp.cache_control = list(_FOREVER) if versioned else ['no-cache']
        resp.data = asset.body

    on_head = on_get
