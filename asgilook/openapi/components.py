"""The shared parts of the OpenAPI document: schemas, headers, error answers."""

from __future__ import annotations

from typing import Any, NamedTuple

from ..config import Config
from ..imaging import formats


class ThumbnailFormat(NamedTuple):
    """A format thumbnails are rendered in: what it is sent as, where it is listed."""

    media_type: str
    # The image object's field that lists the thumbnails of this format.
    field: str


# The formats of thumbnails, by the extension of their URLs, as they are
# rendered (imaging/formats.py): their URLs, answers' types and image fields
# follow. JPEG's are listed in the tutorial's "thumbnails".
THUMBNAIL_FORMATS = {
    extension: ThumbnailFormat(
        kind.media_type,
        'thumbnails' if kind is formats.JPEG else f'thumbnails_{extension}',
    )
    for extension, kind in formats.THUMBNAIL_FORMATS.items()
}
# What an error's JSON always is.
ERROR = {'$ref': '#/components/schemas/Error'}
EXAMPLE_ID = '5cfd9fb6-259a-4c72-b8b0-5f4c35edcd3c'


def ref(kind: str, name: str) -> dict[str, str]:
    """Return a reference to a component."""
    return {'$ref': f'#/components/{kind}/{name}'}


def query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    """Return a query parameter of a route."""
    return {
        'name': name,
        'in': 'query',
        'required': False,
        'description': description,
        'schema': {'type': 'string', **schema},
    }


def components(config: Config) -> dict[str, Any]:
    """Return the document's components, as config has the service answer."""
    return {
        'schemas': _schemas(),
        'headers': HEADERS,
        'responses': _responses(config),
        'parameters': _parameters(),
        'securitySchemes': {
            'deleteToken': {
                'type': 'http',
                'scheme': 'bearer',
                'description': 'The delete_token that POST /images answered for '
                'the image: only its uploader may delete it.',
            }
        },
    }


def _schemas() -> dict[str, Any]:
    uri_list = {'type': 'array', 'items': {'type': 'string'}}
    thumbnails = {
        kind.field: {
            **uri_list,
            'description': f'The URLs of its {extension.upper()} thumbnails, '
            'largest first: the only sizes that are rendered.',
        }
        for extension, kind in THUMBNAIL_FORMATS.items()
    }
    # The fields, open: the image object and the upload's answer close them,
    # each with its own fields (a closed schema's allOf would refuse others).
    fields = {
        'type': 'object',
        'required': ['id', 'image', 'modified', 'size', *thumbnails],
        'properties': {
            'id': {'type': 'string', 'format': 'uuid'},
            'image': {'type': 'string', 'description': 'The URL of its JPEG.'},
            'modified': {
                'type': 'string',
                'description': 'When it was uploaded, as an HTTP date.',
            },
            'size': {
                'type': 'array',
                'items': {'type': 'integer', 'minimum': 1},
                'minItems': 2,
                'maxItems': 2,
                'description': 'Width and height in pixels.',
            },
            **thumbnails,
        },
    }
    image = {
        'allOf': [ref('schemas', 'ImageFields')],
        'unevaluatedProperties': False,
        'example': {
            'id': EXAMPLE_ID,
            'image': f'/images/{EXAMPLE_ID}.jpeg',
            'modified': 'Tue, 24 Dec 2019 17:32:19 GMT',
            'size': [462, 462],
            **{
                kind.field: [
                    f'/thumbnails/{EXAMPLE_ID}/231x231.{extension}',
                    f'/thumbnails/{EXAMPLE_ID}/115x115.{extension}',
                ]
                for extension, kind in THUMBNAIL_FORMATS.items()
            },
        },
    }
    upload = {
        'allOf': [ref('schemas', 'ImageFields')],
        'unevaluatedProperties': False,
        'type': 'object',
        'required': ['delete_token'],
        'properties': {
            'delete_token': {
                'type': 'string',
                'description': 'Send it as Authorization: Bearer <token> to '
                'delete the image; given only here, once.',
            }
        },
    }
    check = {'type': 'string', 'enum': ['ok', 'unavailable']}
    health = {
        'type': 'object',
        'required': ['status', 'checks'],
        'properties': {
            'status': {'type': 'string', 'enum': ['ok', 'degraded', 'unavailable']},
            'checks': {
                'type': 'object',
                'additionalProperties': check,
                'properties': {name: check for name in ('catalog', 'storage', 'redis')},
            },
        },
        'example': {
            'status': 'ok',
            'checks': {'catalog': 'ok', 'storage': 'ok', 'redis': 'ok'},
        },
    }
    error = {
        'type': 'object',
        'required': ['title', 'description'],
        'properties': {
            'title': {'type': 'string'},
            'description': {'type': 'string', 'description': 'What to do.'},
        },
        'example': {
            'title': 'No such image',
            'description': 'There is no image with this id. GET /images lists '
            'the images there are.',
        },
    }
    return {
        'ImageFields': fields,
        'Image': image,
        'Upload': upload,
        'Health': health,
        'Error': error,
    }


