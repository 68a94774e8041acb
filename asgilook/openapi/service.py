"""The routes around the images in the OpenAPI document: events, health, gallery."""

from __future__ import annotations

from typing import Any

from ..config import Config
from .components import headers, query, ref


def service(config: Config) -> dict[str, Any]:
    """Return the paths of the routes around the images, as config has them."""
    described = {
        '/': {'get': _gallery(), 'head': _gallery()},
        '/events': {'get': _events(), 'head': _events()},
        '/health': {'get': _health(), 'head': _health()},
        '/openapi.json': {'get': _document(), 'head': _document()},
        '/gallery/{name}': {'get': _asset(), 'head': _asset()},
        '/favicon.ico': {'get': _favicon(), 'head': _favicon()},
    }
    if config.metrics:
        described['/metrics'] = {'get': _metrics(), 'head': _metrics()}
    return described


def _events() -> dict[str, Any]:
    return {
        'summary': 'Hear of every upload and delete, live (Server-Sent Events)',
        'description': 'Events image.created (data: the image object) and '
        'image.deleted (data: its id), with increasing ids. The same path '
        'answers WebSocket connections with the same events as JSON messages.',
        'parameters': [
            query('after', 'Resume after the event of this id.', pattern='^[0-9]+$'),
            {
                'name': 'Last-Event-ID',
                'in': 'header',
                'required': False,
                'description': 'Resume after this event (an EventSource sends it).',
                'schema': {'type': 'string', 'pattern': '^[0-9]+$'},
            },
        ],
        'responses': {
            '200': {
                'description': 'The stream of events, never ending.',
                'headers': headers('Cache-Control'),
                'content': {'text/event-stream': {'schema': {'type': 'string'}}},
            },
            '400': ref('responses', 'BadRequest'),
            '503': ref('responses', 'Unavailable'),
        },
    }


def _health() -> dict[str, Any]:
    health = {'application/json': {'schema': ref('schemas', 'Health')}}
    return {
        'summary': 'Whether this worker can serve: for a load balancer or probe',
        'responses': {
            '200': {
                'description': 'ok, or degraded (Redis away: slower, working).',
                'headers': headers('Cache-Control'),
                'content': health,
            },
            '503': {
                'description': 'The catalog or the storage fails.',
                'content': health,
            },
        },
    }


def _text(summary: str, media_type: str, description: str) -> dict[str, Any]:
    return {
        'summary': summary,
        'responses': {
            '200': {
                'description': description,
                'headers': headers('Cache-Control', 'ETag'),
                'content': {media_type: {'schema': {'type': 'string'}}},
            },
            '304': ref('responses', 'NotModified'),
        },
    }


def _metrics() -> dict[str, Any]:
    operation = _text(
        'Metrics in Prometheus text format, every worker added up',
        'text/plain; version=0.0.4; charset=utf-8',
        'Counters, gauges and histograms (off with ASGI_LOOK_METRICS=0).',
    )
    # The directory the workers share was removed under them.
    operation['responses']['503'] = ref('responses', 'Unavailable')
    return operation


def _document() -> dict[str, Any]:
    operation = _text('This document', 'application/json', 'OpenAPI 3.1.')
    operation['responses']['200']['content']['application/json']['schema'] = {
        'type': 'object'
    }
    return operation


def _gallery() -> dict[str, Any]:
    operation = _text(
        'The gallery: a page of the newest pictures',
        'text/html; charset=utf-8',
        'The page, in HTML.',
    )
    operation['parameters'] = [query('after', 'A cursor of the next pictures.')]
    operation['responses']['200']['headers'].update(headers('Content-Security-Policy'))
    operation['responses']['400'] = ref('responses', 'BadRequest')
    return operation


def _asset() -> dict[str, Any]:
    names = {
        'gallery.css': 'text/css; charset=utf-8',
        'gallery.js': 'text/javascript; charset=utf-8',
    }
    operation = _text("A file of the gallery's page", 'image/svg+xml', 'The file.')
    operation['responses']['200']['content'].update(
        {kind: {'schema': {'type': 'string'}} for kind in names.values()}
    )
    operation['parameters'] = [
        {
            'name': 'name',
            'in': 'path',
            'required': True,
            'schema': {'type': 'string', 'enum': [*names, 'favicon.svg']},
        },
        query('v', 'Its version, as the page names it: kept a year.'),
    ]
    operation['responses']['404'] = ref('responses', 'NotFound')
    return operation


def _favicon() -> dict[str, Any]:
    return _text("The gallery's icon", 'image/svg+xml', 'The icon, as SVG.')
