"""The paths of the OpenAPI document: every route asgilook answers, and how."""

from __future__ import annotations

from typing import Any

from ..config import Config
from ..http.forms import FIELD
from ..http.paging import MAX_LIMIT
from .components import THUMBNAIL_FORMATS, headers, query, ref
from .service import service

# The media types the list and an upload's answer are sent in (http/media.py).
_LISTED = ('application/json', 'application/msgpack')
# Raw uploads: what the Content-Type of an image file may say (asgilook
# reads the bytes, whatever the header says).
_RAW_TYPES = ('image/*', 'application/octet-stream')


def paths(config: Config) -> dict[str, Any]:
    """Return the document's paths, as config has the service answer."""
    thumbnail = '/thumbnails/{image_id}/{width}x{height}.{extension}'
    return {
        '/images': {'get': _list(), 'head': _list(), 'post': _upload(config)},
        '/images/{image_id}.jpeg': {
            'parameters': [ref('parameters', 'ImageId')],
            'get': _image(),
            'head': _image(),
            'delete': _delete(),
        },
        thumbnail: {
            'parameters': _thumbnail_parameters(config),
            'get': _thumbnail(),
            'head': _thumbnail(),
        },
        **service(config),
    }


def _list() -> dict[str, Any]:
    listed = {'type': 'array', 'items': ref('schemas', 'Image')}
    return {
        'summary': 'List the images, oldest upload first, or one page of them',
        'parameters': [
            query(
                'limit',
                f'Answer a page of at most this many images (1 to {MAX_LIMIT}).',
                pattern='^[0-9]+$',
                example='100',
            ),
            query(
                'order', 'oldest (upload order) or newest.', enum=['oldest', 'newest']
            ),
            query('after', 'The cursor of the Link header of the previous page.'),
            ref('parameters', 'IfNoneMatch'),
        ],
        'responses': {
            '200': {
                'description': 'The images (JSON, or MessagePack if preferred).',
                'headers': headers(
                    'ETag', 'Cache-Control', 'Vary', 'Link', 'X-ASGILook-Cache'
                ),
                'content': {kind: {'schema': listed} for kind in _LISTED},
            },
            '304': ref('responses', 'NotModified'),
            '308': ref('responses', 'Redirect'),
            '400': ref('responses', 'BadRequest'),
            '503': ref('responses', 'Unavailable'),
        },
    }


def _upload(config: Config) -> dict[str, Any]:
    limit = config.max_upload_size
    raw = {'schema': {'type': 'string', 'contentMediaType': 'application/octet-stream'}}
    form = {
        'schema': {
            'type': 'object',
            'required': [FIELD],
            'properties': {
                # A file (OpenAPI's spelling of binary): a part with a filename.
                FIELD: {
                    'type': 'string',
                    'contentMediaType': 'application/octet-stream',
                    'description': 'The image file, as a file part (one with a '
                    'filename); a part of this name without one is a field, and '
                    'is ignored. Other fields are ignored.',
                }
            },
        },
        'encoding': {FIELD: {'contentType': 'image/*, application/octet-stream'}},
    }
    return {
        'summary': 'Upload an image; it is stored as JPEG, turned upright',
        'requestBody': {
            'required': True,
            'description': f'An image file of at most {limit} bytes and '
            f'{config.max_image_pixels} pixels (JPEG, PNG, GIF, WebP, AVIF, '
            'HEIC, TIFF, BMP or ICO): the body itself, or the file part named '
            f'{FIELD} of a multipart/form-data form.',
            'content': {
                **{kind: raw for kind in _RAW_TYPES},
                'multipart/form-data': form,
            },
        },
        'responses': {
            '201': {
                'description': 'Stored: the image object and its delete_token.',
                'headers': headers('Location', 'Vary', required=('Location',)),
                'content': {
                    kind: {'schema': ref('schemas', 'Upload')} for kind in _LISTED
                },
            },
            '400': ref('responses', 'BadUpload'),
            '408': ref('responses', 'Stalled'),
            '413': ref('responses', 'TooLarge'),
            '415': ref('responses', 'NotAnImage'),
            '422': ref('responses', 'Damaged'),
            '503': ref('responses', 'Unavailable'),
            '507': ref('responses', 'StorageFull'),
        },
    }


def _jpeg(summary: str, description: str) -> dict[str, Any]:
    return {
        'summary': summary,
        'parameters': [ref('parameters', 'IfNoneMatch')],
        'responses': {
            '200': {
                'description': description,
                'headers': headers(
                    'ETag',
                    'Last-Modified',
                    'Cache-Control',
                    'X-ASGILook-Cache',
                    required=('ETag', 'Last-Modified', 'Cache-Control'),
                ),
                'content': {'image/jpeg': {'schema': {'type': 'string'}}},
            },
            '304': ref('responses', 'NotModified'),
            '308': ref('responses', 'Redirect'),
            '404': ref('responses', 'NotFound'),
            '503': ref('responses', 'Unavailable'),
        },
    }


def _image() -> dict[str, Any]:
    return _jpeg('Download an image', 'The stored JPEG, never changing under its URL.')


def _thumbnail() -> dict[str, Any]:
    operation = _jpeg(
        'Download a thumbnail of an image',
        'The image scaled to fit width x height, aspect kept.',
    )
    content = {
        kind.media_type: {'schema': {'type': 'string'}}
        for kind in THUMBNAIL_FORMATS.values()
    }
    operation['responses']['200']['content'] = content
    return operation


def _thumbnail_parameters(config: Config) -> list[dict[str, Any]]:
    size = (
        'A side of one of the thumbnails the image object lists (its halvings '
        f'while both sides stay at least {config.min_thumb_size} pixels); any '
        'other size is a 404.'
    )
    return [
        ref('parameters', 'ImageId'),
        *(
            {
                'name': name,
                'in': 'path',
                'required': True,
                'description': size,
                'schema': {'type': 'integer', 'minimum': 1},
                'example': 231,
            }
            for name in ('width', 'height')
        ),
        {
            'name': 'extension',
            'in': 'path',
            'required': True,
            'description': 'The format: each has its URL, cache entry and ETag.',
            'schema': {'type': 'string', 'enum': list(THUMBNAIL_FORMATS)},
        },
    ]


def _delete() -> dict[str, Any]:
    conditions = [
        {
            'name': name,
            'in': 'header',
            'required': False,
            'description': description,
            'schema': {'type': 'string'},
        }
        for name, description in (
            ('If-Match', 'Delete only if its ETag is one of these.'),
            ('If-None-Match', 'Delete only if its ETag is none of these.'),
            ('If-Unmodified-Since', 'Delete only if not uploaded since.'),
        )
    ]
    return {
        'summary': 'Delete an image, its thumbnails and what showed it',
        'security': [{'deleteToken': []}],
        'parameters': conditions,
        'responses': {
            '204': {'description': 'Gone.'},
            '308': ref('responses', 'Redirect'),
            '401': ref('responses', 'Unauthorized'),
            '403': ref('responses', 'Forbidden'),
            '404': ref('responses', 'NotFound'),
            '412': ref('responses', 'PreconditionFailed'),
            '503': ref('responses', 'Unavailable'),
        },
    }
