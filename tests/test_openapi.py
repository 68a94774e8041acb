"""GET /openapi.json: a valid OpenAPI 3.1 document of every route Falcon routes."""

import re

import falcon.inspect
import falcon.testing
from openapi_spec_validator import validate

from asgilook.app import create_app, create_served_app

# A route's field, with or without its converter: {width:int}.
_FIELD = re.compile(r'{(\w+)(?::[^}]*)?}')


def described(client) -> dict:
    resp = client.simulate_get('/openapi.json')
    assert resp.status_code == 200
    assert resp.headers['Content-Type'] == 'application/json'
    return resp.json


def test_the_document_is_valid_openapi_3_1(client):
    document = described(client)

    validate(document)
    assert document['openapi'].startswith('3.1')


def test_it_is_sent_with_an_etag_and_a_304_for_a_current_copy(client):
    first = client.simulate_get('/openapi.json')
    again = client.simulate_get(
        '/openapi.json', headers={'If-None-Match': first.headers['ETag']}
    )
    head = client.simulate_head('/openapi.json')

    assert first.headers['Cache-Control'] == 'no-cache'
    assert again.status_code == 304
    assert head.status_code == 200
    assert head.content == b''
    assert head.headers['ETag'] == first.headers['ETag']


def _concrete(path: str, values: dict[str, list[str]]) -> set[str]:
    """Spell a path once for each value of its fields that have a list of values."""
    match = next((found for found in _FIELD.finditer(path) if found[1] in values), None)
    if match is None:
        return {_FIELD.sub(r'{\1}', path)}
    spelled = set()
    for value in values[match[1]]:
        spelled |= _concrete(
            path[: match.start()] + value + path[match.end() :], values
        )
    return spelled


def _enums(document: dict) -> dict[str, list[str]]:
    """The path parameters of the document that list their values."""
    enums = {}
    for item in document['paths'].values():
        operations = [item, *(op for op in item.values() if isinstance(op, dict))]
        for operation in operations:
            for parameter in operation.get('parameters', []):
                if parameter.get('in') == 'path' and 'enum' in parameter['schema']:
                    enums[parameter['name']] = parameter['schema']['enum']
    return enums


def _operations(document: dict, enums: dict) -> set[tuple[str, str]]:
    return {
        (method.upper(), spelled)
        for path, item in document['paths'].items()
        for method in item
        if method != 'parameters'
        for spelled in _concrete(path, enums)
    }


def _routed(app, enums: dict) -> set[tuple[str, str]]:
    # Falcon's own responders (OPTIONS, the 405s) are internal; WebSocket is
    # no HTTP method, and is told in the description of GET /events.
    return {
        (method.method, spelled)
        for route in falcon.inspect.inspect_routes(app)
        for method in route.methods
        if not method.internal and method.method != 'WEBSOCKET'
        for spelled in _concrete(route.path, enums)
    }


def test_every_route_falcon_routes_is_described_and_nothing_else(config):
    app = create_app(config)
    document = described(falcon.testing.TestClient(create_served_app(config)))
    enums = _enums(document)

    assert _operations(document, enums) == _routed(app, enums)
    assert 'WebSocket' in document['paths']['/events']['get']['description']


def test_without_metrics_the_document_has_no_metrics(config):
    config.metrics = False
    app = create_app(config)
    document = described(falcon.testing.TestClient(app))

    assert '/metrics' not in document['paths']
    assert _operations(document, _enums(document)) == _routed(app, _enums(document))


def test_the_settings_are_told(config):
    config.max_upload_size = 12345
    config.min_thumb_size = 77
    document = described(falcon.testing.TestClient(create_app(config)))

    upload = document['paths']['/images']['post']['requestBody']
    thumbnail = document['paths']['/thumbnails/{image_id}/{width}x{height}.{extension}']
    width = next(p for p in thumbnail['parameters'] if p.get('name') == 'width')
    assert 'at most 12345 bytes' in upload['description']
    assert set(upload['content']) >= {'image/*', 'multipart/form-data'}
    assert 'at least 77 pixels' in width['description']


def test_every_error_is_described_as_title_and_description(client):
    document = described(client)

    error = document['components']['schemas']['Error']
    assert error['required'] == ['title', 'description']
    answers = [
        answer
        for item in document['paths'].values()
        for method, operation in item.items()
        if method != 'parameters'
        for status, answer in operation['responses'].items()
        if status.startswith('4')
    ]
    assert answers
    for answer in answers:
        name = answer['$ref'].rpartition('/')[2]
        content = document['components']['responses'][name]['content']
        assert content['application/json']['schema'] == {
            '$ref': '#/components/schemas/Error'
        }
