"""schemathesis against a live `python -m asgilook`: no 5xx, no answer the document does not describe."""

import threading

import httpx
import hypothesis
import pytest
import schemathesis
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
# Cases a run tries for each operation: some 300 requests in all.
EXAMPLES = 15


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
        # An image, so that the list and its pages have something to show.
        upload = httpx.post(f'{url}/images', content=encode(gradient(), 'PNG'))
        assert upload.status_code == 201
        yield url, log
    finally:
        servers.stop(process)
        reader.join()


def _read(process, log: list[str]) -> None:
    for line in process.stderr:
        log.append(line.decode(errors='replace'))
    process.stderr.close()


def test_every_answer_is_described(launched):
    url, log = launched
    schema = schemathesis.openapi.from_url(f'{url}/openapi.json')
    failures = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        # A stream that never ends: its HEAD and its 400s stand for it.
        if (operation.method, operation.path) == ('get', '/events'):
            continue
        try:
            _fuzz(operation)
        except Exception as ex:
            failures[operation.label] = ex
    assert not failures, (failures, ''.join(log))


def _fuzz(operation) -> None:
    @hypothesis.given(case=operation.as_strategy())
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    def answered_as_described(case) -> None:
        case.call_and_validate(checks=CHECKS, timeout=10)

    answered_as_described()
