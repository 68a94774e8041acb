"""The headers of every gallery answer: what the browser may load and send."""

from __future__ import annotations

import falcon.asgi

# Scripts, styles, images and connections from this origin only: no inline
# script or style, no plugin, no frame around the page, no <base> to move it.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

HEADERS = {
    'Content-Security-Policy': CONTENT_SECURITY_POLICY,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'same-origin',
}


def protect(resp: falcon.asgi.Response) -> None:
    """Give a gallery answer the headers of its policy."""
    resp.set_headers(HEADERS)
