"""The HTTP API page's routes table, checked against GET /openapi.json."""

import re

from asgilook.config import Config
from asgilook.openapi import document

from . import docs

METHODS = ('GET', 'POST', 'DELETE')


def page_routes() -> set[tuple[str, str]]:
    """Each (method, path) the page's table names, its parameters as {}."""
    routes = set()
    for line in docs.section('docs/api.md', 'HTTP API').splitlines():
        cells = re.findall(r'`([^`]*)`', line.split(' | ')[0])
        if not cells or not cells[0].startswith(METHODS):
            continue
        method, path = cells[0].split(' ', 1)
        path = re.sub(r'\{[^}]*\}', '{}', path.split('?')[0])
        routes.add((method, path))
        # `….avif` beside a path: the same path in another format.
        for other in cells[1:]:
            if other.startswith('….'):
                routes.add((method, path.rsplit('.', 1)[0] + other[1:]))
    return routes


def document_routes() -> set[tuple[str, str]]:
    """Each (method, path) of the document, its formats spelled out."""
    routes = set()
    for path, operations in document(Config({})).get('paths', {}).items():
        formats = ['']
        # A path's own parameters, then its operations'.
        parameters = [*operations.get('parameters', [])]
        for method in METHODS:
            parameters += operations.get(method.lower(), {}).get('parameters', [])
        for parameter in parameters:
            if parameter.get('name') == 'extension':
                formats = parameter['schema']['enum']
        for extension in formats:
            spelled = path.replace('{extension}', extension)
            spelled = re.sub(r'\{[^}]*\}', '{}', spelled)
            routes.update(
                (method.upper(), spelled)
                for method in operations
                if method.upper() in METHODS
            )
    return routes


def test_the_api_page_names_every_route_the_document_describes():
    assert page_routes() == document_routes()