def _header(description: str, **schema: Any) -> dict[str, Any]:
    return {'description': description, 'schema': {'type': 'string', **schema}}


# The response headers asgilook sends, by name.
HEADERS: dict[str, Any] = {
    'ETag': _header('The validator of this answer: send it in If-None-Match.'),
    'Last-Modified': _header('When the image was uploaded (an HTTP date).'),
    'Cache-Control': _header('How long a copy may be kept.'),
    'Vary': _header('The request headers the answer depends on.'),
    'Location': _header('The URL to go to.'),
    'Link': _header('The next page, while more follow: <...>; rel="next" (RFC 8288).'),
    'Retry-After': _header('Seconds after which to ask again.', pattern='^[0-9]+$'),
    'WWW-Authenticate': _header('How to authenticate: Bearer.'),
    'X-ASGILook-Cache': _header(
        'Hit: sent from memory or Redis; Miss: computed now; Bypass: '
        'computed while Redis does not answer.',
        enum=['Hit', 'Miss', 'Bypass'],
    ),
    'Content-Security-Policy': _header("What the gallery's page may load."),
}


def headers(*names: str, required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return the headers of a response; those in required are always sent."""
    # A reference may have no other field: a header always sent is written out.
    return {
        name: {**HEADERS[name], 'required': True}
        if name in required
        else ref('headers', name)
        for name in names
    }


def _error(description: str, *names: str) -> dict[str, Any]:
    answer: dict[str, Any] = {
        'description': description,
        'content': {'application/json': {'schema': ERROR}},
    }
    if names:
        answer['headers'] = headers(*names)
    return answer


def _responses(config: Config) -> dict[str, Any]:
    return {
        'BadRequest': _error('The request is not one this route takes.'),
        'BadUpload': _error(
            'An empty upload, a form with no file part named image or two, a '
            'body cut short.'
        ),
        'NotFound': _error('No such image, thumbnail or file.'),
        'Unauthorized': _error('No delete token was sent.', 'WWW-Authenticate'),
        'Forbidden': _error("The delete token is not this image's."),
        'PreconditionFailed': _error('A precondition (If-Match, ...) failed.'),
        'Stalled': _error(
            f'No byte of the body arrived for {config.body_timeout:g} seconds.'
        ),
        'TooLarge': _error(
            f'The upload is over {config.max_upload_size} bytes, or its image '
            f'over {config.max_image_pixels} pixels.'
        ),
        'NotAnImage': _error('The upload is not an image asgilook reads.'),
        'Damaged': _error('The image could not be decoded.'),
        'Unavailable': _error(
            'The service cannot answer now (storage, catalog, too many '
            'requests or streams): ask again after Retry-After.',
            'Retry-After',
        ),
        'StorageFull': _error('The server has no room to store the upload now.'),
        'Redirect': {
            'description': 'Another spelling of the one URL of this resource.',
            'headers': headers('Location', required=('Location',)),
        },
        'NotModified': {
            'description': 'The copy named by If-None-Match is current.',
            'headers': {
                name: ref('headers', name) for name in ('ETag', 'Cache-Control')
            },
        },
    }


def _parameters() -> dict[str, Any]:
    return {
        'ImageId': {
            'name': 'image_id',
            'in': 'path',
            'required': True,
            'schema': {'type': 'string', 'format': 'uuid'},
            'example': EXAMPLE_ID,
        },
        'IfNoneMatch': {
            'name': 'If-None-Match',
            'in': 'header',
            'required': False,
            'schema': {'type': 'string'},
            'description': 'The ETag of a copy you have: 304 if it is current.',
        },
    }
