"""schemathesis against a live `python -m asgilook`: no 5xx, all as documented."""

import threading

import httpx
import hypothesis
import pytest
import schemathesis
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from . import servers
from .images import encode, gradient

pytestmark = pytest.mark.live

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# Cases a run tries for each operation: some 2 000 requests in all.
EXAMPLES = 100
# The size of the stored image: its thumbnails are 231x231 and 115x115.
SIZE = (462, 462)
FORM = 'multipart/form-data'


@pytest.fixture
def launched(tmp_path, live_redis):
    """A live service holding one image; yields its URL and its log's lines."""
    port = servers.free_port()
    process = servers.start_launcher(tmp_path / 'images', live_redis, port)
    log: list[str] = []
    # Read as it comes: a full pipe would stop the server mid-answer.
    reader = threading.Thread(target=_read, args=(process, log))
    reader.start()
    try:
        url = f'http://127.0.0.1:{port}'
        # An image, so that the list, its pages, the image and its thumbnails
        # have something to show.
        upload = httpx.post(f'{url}/images', content=encode(gradient(SIZE), 'PNG'))
        assert upload.status_code == 201
        yield url, upload.json()['id'], log
    finally:
        servers.stop(process)
        reader.join()


def _read(process, log: list[str]) -> None:
    for line in process.stderr:
        log.append(line.decode(errors='replace'))
    process.stderr.close()


def test_every_answer_is_described(launched):
    url, image_id, log = launched
    schema = schemathesis.openapi.from_url(f'{url}/openapi.json')
    failures = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        # A stream that never ends: its HEAD and its 400s stand for it.
        if (operation.method, operation.path) == ('get', '/events'):
            continue
        try:
            _fuzz(operation)
            if operation.method == 'post':
                _upload(operation)
            if '{image_id}' in operation.path:
                # A random id is no image's: the stored one, at a size it has.
                _fuzz(operation, {'image_id': image_id, 'width': 231, 'height': 231})
        except Exception as ex:
            failures[operation.label] = ex
    assert not failures, (failures, ''.join(log))


def _upload(operation) -> None:
    """Upload a picture, as a body and in a form: random bytes are no image."""
    picture = encode(gradient(), 'PNG')
    for body, media_type in [(picture, 'image/png'), ({'image': picture}, FORM)]:
        case = operation.Case(body=body, media_type=media_type)
        answer = case.call_and_validate(checks=CHECKS, timeout=10)
        assert answer.status_code == 201, (media_type, answer.text)


def _fuzz(operation, path: dict | None = None) -> None:
    """Send EXAMPLES cases of operation, those path fields fixed; check each answer."""
    fields = {parameter.name for parameter in operation.path_parameters}
    fixed = {name: value for name, value in (path or {}).items() if name in fields}
    # Cases the document allows, and cases it does not (to be refused with a
    # 4xx it describes).
    cases = operation.as_strategy(path_parameters=fixed) | operation.as_strategy(
        GenerationMode.NEGATIVE, path_parameters=fixed
    )

    @hypothesis.given(case=cases)
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def answered_as_described(case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=10)

    answered_as_described()
